"""Chapter 2: the chat protocol on Django Channels, served by daphne."""

from __future__ import annotations

from daphne_fixes import AccessLog, ChatServer  # first: it imports daphne.server, which installs Twisted's reactor

# isort: split
import os

import django
from daphne.endpoints import build_endpoint_description_strings
from django.conf import settings as django_settings

from chat.hub import setup_chat_logging
from chatcore.limits import raise_descriptor_limit


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    django.setup()  # reads the CHAT_* variables (chatsite/settings.py)
    settings = django_settings.CHAT
    setup_chat_logging()
    raise_descriptor_limit()
    from chatsite.asgi import application

    server = ChatServer(  # daphne with SPEC.md's limits and timeouts, and its fixes (daphne_fixes.py)
        application,
        endpoints=build_endpoint_description_strings(host=settings.host, port=settings.port),
        action_logger=AccessLog(),  # to the daphne.access logger, tokens redacted (daphne_fixes.py)
    )
    server.run()


if __name__ == "__main__":
    main()
