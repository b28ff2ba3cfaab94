"""Settings from ``CHAT_*`` environment variables, identical for every implementation."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
DEV_SECRET = "dev-secret-change-me-dev-secret-change-me"  # 32+ bytes: HS256 wants a key that long
# CHAT_REDIS_URL's schemes, as redis-py reads them (chatcore.backend.create_backend)
REDIS_SCHEMES = ("redis", "rediss", "unix")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Settings:
    # Network
    host: str = "127.0.0.1"
    port: int = 8001
    allowed_origins: frozenset[str] = frozenset()  # empty: the server's own localhost origins
    trusted_proxies: tuple[Network, ...] = ()  # empty: X-Forwarded-For is ignored
    # Tokens
    secret: str = DEV_SECRET
    token_ttl: int = 3600
    # History and scale-out
    history_size: int = 500
    redis_url: str = ""  # empty: one process, everything in memory
    presence_ttl: float = 30.0
    room_ttl: float = 86400.0  # how long a room without members keeps its history
    max_rooms: int = 10_000  # rooms a process keeps in memory (without Redis)
    # Timeouts
    heartbeat_interval: float = 20.0
    heartbeat_timeout: float = 40.0
    # Limits
    max_message_bytes: int = 65536
    rate_limit: float = 10.0
    rate_burst: int = 20
    send_queue: int = 256
    # Logging
    log_level: str = "info"
    # Benchmarks
    bench_endpoints: bool = False  # /ws/echo and /ws/bench/{room}: the bare framework's baselines (SPEC.md §18)

    @classmethod
    def from_env(cls, *, default_port: int, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every ``CHAT_*`` variable; a malformed value stops start-up with a message naming it."""
        env = os.environ if environ is None else environ
        redis_url = env.get("CHAT_REDIS_URL", "")
        scheme, separator, _ = redis_url.partition("://")
        if redis_url and (scheme not in REDIS_SCHEMES or not separator):
            raise ValueError(f"CHAT_REDIS_URL must start with redis://, rediss:// or unix://, got {redis_url!r}.")
        interval = _number(env, "CHAT_HEARTBEAT_INTERVAL", 20.0, minimum=0.01)
        rate = _number(env, "CHAT_RATE_LIMIT", 10.0, minimum=0.001)
        secret = env.get("CHAT_SECRET", "") or DEV_SECRET
        origins = frozenset(o.strip() for o in env.get("CHAT_ALLOWED_ORIGINS", "").split(",") if o.strip())
        return cls(
            host=env.get("CHAT_HOST", "127.0.0.1"),
            port=int(_number(env, "CHAT_PORT", default_port, minimum=0, maximum=65535, integer=True)),
            allowed_origins=origins,
            trusted_proxies=_networks(env, "CHAT_TRUSTED_PROXIES"),
            secret=secret,
            token_ttl=int(_number(env, "CHAT_TOKEN_TTL", 3600, minimum=1, integer=True)),
            history_size=int(_number(env, "CHAT_HISTORY_SIZE", 500, minimum=1, integer=True)),
            redis_url=redis_url,
            presence_ttl=_number(env, "CHAT_PRESENCE_TTL", 30.0, minimum=0.1),
            # Redis renews a room's keys at each member's heartbeat: they must outlive two of them.
            room_ttl=_number(
                env, "CHAT_ROOM_TTL", max(86400.0, 2 * interval), minimum=2 * interval, why="twice the heartbeat"
            ),
            max_rooms=int(_number(env, "CHAT_MAX_ROOMS", 10_000, minimum=1, integer=True)),
            heartbeat_interval=interval,
            heartbeat_timeout=_number(env, "CHAT_HEARTBEAT_TIMEOUT", 2 * interval, minimum=0.01),
            max_message_bytes=int(_number(env, "CHAT_MAX_MESSAGE_BYTES", 65536, minimum=256, integer=True)),
            rate_limit=rate,
            rate_burst=int(_number(env, "CHAT_RATE_BURST", max(1, round(2 * rate)), minimum=1, integer=True)),
            send_queue=int(_number(env, "CHAT_SEND_QUEUE", 256, minimum=1, integer=True)),
            log_level=_choice(env, "CHAT_LOG_LEVEL", "info", LOG_LEVELS),
            bench_endpoints=_choice(env, "CHAT_BENCH_ENDPOINTS", "0", ("0", "1")) == "1",
        )

    @classmethod
    def load(cls, *, default_port: int) -> Settings:
        """``from_env`` for a server's start-up: a bad value ends the process with one clear line."""
        try:
            return cls.from_env(default_port=default_port)
        except ValueError as exc:
            raise SystemExit(f"Configuration error: {exc}") from None

    def origins_for(self, port: int) -> frozenset[str]:
        """Origins allowed for a server listening on ``port``."""
        if self.allowed_origins:
            return self.allowed_origins
        return frozenset({f"http://localhost:{port}", f"http://127.0.0.1:{port}"})


def _networks(env: Mapping[str, str], name: str) -> tuple[Network, ...]:
    networks = []
    for item in (i.strip() for i in env.get(name, "").split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{name} must list IP addresses or networks (10.0.0.0/8), got {item!r}.") from None
    return tuple(networks)


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").lower() or default
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
    return value


def _number(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    minimum: float,
    maximum: float = 1e9,
    integer: bool = False,
    why: str = "",
) -> float:
    raw = env.get(name, "")
    if not raw:
        return default
    kind = "an integer" if integer else "a number"
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ValueError(f"{name} must be {kind}, got {raw!r}.") from None
    if not math.isfinite(value) or not minimum <= value <= maximum:
        lowest = f"{minimum:g} ({why})" if why else f"{minimum:g}"
        raise ValueError(f"{name} must be {kind} from {lowest} to {maximum:g}, got {raw!r}.")
    return value
