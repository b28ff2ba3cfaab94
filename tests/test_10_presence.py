"""SPEC.md §10: presence.join and presence.leave, per user, not per connection."""

from __future__ import annotations

import pytest

from tests.client import Client, metric, wait_for_metric
from tests.conftest import Connector, MakeServer
from tests.harness import Server

pytestmark = pytest.mark.cluster  # these need several clients: also run on two processes (SPEC.md §17)


@pytest.fixture
async def quiet(make_server: MakeServer) -> Server:
    """A server only these tests use (against CHAT_SERVER_URL: the running one, which must have no other
    clients), with no connection left over from an earlier test."""
    server = make_server(private="presence")
    await wait_for_metric(server, "chat_connections", 0)
    return server


def presence(frame: dict[str, object]) -> tuple[object, object, object]:
    payload = frame["payload"]
    assert isinstance(payload, dict) and set(payload) == {"user", "count"}
    return frame["type"], payload["user"], payload["count"]


async def test_join_and_leave(quiet: Server, connect: Connector, room: str) -> None:
    """§10: the others get presence.join when a user arrives and presence.leave when it goes; not the user."""
    alice = await connect(quiet, room, "alice")
    bob = await connect(quiet, room, "bob")
    assert presence(await alice.recv()) == ("presence.join", "bob", 2)
    assert await bob.settled() == []
    await bob.close()
    assert presence(await alice.recv()) == ("presence.leave", "bob", 1)


async def test_two_tabs_are_one_member(quiet: Server, connect: Connector, room: str) -> None:
    """§10: a user's second connection causes no event; the leave comes only when its last one closes."""
    bob = await connect(quiet, room, "bob")
    tab1 = await connect(quiet, room, "alice")
    assert presence(await bob.recv()) == ("presence.join", "alice", 2)
    tab2 = await connect(quiet, room, "alice")
    assert tab2.welcome["payload"]["members"] == ["alice", "bob"]
    await wait_for_metric(quiet, "chat_connections", 3)
    assert await bob.settled() == []
    await tab1.close()
    await wait_for_metric(quiet, "chat_connections", 2)  # the server has seen tab 1 go
    assert await bob.settled() == []
    await tab2.close()
    assert presence(await bob.recv()) == ("presence.leave", "alice", 1)
    assert await bob.settled() == []


async def test_vanished_client_leaves(quiet: Server, connect: Connector, room: str) -> None:
    """§10: a client whose connection drops without a close frame is gone as soon as the server notices."""
    lost = await metric(quiet, "chat_disconnects_total", {"reason": "connection_lost"})
    alice = await connect(quiet, room, "alice")
    bob: Client = await connect(quiet, room, "bob")
    await alice.recv()  # bob's join
    bob.ws.transport.abort()  # TCP reset, no close frame
    assert presence(await alice.recv()) == ("presence.leave", "bob", 1)
    await wait_for_metric(quiet, "chat_disconnects_total", lost + 1, {"reason": "connection_lost"})


async def test_presence_is_per_room(quiet: Server, connect: Connector, room: str) -> None:
    """§10: presence events stay in their room."""
    alice = await connect(quiet, room, "alice")
    await connect(quiet, room + "-other", "bob")
    assert await alice.settled() == []
