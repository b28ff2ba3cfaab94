// @ts-check
/** Unit tests of the shared client's logic (`make client-test`): a fake socket plays the server, a fake clock the time. */
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { ChatClient, DEFAULTS, SendBufferFullError, backoff } from "../chat-client.js";
import { FakeClock, FakeSocket } from "./fakes.js";

/**
 * A client on a fake socket and clock, and every event it dispatched, by type.
 * @param {import("../chat-client.js").Options} [options]
 */
function setUp(options = {}) {
  const clock = new FakeClock();
  /** @type {{up: boolean}} what the probe answers: is the server up? */
  const server = { up: false };
  const client = new ChatClient("lobby", {
    server: "ws://chat.test",
    WebSocket: FakeSocket,
    clock,
    random: () => 1 - Number.EPSILON, // the longest delay; tests that look at jitter pass their own
    probe: async () => server.up,
    ...options,
  });
  /** @type {Record<string, any[]>} */
  const events = {};
  for (const type of ["state", "message", "ack", "presence", "hole", "refused", "error"]) {
    events[type] = [];
    client.addEventListener(type, (event) => events[type].push(/** @type {any} */ (event).detail));
  }
  return { client, clock, server, events };
}

/** Let the probe's promise settle. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

const texts = (/** @type {FakeSocket} */ socket) => socket.sentOf("chat.message").map((frame) => frame.payload.text);

beforeEach(() => {
  FakeSocket.created = [];
});

describe("backoff", () => {
  test("the first delay is 0.5-1 s, each later ceiling doubles, capped at 20 s", () => {
    const ceilings = [1000, 2000, 4000, 8000, 16000, 20000, 20000, 20000];
    ceilings.forEach((ceiling, attempt) => {
      assert.equal(backoff(attempt, DEFAULTS, () => 0), 500);
      assert.equal(backoff(attempt, DEFAULTS, () => 1), ceiling);
    });
  });

  test("full jitter: delays spread over the whole range", () => {
    const delays = Array.from({ length: 2000 }, () => backoff(4, DEFAULTS));
    assert.ok(delays.every((delay) => delay >= 500 && delay <= 16000));
    for (let bucket = 0; bucket < 4; bucket++) {
      const low = 500 + (bucket * 15500) / 4;
      const count = delays.filter((delay) => delay >= low && delay < low + 15500 / 4).length;
      assert.ok(count > 300, `only ${count} of 2000 delays in [${low}, ${low + 15500 / 4})`); // 500 expected
    }
  });
});

describe("reconnecting", () => {
  test("a lost connection reconnects after the backoff, resuming with since and epoch", () => {
    const { client, clock, events } = setUp({ since: 0 });
    client.connect();
    assert.equal(FakeSocket.last.url, "ws://chat.test/ws/chat/lobby?since=0");
    FakeSocket.last.welcome({ epoch: "e1" });
    FakeSocket.last.message(1, "m1");
    FakeSocket.last.message(2, "m2");
    FakeSocket.last.serverClose(1006);
    const state = events.state.at(-1);
    assert.equal(state.state, "reconnecting");
    assert.ok(state.delay >= 500 && state.delay <= 1000, `first delay ${state.delay}`);
    assert.equal(state.retryAt, clock.now() + state.delay);
    clock.advance(state.delay - 1);
    assert.equal(FakeSocket.created.length, 1);
    clock.advance(1);
    assert.equal(FakeSocket.created.length, 2);
    assert.equal(FakeSocket.last.url, "ws://chat.test/ws/chat/lobby?since=2&epoch=e1");
  });

  test("the attempt count resets only after the connection stayed open 5 s", () => {
    const { client, clock, events } = setUp();
    client.connect();
    FakeSocket.last.welcome();
    FakeSocket.last.serverClose(1001);
    assert.ok(events.state.at(-1).delay <= 1000, "attempt 0: up to 1 s");
    clock.advance(1000);
    FakeSocket.last.welcome();
    clock.advance(DEFAULTS.stableAfter - 1);
    FakeSocket.last.serverClose(1001);
    assert.ok(events.state.at(-1).delay > 1000, "attempt 1: up to 2 s");
    clock.advance(2000);
    FakeSocket.last.welcome();
    clock.advance(DEFAULTS.stableAfter);
    FakeSocket.last.serverClose(1001);
    assert.ok(events.state.at(-1).delay <= 1000, "stable for 5 s: attempt 0 again");
  });

  test("two failed handshakes in a row while the server is up are a refusal: no retry, a 'refused' event", async () => {
    const { client, clock, server, events } = setUp();
    server.up = true;
    client.connect();
    FakeSocket.last.serverClose(1006); // what a browser reports for HTTP 403
    await settle();
    assert.equal(events.refused.length, 0, "once may be a server that started listening just after the try");
    assert.equal(events.state.at(-1).reason, "handshake failed");
    clock.advance(1000);
    FakeSocket.last.serverClose(1006);
    await settle();
    assert.equal(events.refused.length, 1);
    assert.deepEqual(events.state.at(-1), { state: "offline", attempt: 1, reason: "refused" });
    clock.advance(60_000);
    assert.equal(FakeSocket.created.length, 2);
    client.connect(); // the page got a new token
    FakeSocket.last.welcome();
    assert.equal(client.state, "open");
  });

  test("failed handshakes count as a refusal only in a row: one while the server was down breaks the row", async () => {
    const { client, clock, server, events } = setUp();
    client.connect();
    for (const up of [true, false, true]) {
      server.up = up;
      FakeSocket.last.serverClose(1006);
      await settle();
      assert.equal(events.state.at(-1).state, "reconnecting");
      clock.advance(events.state.at(-1).delay);
    }
    assert.equal(events.refused.length, 0);
    assert.equal(FakeSocket.created.length, 4);
  });

  test("a failed handshake while the server is down is retried", async () => {
    const { client, clock, events } = setUp();
    client.connect();
    FakeSocket.last.serverClose(1006);
    await settle();
    assert.equal(events.refused.length, 0);
    assert.equal(events.state.at(-1).state, "reconnecting");
    assert.equal(events.state.at(-1).reason, "server unreachable");
    clock.advance(1000);
    assert.equal(FakeSocket.created.length, 2);
  });

  test("no welcome within the open timeout: give up on that connection and retry", () => {
    const { client, clock, events } = setUp();
    client.connect();
    FakeSocket.last.open();
    clock.advance(DEFAULTS.openTimeout);
    assert.deepEqual(FakeSocket.created[0].closedByClient, { code: 1000, reason: "no welcome from the server in time" });
    assert.equal(events.state.at(-1).state, "reconnecting");
  });

  test("close() stops for good: no reconnect", () => {
    const { client, clock, events } = setUp();
    client.connect();
    FakeSocket.last.welcome();
    client.close();
    assert.equal(FakeSocket.last.closedByClient?.code, 1000);
    assert.deepEqual(events.state.at(-1), { state: "offline", attempt: 0, reason: "closed" });
    clock.advance(60_000);
    assert.equal(FakeSocket.created.length, 1);
  });

  test("reconnectNow() skips the rest of the wait", () => {
    const { client } = setUp();
    client.connect();
    FakeSocket.last.welcome();
    FakeSocket.last.serverClose(1001);
    client.reconnectNow();
    assert.equal(FakeSocket.created.length, 2);
    assert.equal(client.state, "connecting");
  });
});

describe("heartbeat", () => {
  test("answers the server's pings", () => {
    const { client } = setUp();
    client.connect();
    FakeSocket.last.welcome();
    FakeSocket.last.deliver({ type: "ping" });
    assert.deepEqual(FakeSocket.last.sent, [{ type: "pong" }]);
  });

  test("a connection silent for heartbeat + 10 s is dead: the client closes it and reconnects", () => {
    const { client, clock } = setUp();
    client.connect();
    const socket = FakeSocket.last;
    socket.welcome({ heartbeat: 20 });
    clock.advance(29_000);
    socket.deliver({ type: "ping" }); // any frame restarts the count
    clock.advance(29_999);
    assert.equal(socket.closedByClient, null);
    clock.advance(1);
    assert.deepEqual(socket.closedByClient, { code: 1000, reason: "nothing from the server for 30 s" });
    assert.equal(client.state, "reconnecting");
  });
});

describe("sending", () => {
  test("messages sent while offline are queued and sent, in order, once connected", () => {
    const { client } = setUp();
    const ids = ["one", "two", "three"].map((text) => client.send(text));
    client.connect();
    assert.deepEqual(FakeSocket.last.sent, []);
    FakeSocket.last.welcome();
    const frames = FakeSocket.last.sentOf("chat.message");
    assert.deepEqual(frames.map((frame) => frame.id), ids);
    assert.deepEqual(texts(FakeSocket.last), ["one", "two", "three"]);
    assert.equal(new Set(ids).size, 3);
    assert.ok(ids.every((id) => /^[0-9a-f]{32}$/.test(id)));
  });

  test("the buffer holds 100 messages; the 101st throws a clear error", () => {
    const { client } = setUp();
    for (let i = 0; i < DEFAULTS.bufferSize; i++) client.send(`m${i}`);
    assert.throws(() => client.send("one too many"), (error) => {
      assert.ok(error instanceof SendBufferFullError);
      assert.match(error.message, /100 messages are already waiting for the server/);
      return true;
    });
    assert.equal(client.pending.length, 100);
  });

  test("text must be 1-2000 characters, counted as code points", () => {
    const { client } = setUp();
    assert.throws(() => client.send(""), RangeError);
    assert.throws(() => client.send("x".repeat(2001)), /1-2000 characters long; this one has 2001/);
    client.send("😀".repeat(2000)); // 4000 UTF-16 units, 2000 characters
    assert.throws(() => client.send(/** @type {any} */ (42)), TypeError);
  });

  test("un-acked messages are resent with the same id after a reconnect; acked ones are not", () => {
    const { client, clock } = setUp();
    client.connect();
    FakeSocket.last.welcome();
    const first = client.send("first");
    const second = client.send("second");
    FakeSocket.last.deliver({ type: "ack", id: first, seq: 1 });
    FakeSocket.last.serverClose(1006);
    clock.advance(1000);
    FakeSocket.last.welcome({ resumed: true, seq: 1 });
    assert.deepEqual(FakeSocket.last.sentOf("chat.message").map((frame) => frame.id), [second]);
    assert.deepEqual(client.pending, [second]);
  });

  test("an ack timeout resends on the same connection, same id", () => {
    const { client, clock, events } = setUp();
    client.connect();
    FakeSocket.last.welcome();
    const id = client.send("hello");
    clock.advance(DEFAULTS.ackTimeout - 1);
    assert.equal(FakeSocket.last.sentOf("chat.message").length, 1);
    clock.advance(1);
    assert.deepEqual(FakeSocket.last.sentOf("chat.message").map((frame) => frame.id), [id, id]);
    FakeSocket.last.deliver({ type: "ack", id, seq: 7 });
    FakeSocket.last.deliver({ type: "ack", id, seq: 7 }); // the retry's ack
    assert.deepEqual(events.ack, [{ id, seq: 7 }]);
    clock.advance(DEFAULTS.ackTimeout * 3);
    assert.equal(FakeSocket.last.sentOf("chat.message").length, 2);
  });

  test("our own copy of a message settles it like an ack", () => {
    const { client, events } = setUp();
    client.connect();
    FakeSocket.last.welcome({ user: "alice" });
    const id = client.send("hi");
    FakeSocket.last.message(1, id, "alice");
    assert.deepEqual(client.pending, []);
    assert.deepEqual(events.ack, [{ id, seq: 1 }]);
    assert.equal(events.message[0].own, true);
  });

  test("at most 10 messages in flight; each ack lets the next one go", () => {
    const { client } = setUp();
    client.connect();
    FakeSocket.last.welcome();
    const ids = Array.from({ length: 15 }, (_, i) => client.send(`m${i}`));
    assert.equal(FakeSocket.last.sentOf("chat.message").length, 10);
    FakeSocket.last.deliver({ type: "ack", id: ids[0], seq: 1 });
    assert.deepEqual(FakeSocket.last.sentOf("chat.message").map((frame) => frame.id), ids.slice(0, 11));
  });

  /**
   * A fake server with SPEC.md §13.3's token bucket (on the fake clock) answers each frame as it arrives;
   * time moves in 20 ms steps until nothing is pending. Returns what it committed and refused.
   * @param {{rate: number, burst: number, latency?: number}} limit  latency: ms before the answer arrives
   */
  async function flushThroughRateLimit(limit, count = 100) {
    const latency = limit.latency ?? 0;
    const { client, clock, events } = setUp();
    client.connect();
    const socket = FakeSocket.last;
    socket.welcome();
    let tokens = limit.burst;
    let refilledAt = clock.now();
    let refusedInARow = 0;
    let mostRefusedInARow = 0;
    /** @type {string[]} */
    const committed = []; // ids, in commit order
    const later = (/** @type {() => void} */ answer) =>
      latency ? clock.setTimeout(answer, latency) : queueMicrotask(answer);
    socket.send = (data) => {
      const frame = JSON.parse(data);
      if (frame.type !== "chat.message") return;
      tokens = Math.min(limit.burst, tokens + ((clock.now() - refilledAt) * limit.rate) / 1000);
      refilledAt = clock.now();
      if (tokens < 1) {
        refusedInARow += 1;
        mostRefusedInARow = Math.max(mostRefusedInARow, refusedInARow);
        const error = { type: "error", id: frame.id, payload: { code: "rate_limited", detail: "slow down" } };
        later(() => socket.deliver(error));
        return;
      }
      tokens -= 1;
      refusedInARow = 0;
      let seq = committed.indexOf(frame.id) + 1; // a retry of a committed id: acked again, not committed again
      if (seq === 0) seq = committed.push(frame.id);
      later(() => socket.deliver({ type: "ack", id: frame.id, seq }));
    };
    const sent = Array.from({ length: count }, (_, i) => client.send(`m${i}`));
    for (let step = 0; step < 3000 && client.pending.length; step++) {
      await new Promise((resolve) => setImmediate(resolve));
      clock.advance(20);
    }
    assert.deepEqual(client.pending, []);
    return { sent, committed, mostRefusedInARow, errors: events.error };
  }

  test("100 messages typed offline: paced below the server's default limit, never rate-limited", async () => {
    const { sent, committed, errors } = await flushThroughRateLimit({ rate: 10, burst: 20 });
    assert.deepEqual(committed, sent);
    assert.deepEqual(errors, []);
  });

  test("a server with a lower limit: pause, then one at a time; in order, never 50 refusals in a row", async () => {
    // Answers take 150 ms, longer than the client's send interval (125 ms): several messages are in flight
    // when a refusal arrives, and one sent after the refused one could be committed before it.
    const { sent, committed, mostRefusedInARow, errors } = await flushThroughRateLimit({ rate: 3, burst: 4, latency: 150 });
    assert.ok(errors.length > 0, "the test should have hit the rate limit");
    assert.ok(errors.every((error) => error.code === "rate_limited" && !error.dropped));
    assert.ok(mostRefusedInARow < 50, `${mostRefusedInARow} refusals in a row: the server would close with 1008`);
    assert.deepEqual(committed, sent, "committed once each, in the order sent");
  });

  test("a message the server rejects is dropped, with an error event saying so", () => {
    const { client, events } = setUp();
    client.connect();
    FakeSocket.last.welcome();
    const id = client.send("hi");
    FakeSocket.last.deliver({ type: "error", id, payload: { code: "invalid_message", detail: "no" } });
    assert.deepEqual(client.pending, []);
    assert.deepEqual(events.error, [{ id, code: "invalid_message", detail: "no", dropped: true }]);
  });

  test("a message the server rejects frees its place for the next one", () => {
    const { client } = setUp({ maxInFlight: 1 });
    client.connect();
    FakeSocket.last.welcome();
    const [first, second] = [client.send("one"), client.send("two")];
    FakeSocket.last.deliver({ type: "error", id: first, payload: { code: "invalid_message", detail: "no" } });
    assert.deepEqual(FakeSocket.last.sentOf("chat.message").map((frame) => frame.id), [first, second]);
  });

  test("text with half of a character (a lone surrogate) is refused at once: the server can't parse it", () => {
    const { client } = setUp();
    assert.throws(() => client.send("cut \ud83d"), /half of a character/);
    assert.deepEqual(client.pending, []);
  });

  test("a 1009 close drops the largest message in flight, counted in bytes", () => {
    const { client, events } = setUp();
    client.connect();
    FakeSocket.last.welcome();
    const ascii = client.send("a".repeat(1200)); // 1200 characters, 1200 bytes
    const cjk = client.send("字".repeat(1000)); // 1000 characters, 3000 bytes
    FakeSocket.last.serverClose(1009);
    assert.deepEqual(client.pending, [ascii]);
    assert.equal(events.error[0].id, cjk);
  });

  test("a 1009 close drops the largest message in flight instead of resending it for ever", () => {
    const { client, clock, events } = setUp();
    client.connect();
    FakeSocket.last.welcome();
    const small = client.send("small");
    const big = client.send("b".repeat(2000));
    FakeSocket.last.serverClose(1009);
    assert.deepEqual(client.pending, [small]);
    assert.equal(events.error[0].id, big);
    assert.equal(events.error[0].dropped, true);
    clock.advance(1000);
    FakeSocket.last.welcome({ resumed: true });
    assert.deepEqual(texts(FakeSocket.last), ["small"]);
  });
});

describe("resume", () => {
  test("duplicates are dropped by seq: each message is shown once", () => {
    const { client, clock, events } = setUp({ since: 0 });
    client.connect();
    FakeSocket.last.welcome({ epoch: "e1" });
    for (const seq of [1, 2, 3]) FakeSocket.last.message(seq, `m${seq}`);
    FakeSocket.last.serverClose(1006);
    clock.advance(1000);
    assert.match(FakeSocket.last.url, /since=3&epoch=e1$/);
    FakeSocket.last.welcome({ epoch: "e1", resumed: true, seq: 4 });
    for (const seq of [2, 3, 4, 4, 5]) FakeSocket.last.message(seq, `m${seq}`); // overlapping and repeated
    assert.deepEqual(events.message.map((message) => message.seq), [1, 2, 3, 4, 5]);
    assert.equal(events.hole.length, 0);
  });

  test("a seq gap while connected: reconnect with since to fill it", () => {
    const { client, clock, events } = setUp({ since: 0 });
    client.connect();
    const socket = FakeSocket.last;
    socket.welcome({ epoch: "e1", resumed: false });
    socket.message(1, "m1");
    socket.message(3, "m3");
    assert.deepEqual(events.message.map((message) => message.seq), [1]);
    assert.match(String(socket.closedByClient?.reason), /seq 3 after 1/);
    clock.advance(1000);
    assert.match(FakeSocket.last.url, /since=1&epoch=e1$/);
    FakeSocket.last.welcome({ epoch: "e1", resumed: true, seq: 3 });
    FakeSocket.last.message(2, "m2");
    FakeSocket.last.message(3, "m3");
    assert.deepEqual(events.message.map((message) => message.seq), [1, 2, 3]);
  });

  test("the first replay after resumed: false may start anywhere; later ones must follow on", () => {
    const { client, events } = setUp({ since: 0 });
    client.connect();
    FakeSocket.last.welcome({ resumed: false, seq: 600 });
    FakeSocket.last.message(101, "m101"); // the oldest retained
    FakeSocket.last.message(102, "m102");
    assert.deepEqual(events.message.map((message) => message.seq), [101, 102]);
    assert.equal(FakeSocket.last.closedByClient, null);
  });

  test("resumed: false after having seen the room: a 'hole' event; a new epoch starts seqs again", () => {
    const { client, clock, events } = setUp({ since: 0 });
    client.connect();
    FakeSocket.last.welcome({ epoch: "e1" });
    FakeSocket.last.message(1, "m1");
    FakeSocket.last.message(2, "m2");
    assert.equal(events.hole.length, 0, "no hole on the first welcome");
    FakeSocket.last.serverClose(1006);
    clock.advance(1000);
    FakeSocket.last.welcome({ epoch: "e2", resumed: false }); // the server restarted without its history
    assert.deepEqual(events.hole, [{ epoch: "e2", previousEpoch: "e1" }]);
    FakeSocket.last.message(1, "n1");
    assert.deepEqual(events.message.map((message) => [message.epoch, message.seq]), [["e1", 1], ["e1", 2], ["e2", 1]]);
  });

  test("the room's seq went back in the same epoch (Redis lost its latest writes): new messages still show", () => {
    const { client, clock, events } = setUp({ since: 0 });
    client.connect();
    FakeSocket.last.welcome({ epoch: "e1" });
    for (const seq of [1, 2, 3, 4, 5]) FakeSocket.last.message(seq, `m${seq}`);
    FakeSocket.last.serverClose(1013, "try again later");
    clock.advance(1000);
    FakeSocket.last.welcome({ epoch: "e1", resumed: false, seq: 3 });
    for (const seq of [1, 2, 3]) FakeSocket.last.message(seq, `m${seq}`); // the replay: what survived
    FakeSocket.last.message(4, "new4");
    FakeSocket.last.message(5, "new5");
    assert.deepEqual(events.message.map((message) => message.id), ["m1", "m2", "m3", "m4", "m5", "new4", "new5"]);
    assert.equal(events.hole.length, 1);
  });

  test("no hole when no message had been seen; without since, a reconnect asks only for what is new", () => {
    const { client, clock, events } = setUp(); // no since: no history wanted
    client.connect();
    assert.equal(FakeSocket.last.url, "ws://chat.test/ws/chat/lobby");
    FakeSocket.last.welcome({ epoch: "e1", seq: 400 });
    FakeSocket.last.serverClose(1006);
    clock.advance(1000);
    assert.equal(FakeSocket.last.url, "ws://chat.test/ws/chat/lobby?since=400&epoch=e1");
    const fresh = setUp({ since: 0 });
    fresh.client.connect();
    FakeSocket.last.welcome({ epoch: "e1", seq: 0 });
    FakeSocket.last.serverClose(1006);
    fresh.clock.advance(1000);
    FakeSocket.last.welcome({ epoch: "e2", resumed: false }); // an empty room comes back with a new epoch (§9)
    assert.deepEqual([...events.hole, ...fresh.events.hole], []);
  });

  test("close() from an event listener sticks: no reconnect, no 'open' without a socket", () => {
    const first = setUp();
    first.client.addEventListener("state", (event) => {
      if (/** @type {any} */ (event).detail.state === "reconnecting") first.client.close();
    });
    first.client.connect();
    FakeSocket.last.welcome();
    FakeSocket.last.serverClose(1001);
    first.clock.advance(60_000);
    assert.equal(FakeSocket.created.length, 1);
    assert.equal(first.client.state, "offline");

    const second = setUp({ since: 0 });
    second.client.addEventListener("hole", () => second.client.close());
    second.client.connect();
    FakeSocket.last.welcome({ epoch: "e1" });
    FakeSocket.last.message(1, "m1");
    FakeSocket.last.serverClose(1006);
    second.clock.advance(1000);
    FakeSocket.last.welcome({ epoch: "e2" });
    assert.equal(second.client.state, "offline");
    assert.equal(second.events.presence.length, 1, "no presence event from the closed connection's welcome");
    second.clock.advance(60_000);
    assert.equal(FakeSocket.created.length, 3);
  });

  test("presence: the welcome's members, then the list kept from joins and leaves", () => {
    const { client, events } = setUp();
    client.connect();
    FakeSocket.last.welcome({ members: ["alice", "carol"] });
    FakeSocket.last.deliver({ type: "presence.join", payload: { user: "bob", count: 3 } });
    FakeSocket.last.deliver({ type: "presence.join", payload: { user: "bob", count: 3 } }); // already in: no change
    FakeSocket.last.deliver({ type: "presence.leave", payload: { user: "carol", count: 2 } });
    FakeSocket.last.deliver({ type: "presence.leave", payload: { user: "dave", count: 2 } }); // came and went unseen
    assert.deepEqual(events.presence, [
      { kind: "welcome", user: "alice", members: ["alice", "carol"], count: 2 },
      { kind: "join", user: "bob", members: ["alice", "bob", "carol"], count: 3 },
      { kind: "join", user: "bob", members: ["alice", "bob", "carol"], count: 3 },
      { kind: "leave", user: "carol", members: ["alice", "bob"], count: 2 },
      { kind: "leave", user: "dave", members: ["alice", "bob"], count: 2 },
    ]);
  });

  test("presence: a reconnection's welcome replaces the list", () => {
    const { client, events } = setUp();
    client.connect();
    FakeSocket.last.welcome({ members: ["alice", "bob"] });
    FakeSocket.last.serverClose(1006);
    client.reconnectNow();
    FakeSocket.last.welcome({ members: ["alice"] });
    FakeSocket.last.deliver({ type: "presence.join", payload: { user: "carol", count: 2 } });
    assert.deepEqual(events.presence.at(-1), { kind: "join", user: "carol", members: ["alice", "carol"], count: 2 });
  });
});
