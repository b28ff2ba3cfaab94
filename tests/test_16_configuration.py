"""SPEC.md §16: configuration by CHAT_* variables; a bad value stops start-up with a message naming it."""

from __future__ import annotations

import pytest

from tests.conftest import MakeServer


@pytest.mark.parametrize(
    "env",
    [
        {"CHAT_HISTORY_SIZE": "lots"},
        {"CHAT_RATE_LIMIT": "-1"},
        {"CHAT_RATE_LIMIT": "inf"},
        {"CHAT_HEARTBEAT_INTERVAL": "0"},
        {"CHAT_HEARTBEAT_INTERVAL": "nan"},
        {"CHAT_PORT": "70000"},
        {"CHAT_LOG_LEVEL": "loud"},
        {"CHAT_REDIS_URL": "http://127.0.0.1:6379"},
        {"CHAT_PRESENCE_TTL": "0"},
        {"CHAT_ROOM_TTL": "30"},  # less than twice the heartbeat interval (20 s)
        {"CHAT_MAX_ROOMS": "0"},
        {"CHAT_BENCH_ENDPOINTS": "yes"},
    ],
    ids=lambda env: "=".join(next(iter(env.items()))),
)
def test_bad_setting_stops_startup(make_server: MakeServer, env: dict[str, str]) -> None:
    """§16: a malformed CHAT_* value makes the server exit at start-up with one line naming the variable."""
    with pytest.raises(RuntimeError, match="exited") as failure:
        make_server(env, fresh=True)
    assert next(iter(env)) in str(failure.value)
    assert "Traceback" not in str(failure.value)
