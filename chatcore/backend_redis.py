"""Room state in Redis, shared by every process of a chat server (SPEC.md §7-§10), with redis-py's asyncio client.

Keys per room (the room in braces, so that Redis Cluster keeps a room's keys in one slot):

    chat:{room}:meta       hash: "epoch", and "seq", the room's latest seq
    chat:{room}:history    list: the last CHAT_HISTORY_SIZE messages, oldest first, as "seq\\nuser id\\nframe"
    chat:{room}:ids        hash: "user id" -> seq, for the messages in history (idempotency, SPEC.md §8)
    chat:{room}:presence   sorted set: "user\\nprocess", scored with the time (Redis's clock, ms) it expires

Every change is one Lua script, so it is atomic across processes: seqs are global per room and without gaps,
and a retried id is recognised wherever it lands. Presence is kept per process, not per connection: a process
adds "user\\nprocess" when the user's first connection to it opens, removes it when the last one closes, and
renews its entries every third of CHAT_PRESENCE_TTL (``sweep``). The entries of a process that died expire
by themselves; the next ``sweep`` of any process removes them and reports who left.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import Counter

import orjson
import redis.asyncio as redis

from chatcore.backend import BackendUnavailable, Departure, Message, PresenceChange, Published, Snapshot
from chatcore.redis_client import channel, errors_as_unavailable, keys

logger = logging.getLogger("chat")

NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: meta, history, ids, the room's channel. ARGV: "user id", the payload's JSON, history size, an epoch for a
# new room, the room's TTL (ms). Returns {seq, frame}, or {seq} for a retry. It publishes the frame itself: every
# process gets the room's messages in seq order, because Redis runs scripts one at a time.
PUBLISH = """
local seq = redis.call('HGET', KEYS[3], ARGV[1])
if seq then return {tonumber(seq)} end
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[4])
seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local frame = '{"type":"chat.message","seq":' .. seq .. ',"payload":' .. ARGV[2] .. '}'
redis.call('RPUSH', KEYS[2], seq .. '\\n' .. ARGV[1] .. '\\n' .. frame)
redis.call('HSET', KEYS[3], ARGV[1], seq)
redis.call('PUBLISH', KEYS[4], seq .. ' ' .. frame)
while redis.call('LLEN', KEYS[2]) > tonumber(ARGV[3]) do
    local old = redis.call('LPOP', KEYS[2])
    local a = string.find(old, '\\n', 1, true)
    local b = string.find(old, '\\n', a + 1, true)
    redis.call('HDEL', KEYS[3], string.sub(old, a + 1, b - 1))
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
return {seq, frame}
"""

# KEYS: meta, history, ids. ARGV: an epoch for a new room, the client's since ("" for none) and epoch ("" for none),
# the room's TTL (ms). Returns {epoch, seq, 1 if resumed else 0, the messages to replay...}: after since when it
# resumes, all of history when it doesn't (SPEC.md §9), nothing without since. History holds seqs seq-LLEN+1 .. seq.
# A room's keys live for its TTL after its last message or snapshot: a member's heartbeat takes one (see Session).
SNAPSHOT = """
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
local epoch, seq = meta[1], tonumber(meta[2] or '0')
if ARGV[2] == '' then return {epoch, seq, 0} end
local since = tonumber(ARGV[2])
local first = seq - redis.call('LLEN', KEYS[2]) + 1
local resumed = 0
local start = 0
if ARGV[3] == epoch and first - 1 <= since and since <= seq then
    resumed = 1
    start = since - first + 1
end
local reply = {epoch, seq, resumed}
for _, entry in ipairs(redis.call('LRANGE', KEYS[2], start, -1)) do table.insert(reply, entry) end
return reply
"""

# KEYS: presence. ARGV: "user\\nprocess", user, TTL (ms). Returns {1 if no live entry of the user was there, live...}.
JOIN = (
    NOW_MS
    + """
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
local first, listed = 1, false
local prefix = ARGV[2] .. '\\n'
for _, member in ipairs(live) do
    if string.sub(member, 1, #prefix) == prefix then first = 0 end
    if member == ARGV[1] then listed = true end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
if not listed then table.insert(live, ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[3]))
table.insert(live, 1, first)
return live
"""
)

# KEYS: presence, meta, history. ARGV: "user\\nprocess" to remove, or "" to only read.
# Returns the live entries; forgets a room that has neither members nor messages (SPEC.md §9).
LEAVE = (
    NOW_MS
    + """
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[1], ARGV[1]) end
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
if #live == 0 and redis.call('LLEN', KEYS[3]) == 0 then redis.call('DEL', KEYS[2]) end
return live
"""
)

# KEYS: presence. ARGV: TTL (ms), then this process's entries in the room.
# Renews them (only those still there: XX, so a leave that ran meanwhile stays done), then removes expired
# entries; returns {number of expired entries, expired..., live...}.
SWEEP = (
    NOW_MS
    + """
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[1]))
local reply = {#expired}
for _, member in ipairs(expired) do table.insert(reply, member) end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do table.insert(reply, member) end
return reply
"""
)


def users(entries: list[str]) -> list[str]:
    """The sorted, distinct users of presence entries ("user\\nprocess")."""
    return sorted({entry.partition("\n")[0] for entry in entries})


class RedisBackend:
    """Rooms in Redis: what every process of the server sees alike. ``client`` is redis-py's asyncio client,
    made with ``decode_responses=True``."""

    shared = True

    def __init__(
        self, client: redis.Redis, *, history_size: int, presence_ttl: float, room_ttl: float = 86400.0
    ) -> None:
        self.client = client
        self.history_size = history_size
        self.ttl_ms = max(1, round(presence_ttl * 1000))
        self.room_ttl_ms = max(1, round(room_ttl * 1000))
        self.process = secrets.token_hex(8)  # this process's name in presence entries
        self.rooms: dict[str, Counter[str]] = {}  # room -> user -> this process's open connections
        self._publish = client.register_script(PUBLISH)
        self._snapshot = client.register_script(SNAPSHOT)
        self._join = client.register_script(JOIN)
        self._leave = client.register_script(LEAVE)
        self._sweep = client.register_script(SWEEP)

    async def publish(self, room: str, user: str, msg_id: str, text: str) -> Published:
        meta, history, ids, _ = keys(room)
        payload = orjson.dumps({"id": msg_id, "user": user, "text": text, "ts": int(time.time() * 1000)})
        args = (f"{user} {msg_id}", payload, self.history_size, secrets.token_hex(8), self.room_ttl_ms)
        async with errors_as_unavailable():
            reply = await self._publish(keys=[meta, history, ids, channel(room)], args=args)
        if len(reply) == 1:
            return Published(int(reply[0]), None)
        seq, frame = int(reply[0]), str(reply[1])
        return Published(seq, Message(seq, frame))

    async def snapshot(self, room: str, since: int | None, epoch: str | None) -> Snapshot:
        meta, history, ids, _ = keys(room)
        args = (secrets.token_hex(8), "" if since is None else str(since), epoch or "", self.room_ttl_ms)
        async with errors_as_unavailable():
            reply = await self._snapshot(keys=[meta, history, ids], args=args)
        messages = [Message(int(seq), frame) for seq, _, frame in (entry.split("\n", 2) for entry in reply[3:])]
        return Snapshot(str(reply[0]), int(reply[1]), bool(reply[2]), messages)

    async def join(self, room: str, user: str) -> PresenceChange:
        self.rooms.setdefault(room, Counter())[user] += 1
        try:
            async with errors_as_unavailable():
                reply = await self._join(keys=[keys(room)[3]], args=(self.entry(user), user, self.ttl_ms))
        except BaseException:
            self._forget(room, user)
            raise
        return PresenceChange(users(reply[1:]), bool(reply[0]))

    async def leave(self, room: str, user: str) -> PresenceChange:
        last_here = self._forget(room, user)
        meta, history, _, presence = keys(room)
        async with errors_as_unavailable():  # if Redis is down, the entry expires there by itself
            live = await self._leave(keys=[presence, meta, history], args=[self.entry(user) if last_here else ""])
        members = users(live)
        return PresenceChange(members, user not in members)

    async def sweep(self) -> list[Departure]:
        """Renew this process's presence entries, and remove the expired ones of processes that died: who left
        with them. Call it every third of the presence TTL. If Redis fails on the way, it returns the
        departures found so far; the next sweep goes on."""
        departures = []
        for room in list(self.rooms):
            entries = [self.entry(user) for user in self.rooms.get(room, ())]  # now: a leave may have run
            if not entries:
                continue
            try:
                async with errors_as_unavailable():
                    reply = await self._sweep(keys=[keys(room)[3]], args=[self.ttl_ms, *entries])
            except BackendUnavailable as exc:
                logger.warning("Presence not renewed: %s", exc)
                break
            count = int(reply[0])
            expired, members = users(reply[1 : 1 + count]), users(reply[1 + count :])
            departures += [Departure(room, user, members) for user in expired if user not in members]
        return departures

    async def aclose(self) -> None:
        await self.client.aclose()

    def entry(self, user: str) -> str:
        return f"{user}\n{self.process}"

    def _forget(self, room: str, user: str) -> bool:
        """One connection of ``user`` to ``room`` fewer in this process; True when it was the last one here."""
        counts = self.rooms[room]
        counts[user] -= 1
        if counts[user] > 0:
            return False
        del counts[user]
        if not counts:
            del self.rooms[room]
        return True
