"""``make bench-ui IMPL=…``: one server under the benchmarks' settings, and Locust's web UI pointed at it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from pathlib import Path

from servers import BenchServer, locust_command, variants


def main(variant: str) -> int:
    if variant not in variants():
        print(f"Unknown IMPL={variant!r}: one of {', '.join(variants())}.", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as logs:
        server = BenchServer(variant, Path(logs)).start()
        try:
            print(f"{variant} on {', '.join(server.urls)}; Locust's UI on http://127.0.0.1:8089 (Ctrl+C stops both).")
            print("Users: ChatMember (the chat), BareMember (the framework's bare room), EchoClient (/ws/echo).")
            command = locust_command("--host", server.urls[0], "--web-host", "127.0.0.1", "--class-picker")
            with contextlib.suppress(KeyboardInterrupt):
                return subprocess.call(command)
            return 0
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
