"""SPEC.md §16: configuration by CHAT_* variables; a bad value stops start-up with a message naming it."""

from __future__ import annotations

import pytest

from tests.conftest import MakeServer


@pytest.mark.parametrize(
    "env",
    [
        {"CHAT_HISTORY_SIZE": "lots"},
        {"CHAT_RATE_LIMIT": "-1"},
        {"CHAT_HEARTBEAT_INTERVAL": "0"},
        {"CHAT_LOG_LEVEL": "loud"},
    ],
    ids=lambda env: next(iter(env)),
)
def test_bad_setting_stops_startup(make_server: MakeServer, env: dict[str, str]) -> None:
    """§16: a malformed CHAT_* value makes the server exit at start-up, naming the variable."""
    with pytest.raises(RuntimeError, match="exited") as failure:
        make_server(env, fresh=True)
    assert next(iter(env)) in str(failure.value)
