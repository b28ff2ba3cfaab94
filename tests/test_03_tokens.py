"""SPEC.md §3: tokens, their portability, and that they never reach a log."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx2
import jwt
import pytest

from tests.client import chat_url, handshake_status
from tests.conftest import Connector, MakeServer, ServerPool
from tests.harness import Server
from tests.implementations import IMPLEMENTATIONS


def mint(server: Server, claims: dict[str, Any], secret: str | None = None, algorithm: str = "HS256") -> str:
    if secret is None:
        if server.secret is None:
            pytest.skip("set CHAT_SECRET to the server's secret to mint tokens")
        secret = server.secret
    return jwt.encode(claims, secret, algorithm=algorithm)


def test_token_is_hs256_jwt(server: Server) -> None:
    """§3: the token is a JWT, HS256, with sub = the user and exp = now + expires_in."""
    if server.secret is None:
        pytest.skip("set CHAT_SECRET to the server's secret to check the signature")
    body = httpx2.get(f"{server.url}/api/token", params={"user": "alice"}).json()
    assert jwt.get_unverified_header(body["token"])["alg"] == "HS256"
    claims = jwt.decode(body["token"], server.secret, algorithms=["HS256"])
    assert claims["sub"] == "alice"
    assert abs(claims["exp"] - (time.time() + body["expires_in"])) < 60


async def test_token_minted_by_anyone_with_the_secret(server: Server, connect: Connector, room: str) -> None:
    """§3: any HS256 token with the shared secret, sub and exp is accepted: tokens are portable."""
    token = mint(server, {"sub": "zoe", "exp": int(time.time()) + 60})
    client = await connect(server, room, "zoe", token=token)
    assert client.welcome["payload"]["user"] == "zoe"


@pytest.mark.parametrize(
    "claims",
    [{"iat": 30}, {"nbf": 30}, {"aud": "another-app"}, {"iss": "elsewhere"}, {"jti": 7}],
    ids=lambda claims: next(iter(claims)),
)
async def test_other_claims_ignored(server: Server, connect: Connector, room: str, claims: dict[str, Any]) -> None:
    """§3: only signature, sub and exp are checked; iat or nbf in the future, aud, iss, jti change nothing."""
    now = int(time.time())
    extra = {k: now + v if k in ("iat", "nbf") else v for k, v in claims.items()}
    token = mint(server, {"sub": "zoe", "exp": now + 60, **extra})
    client = await connect(server, room, "zoe", token=token)
    assert client.welcome["payload"]["user"] == "zoe"


@pytest.mark.parametrize("issuer", list(IMPLEMENTATIONS))
async def test_token_from_another_implementation(
    server: Server, pool: ServerPool, connect: Connector, room: str, issuer: str
) -> None:
    """§3: a token minted by one implementation opens a connection on every other one."""
    if server.name == "running":
        pytest.skip("the other implementations run only when the suite starts the servers")
    token = pool.get(issuer, {}, "").token("yuki")
    client = await connect(server, room, "yuki", token=token)
    assert client.welcome["payload"]["user"] == "yuki"


@pytest.mark.parametrize(
    "case",
    ["wrong secret", "expired", "no exp", "no sub", "invalid user", "alg none", "not a jwt"],
)
async def test_bad_tokens_refused(server: Server, room: str, case: str) -> None:
    """§3, §4: a token that is forged, expired, incomplete or malformed is refused with HTTP 403."""
    now = int(time.time())
    tokens: dict[str, Callable[[], str]] = {
        "wrong secret": lambda: mint(server, {"sub": "a", "exp": now + 60}, secret="another-secret-another-secret-12"),
        "expired": lambda: mint(server, {"sub": "a", "exp": now - 5}),
        "no exp": lambda: mint(server, {"sub": "a"}),
        "no sub": lambda: mint(server, {"exp": now + 60}),
        "invalid user": lambda: mint(server, {"sub": "not a name", "exp": now + 60}),
        "alg none": lambda: jwt.encode({"sub": "a", "exp": now + 60}, "", algorithm="none"),
        "not a jwt": lambda: "abc.def.ghi",
    }
    assert await handshake_status(chat_url(server, room, token=tokens[case]())) == 403


async def test_cookie_authenticates(server: Server, connect: Connector, room: str) -> None:
    """§3: the chat_token cookie set by /api/token authenticates the WebSocket like ?token= does."""
    client = await connect(server, room, "carol", auth="cookie")
    assert client.welcome["payload"]["user"] == "carol"


async def test_tokens_never_logged(server: Server, connect: Connector, room: str) -> None:
    """§3: no token appears in the server's log, accepted or refused, in the query (even percent-encoded)
    or the cookie."""
    if server.name == "running":
        pytest.skip("the log of a server the suite did not start is not readable")
    start = server.log_size()
    good, cookie = server.token("alice"), server.token("bob")
    bad = mint(server, {"sub": "a", "exp": int(time.time()) - 5})
    alice = await connect(server, room, "alice", token=good)
    await connect(server, room, "bob", token=cookie, auth="cookie")
    assert await handshake_status(chat_url(server, room, token=bad)) == 403
    assert await handshake_status(chat_url(server, "bad.room", token=good)) == 403
    encoded = server.token("carol")
    assert await handshake_status(f"{server.ws_url}/ws/chat/{room}?%74oken={encoded}") == 101  # "%74" is "t"
    in_path = server.token("dave")  # pasted where it doesn't belong: logged as a path, or in an error
    assert await handshake_status(f"{server.ws_url}/ws/chat/{in_path}") == 403
    async with httpx2.AsyncClient() as http:
        assert (await http.get(f"{server.url}/client/{in_path}")).status_code == 404
    await alice.close()
    await (await connect(server, room, "alice", token=good)).barrier()
    log = server.log(start)
    assert "/ws/chat/" in log, "the handshakes were not logged at all"
    for token in (good, cookie, bad, encoded):
        assert token.split(".")[2] not in log
    assert in_path.split(".")[1] not in log and in_path.split(".")[2] not in log, "not even part of a token"


def test_development_secret_warns(make_server: MakeServer) -> None:
    """§3: without CHAT_SECRET the server starts with a development secret and logs a warning naming it."""
    server = make_server({"CHAT_SECRET": ""}, fresh=True)
    assert "CHAT_SECRET" in server.log()
