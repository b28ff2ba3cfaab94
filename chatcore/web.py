"""The HTTP side of the protocol, framework-free: token grants, health, the client's files (SPEC.md §2)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from chatcore.handshake import COOKIE_NAME
from chatcore.protocol import valid_user
from chatcore.settings import Settings
from chatcore.tokens import issue_token

CLIENT_DIR = Path(__file__).resolve().parent.parent / "shared_client"
INDEX_HTML = CLIENT_DIR / "index.html"


@dataclass(frozen=True, slots=True)
class Cookie:
    """The token's cookie (SPEC.md §2.3), with the names of the arguments of Starlette's and Django's
    ``set_cookie``: ``response.set_cookie(**asdict(cookie))``. Sent back on the page's own requests only, and
    hidden from its scripts."""

    key: str
    value: str
    max_age: int
    path: str = "/"
    httponly: bool = True
    samesite: str = "Strict"

    def header(self) -> str:
        """The ``Set-Cookie`` header's value, for a server that has no ``set_cookie``."""
        httponly = "; HttpOnly" if self.httponly else ""
        return f"{self.key}={self.value}; Max-Age={self.max_age}; Path={self.path}{httponly}; SameSite={self.samesite}"


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """``GET /api/token``: the JSON body, and the cookie to set when the user name was valid."""

    status: int
    body: dict[str, object]
    cookie: Cookie | None = None


def grant_token(user: str | None, settings: Settings) -> TokenGrant:
    if user is None or not valid_user(user):
        detail = '"user" must be 1-32 characters of A-Z a-z 0-9 _ . - (e.g. /api/token?user=alice).'
        return TokenGrant(400, {"error": "invalid_user", "detail": detail})
    token = issue_token(user, settings)
    body: dict[str, object] = {"user": user, "token": token, "expires_in": settings.token_ttl}
    return TokenGrant(200, body, Cookie(COOKIE_NAME, token, max_age=settings.token_ttl))


def find_client_file(name: str) -> Path | None:
    """The file of shared_client/ that ``/client/<name>`` asks for, if any. It is looked up among the folder's
    files, so what the client sent never reaches the file system: no ``..``, no subfolder, no hidden file."""
    for path in CLIENT_DIR.iterdir():
        if path.name == name and not name.startswith(".") and path.is_file():
            return path
    return None


def health(impl: str) -> dict[str, str]:
    return {"status": "ok", "impl": impl}


def client_address(settings: Settings, peer: tuple[str, int], forwarded_for: Iterable[str]) -> tuple[str, int]:
    """The client's address for the logs (SPEC.md §16.1), as uvicorn's ``ProxyHeadersMiddleware`` finds it: the
    peer's, unless the peer is one of CHAT_TRUSTED_PROXIES; then the last X-Forwarded-For entry that is not (each
    proxy appends the address it was connected from, so the entries before the last untrusted one are whatever the
    client sent), with the port the entry gives, or 0."""
    if not trusted(settings, peer[0]):
        return peer
    entries = [entry.strip() for value in forwarded_for for entry in value.split(",")]
    for entry in reversed(entries):
        host, port = host_and_port(entry)
        if not trusted(settings, host):
            return (host, port) if host else peer
    return host_and_port(entries[0]) if entries else peer  # a chain of trusted proxies: the first one


def host_and_port(entry: str) -> tuple[str, int]:
    """``203.0.113.7``, ``203.0.113.7:4711``, ``[2001:db8::1]:4711``: the host, and the port or 0."""
    if entry.startswith("["):
        host, bracket, rest = entry[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return entry, 0
        return host, int(rest[1:]) if rest[1:].isdigit() else 0
    if entry.count(":") == 1:  # IPv4 and a port (more colons: an IPv6 address)
        host, port = entry.split(":")
        return (host, int(port)) if port.isdigit() else (entry, 0)
    return entry, 0


def trusted(settings: Settings, host: str) -> bool:
    """Whether ``host`` is one of CHAT_TRUSTED_PROXIES' addresses or in one of its networks."""
    if not settings.trusted_proxies:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in settings.trusted_proxies)
