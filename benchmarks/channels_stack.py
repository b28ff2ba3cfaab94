"""Chapter 2's cost ledger: the naive consumer or the chapter's, on daphne or uvicorn, with Channels' parts or not."""

# The consumers' code is not changed: this launcher swaps what is around them, one layer at a time, so that the
# benchmarks can say what each layer of the Channels stack costs per delivery (benchmarks/README.md):
#   --server daphne|uvicorn   Channels runs on any ASGI server: the same application on either.
#   --hop on|off              Channels' dispatch makes a sync_to_async round trip (aclose_old_connections)
#                             before every handler; chapter 2's consumer leaves it out (chat/dispatch.py), the
#                             naive one keeps it. "on" gives the chapter Channels' dispatch back, "off" takes it
#                             from the naive one.
#   --channels-loop           the chapter with Channels' consumer loop back (a task per message, and the hop)
#                             instead of chat.dispatch.LeanDispatch
#   --channels-layer          the chapter with Channels' InMemoryChannelLayer instead of chat.layers'
# The channel layer is chosen the usual way: in memory, or channels-redis when CHAT_REDIS_URL is set.

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CHAPTER = REPO / "02_channels"


async def no_hop() -> None:
    """Channels' aclose_old_connections, without its trip to a thread: there is no database here to close."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app", choices=["naive", "chapter"])
    parser.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
    parser.add_argument("--hop", choices=["on", "off"], default="")
    parser.add_argument("--channels-loop", action="store_true")
    parser.add_argument("--channels-layer", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(CHAPTER))
    import channels.consumer
    import daphne.server  # first: it installs Twisted's asyncio reactor

    if args.hop == "off":
        channels.consumer.aclose_old_connections = no_hop  # what AsyncConsumer.dispatch calls
    # The chapter's modules, from 02_channels (on sys.path now).
    if args.app == "naive":
        application: Any = importlib.import_module("naive").application
    else:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
        django.setup()
        lean = importlib.import_module("chat.dispatch").LeanDispatch
        if args.hop == "on":
            del lean.dispatch  # Channels' own, AsyncConsumer's
        if args.channels_loop:
            del lean.dispatch, lean.__call__  # AsyncConsumer's: await_many_dispatch, and the hop
        if args.channels_layer:
            from django.conf import settings

            settings.CHANNEL_LAYERS["default"]["BACKEND"] = "channels.layers.InMemoryChannelLayer"  # before first use
        if args.server == "daphne":
            importlib.import_module("server").main()  # 02_channels/server.py: the chapter's daphne, set for SPEC.md
            return
        application = importlib.import_module("chatsite.asgi").application
    host, port = os.environ.get("CHAT_HOST", "127.0.0.1"), int(os.environ["CHAT_PORT"])
    if args.server == "daphne":
        from daphne.endpoints import build_endpoint_description_strings

        daphne.server.Server(application, endpoints=build_endpoint_description_strings(host=host, port=port)).run()
    else:
        import uvicorn

        uvicorn.run(application, host=host, port=port, loop="asyncio", log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
