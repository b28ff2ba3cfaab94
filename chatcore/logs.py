"""Logging set-up: tokens never reach a log line (SPEC.md §3)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from urllib.parse import unquote

from chatcore.settings import DEV_SECRET, Settings

TOKEN_PARAM_RE = re.compile(r"(token=)(?!\[redacted\])[^&\s\"']+")  # not twice: "token=[redacted]:" keeps its ":"
JWT_RE = re.compile(r"eyJ[\w-]*\.[\w-]+\.[\w-]+")  # a JWT anywhere, however it got there


def redact(text: str) -> str:
    """``text`` with every ``token=…`` value and every JWT replaced, also when percent-encoded."""
    text = _redact(text)
    if "%" in text:
        decoded = unquote(text)
        if _redact(decoded) != decoded:  # a token hidden by percent-encoding: show it decoded, and redacted
            text = printable(_redact(decoded))  # printable: %0a must not start a fake log line
    return text


def _redact(text: str) -> str:
    return JWT_RE.sub("[redacted]", TOKEN_PARAM_RE.sub(r"\1[redacted]", text))


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\x00``), so a client can't forge log lines."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode() for char in text)


class RedactTokens(logging.Filter):
    """Rewrites a record's message when it contains a token, e.g. a server's line for ``/ws/chat/x?token=…``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


class Throttle(logging.Filter):
    """Lets one record in ``interval`` seconds through, of those whose message starts with ``prefix``, as one line
    without its traceback; the next one says how many were dropped meanwhile. For errors that a flood repeats
    thousands of times a second: asyncio logs a traceback for every failed accept() when the process is out of
    descriptors, which filled 578 MB of log in 70 s before this filter."""

    def __init__(self, prefix: str, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.prefix, self.interval, self.clock = prefix, interval, clock
        self.next = 0.0  # when the next record may pass
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith(self.prefix)):
            return True
        now = self.clock()
        if now < self.next:
            self.dropped += 1
            return False
        self.next = now + self.interval
        problem = f": {record.exc_info[1]}" if record.exc_info else ""
        dropped = f" ({self.dropped} more in the last {self.interval:g} s)" if self.dropped else ""
        record.msg, record.args, record.exc_info, record.exc_text = f"{self.prefix}{problem}{dropped}", None, None, None
        self.dropped = 0
        return True


def shorten(text: str, limit: int = 100) -> str:
    """Client-supplied ``text`` for a log line: redacted first (a cut token would escape redaction), control
    characters escaped, then cut."""
    return printable(redact(text))[:limit]


def redact_loggers(*names: str) -> None:
    for name in names:
        logging.getLogger(name).addFilter(RedactTokens())


def setup_logging(settings: Settings, *own_handlers: str) -> None:
    """Log to stderr at CHAT_LOG_LEVEL, redact tokens, warn about the development secret.

    Redaction sits on the root's handlers, so it covers every record that propagates there, from any library.
    ``own_handlers`` names the loggers that don't propagate but have handlers of their own (uvicorn's).
    """
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)-9s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactTokens())
    redact_loggers(*own_handlers)
    logging.getLogger("asyncio").addFilter(Throttle("socket.accept() out of system resource"))
    if settings.secret == DEV_SECRET:
        logging.getLogger("chat").warning(
            "CHAT_SECRET is not set: tokens are signed with the development secret. Never do this in production."
        )
