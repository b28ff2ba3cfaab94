"""chatcore.web.client_address finds the client as uvicorn's ProxyHeadersMiddleware does (SPEC.md §16.1)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from chatcore.settings import Settings
from chatcore.web import client_address

TRUSTED = ["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"]
CASES = [
    ("127.0.0.1", []),
    ("127.0.0.1", ["203.0.113.7"]),
    ("192.0.2.1", ["203.0.113.7"]),  # a peer that is not a proxy: its header is ignored
    ("127.0.0.1", ["198.51.100.1, 203.0.113.7, 10.1.2.3"]),
    ("127.0.0.1", ["198.51.100.1", "203.0.113.7:4711, 10.1.2.3"]),  # two header lines
    ("127.0.0.1", ["10.1.2.3, 10.2.3.4"]),  # only proxies: the first
    ("127.0.0.1", ["[2001:db9::1]:4711, 2001:db8::5"]),
    ("127.0.0.1", ["[2001:db9::1]x"]),
    ("127.0.0.1", ["203.0.113.7:port"]),
    ("127.0.0.1", ["unknown"]),
    ("127.0.0.1", [" , "]),
    ("127.0.0.1", [""]),
]


async def uvicorns(peer: tuple[str, int], values: list[str]) -> tuple[str, int]:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["client"] = tuple(scope["client"])

    scope = {"type": "http", "client": peer, "headers": [(b"x-forwarded-for", v.encode()) for v in values]}
    await ProxyHeadersMiddleware(app, trusted_hosts=TRUSTED)(scope, None, None)  # type: ignore[arg-type]
    return seen["client"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("peer", "values"), CASES)
async def test_client_address_as_uvicorn(peer: str, values: list[str]) -> None:
    """§16.1: chapters 2 and 3 log the address chapter 1's uvicorn finds, for every shape of header."""
    settings = Settings(trusted_proxies=tuple(ipaddress.ip_network(n) for n in TRUSTED))
    assert client_address(settings, (peer, 5555), values) == await uvicorns((peer, 5555), values)
