"""``manage.py runserver``: daphne's development server, with chapter 2's daphne (daphne_fixes.ChatServer) inside.

For development: with the autoreloader (the default), daphne runs without its signal handlers, so a reload or
Ctrl+C drops connections without the 1001 of SPEC.md §14. ``make run-channels`` is the server to deploy.
"""

from typing import Any

from daphne.management.commands.runserver import Command as DaphneRunserver
from django.conf import settings

from chat.hub import setup_chat_logging
from daphne_fixes import ChatServer


class Command(DaphneRunserver):  # type: ignore[misc]  # daphne has no type hints
    server_cls = ChatServer
    default_port = str(settings.CHAT.port)  # 8002, like make run-channels

    def inner_run(self, *args: Any, **options: Any) -> None:
        """The chat's logging first: daphne's runserver logs tokens in URLs (no test runs manage.py runserver)."""
        setup_chat_logging()  # tokens redacted from every log line (SPEC.md §3)
        super().inner_run(*args, **options)
