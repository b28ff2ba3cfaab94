"""Logging set-up: tokens never reach a log line (SPEC.md §3)."""

from __future__ import annotations

import logging
import re

from chatcore.settings import DEV_SECRET, Settings

TOKEN_RE = re.compile(r"(token=)[^&\s\"']+")


def redact(text: str) -> str:
    return TOKEN_RE.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """Rewrites ``token=…`` in a record's message, e.g. in a server's access line for ``/ws/chat/x?token=…``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg = redact(message)
            record.args = None
        return True


def redact_loggers(*names: str) -> None:
    for name in names:
        logging.getLogger(name).addFilter(RedactTokens())


def setup_logging(settings: Settings, *server_loggers: str) -> None:
    """Log the ``chat`` logger like the server does, redact tokens, warn about the development secret."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)-9s %(name)s: %(message)s")
    redact_loggers("chat", *server_loggers)
    if settings.secret == DEV_SECRET:
        logging.getLogger("chat").warning(
            "CHAT_SECRET is not set: tokens are signed with the development secret. Never do this in production."
        )
