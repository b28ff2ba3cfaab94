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

  test("a failed handshake while the server is up is a refusal: no retry, a 'refused' event", async () => {
    const { client, clock, server, events } = setUp();
    server.up = true;
    client.connect();
    FakeSocket.last.serverClose(1006); // what a browser reports for HTTP 403
    await settle();
    assert.equal(events.refused.length, 1);
    assert.deepEqual(events.state.at(-1), { state: "offline", attempt: 0, reason: "refused" });
    clock.advance(60_000);
    assert.equal(FakeSocket.created.length, 1);
    client.connect(); // the page got a new token
    FakeSocket.last.welcome();
    assert.equal(client.state, "open");
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

  test("rate_limited: pause, then resend the refused messages in order; never 50 refusals in a row", async () => {
    const { client, clock, events } = setUp();
    client.connect();
    const socket = FakeSocket.last;
    socket.welcome();
    let tokens = 20; // the server's bucket: 20 at once, then 10 per second (SPEC.md §13.3 defaults)
    let refusedInARow = 0;
    let mostRefusedInARow = 0;
    let seq = 0;
    const committed = [];
    // The fake server answers each frame when the client sends it.
    socket.send = (data) => {
      const frame = JSON.parse(data);
      if (frame.type !== "chat.message") return;
      queueMicrotask(() => {
        if (tokens < 1) {
          refusedInARow += 1;
          mostRefusedInARow = Math.max(mostRefusedInARow, refusedInARow);
          socket.deliver({ type: "error", id: frame.id, payload: { code: "rate_limited", detail: "slow down" } });
          return;
        }
        tokens -= 1;
        refusedInARow = 0;
        if (!committed.includes(frame.payload.text)) committed.push(frame.payload.text);
        socket.deliver({ type: "ack", id: frame.id, seq: ++seq });
      });
    };
    const sent = Array.from({ length: 100 }, (_, i) => `m${i}`);
    for (const text of sent) client.send(text);
    for (let second = 0; second < 20 && client.pending.length; second++) {
      await Promise.resolve();
      for (let tick = 0; tick < 10; tick++) {
        await new Promise((resolve) => setImmediate(resolve));
        clock.advance(100);
        tokens = Math.min(20, tokens + 1);
      }
    }
    assert.ok(mostRefusedInARow < 50, `${mostRefusedInARow} refusals in a row: the server would close with 1008`);
    assert.deepEqual(client.pending, []);
    assert.deepEqual(committed, sent);
    assert.ok(events.error.length > 0, "the test should have hit the rate limit");
    assert.ok(events.error.every((error) => error.code === "rate_limited" && !error.dropped));
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

  test("presence: the welcome's members, then joins and leaves", () => {
    const { client, events } = setUp();
    client.connect();
    FakeSocket.last.welcome({ members: ["alice"] });
    FakeSocket.last.deliver({ type: "presence.join", payload: { user: "bob", members: ["alice", "bob"] } });
    FakeSocket.last.deliver({ type: "presence.leave", payload: { user: "bob", members: ["alice"] } });
    assert.deepEqual(events.presence, [
      { kind: "welcome", user: "alice", members: ["alice"] },
      { kind: "join", user: "bob", members: ["alice", "bob"] },
      { kind: "leave", user: "bob", members: ["alice"] },
    ]);
  });
});
