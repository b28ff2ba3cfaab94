// @ts-check
/** The shared chat client: one room over one WebSocket that survives disconnects (ES module, no build step). */
//
// What it does for the page (shared_client/README.md has the details):
// - reconnects with exponential backoff and full jitter, and resumes with `since` and `epoch` (SPEC.md §9);
// - keeps what the user sent until the server acks it, and resends it with the same id (§8: exactly once);
// - drops duplicates by seq, and reconnects to fill a seq gap (§7);
// - answers the server's pings, and gives up on a connection that has been silent too long (§11);
// - does not retry a refused handshake (§4: HTTP 403): it tells the page, which can fetch a new token.

/** @typedef {"connecting" | "open" | "reconnecting" | "offline"} State */

/**
 * @typedef {object} Clock  What the client schedules with; the tests pass a fake one.
 * @property {() => number} now  milliseconds
 * @property {(callback: () => void, ms: number) => unknown} setTimeout
 * @property {(handle: unknown) => void} clearTimeout
 */

/**
 * @typedef {object} Socket  The part of the browser's WebSocket that the client uses.
 * @property {number} readyState
 * @property {((event: unknown) => void) | null} onopen
 * @property {((event: {data: unknown}) => void) | null} onmessage
 * @property {((event: {code: number, reason: string}) => void) | null} onclose
 * @property {((event: unknown) => void) | null} onerror
 * @property {(data: string) => void} send
 * @property {(code?: number, reason?: string) => void} close
 */

/**
 * @typedef {object} Options
 * @property {string} [server]  "ws://host:port"; default: the page's own server
 * @property {number} [since]  first connection only: 0 replays the room's history, unset replays nothing
 * @property {number} [minDelay]  Reconnect: a delay is at least this (ms) ...
 * @property {number} [firstDelay]  ... and at most firstDelay × factor^attempt, capped at maxDelay (ms)
 * @property {number} [factor]
 * @property {number} [maxDelay]
 * @property {number} [stableAfter]  the attempt count resets once a connection has been open this long (ms)
 * @property {number} [openTimeout]  Timeouts: from opening a connection to its welcome (ms)
 * @property {number} [silenceGrace]  a connection is dead after welcome.heartbeat + this without a frame (ms)
 * @property {number} [ackTimeout]  resend a message that is not acked after this long (ms)
 * @property {number} [rateLimitPause]  stop sending for this long after a rate_limited error (ms)
 * @property {number} [bufferSize]  Limits: messages waiting for their ack; send() throws past this
 * @property {number} [maxInFlight]  messages sent on the connection and not yet acked
 * @property {number} [sendRate]  messages per second, at most, ...
 * @property {number} [sendBurst]  ... after a burst of this many (below the server's default 10/s, burst 20)
 * @property {new (url: string) => Socket} [WebSocket]  Seams for the tests: the socket class,
 * @property {Clock} [clock]  the timers,
 * @property {() => number} [random]  the jitter's random numbers in [0, 1),
 * @property {(httpUrl: string) => Promise<boolean>} [probe]  and "is the server up?" (default: GET /healthz)
 */

export const DEFAULTS = Object.freeze({
  // Reconnect (milliseconds)
  minDelay: 500,
  firstDelay: 1_000,
  factor: 2,
  maxDelay: 20_000,
  stableAfter: 5_000,
  // Timeouts (milliseconds)
  openTimeout: 10_000,
  silenceGrace: 10_000,
  ackTimeout: 10_000,
  rateLimitPause: 1_000,
  // Limits
  bufferSize: 100,
  maxInFlight: 10,
  sendRate: 8,
  sendBurst: 16,
});

export const MAX_TEXT = 2000; // characters (code points), SPEC.md §5

/** @type {Clock} */
const REAL_CLOCK = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(/** @type {any} */ (handle)),
};

/**
 * How long to wait before reconnect attempt `attempt` (0 for the first): "full jitter", uniform over
 * [minDelay, min(maxDelay, firstDelay × factor^attempt)], so clients cut off together don't return together.
 * @param {number} attempt
 * @param {{minDelay: number, firstDelay: number, factor: number, maxDelay: number}} options
 * @param {() => number} [random]
 */
export function backoff(attempt, options, random = Math.random) {
  const ceiling = Math.min(options.maxDelay, options.firstDelay * options.factor ** attempt);
  return options.minDelay + random() * Math.max(0, ceiling - options.minDelay);
}

/** A message id (SPEC.md §1): 32 hex digits. getRandomValues, unlike randomUUID, also works on plain http. */
export function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Thrown by send() when `bufferSize` messages are already waiting for their ack. */
export class SendBufferFullError extends Error {
  name = "SendBufferFullError";
}

/** Every event the client dispatches is one of these; `detail` says what happened. */
export class ChatEvent extends Event {
  /** @param {string} type @param {any} detail */
  constructor(type, detail) {
    super(type);
    this.detail = detail;
  }
}

/**
 * One room. Events (all ChatEvent):
 * - "state": {state, attempt, reason, delay?, retryAt?} (delay and retryAt, in ms, when "reconnecting")
 * - "message": {seq, epoch, id, user, text, ts, own}: each chat message once, in seq order
 * - "ack": {id, seq}: a message from send() is committed
 * - "presence": {kind: "welcome" | "join" | "leave", user, members, count}: members is the room's, sorted
 * - "hole": {epoch, previousEpoch}: messages may be missing before the next one (history was lost)
 * - "refused": {}: the server refused the handshake (HTTP 403): get a new token, then call connect()
 * - "error": {code, detail, id, dropped}: dropped is true when message `id` will never be sent
 */
export class ChatClient extends EventTarget {
  /** @type {State} */ #state = "offline";
  /** @type {Socket | null} */ #socket = null;
  #opened = false; // the handshake succeeded
  #welcomed = false;
  #stopped = true;
  #attempt = 0;
  /** @type {number | undefined} */ #since;
  /** @type {string | null} */ #epoch = null;
  #seq = 0; // the last seq received in #epoch
  #acceptAnySeq = false; // after a welcome with resumed: false, the replay may start anywhere
  #replaying = false; // this connection asked for a replay (since)
  #failedHandshakes = 0; // in a row, while the server was up
  #user = "";
  /** @type {Set<string>} */ #members = new Set(); // the welcome's, then each join and leave (SPEC.md §10)
  #heartbeat = 0; // ms
  #pauseUntil = 0; // no sending before this (after a rate_limited error)
  #careful = false; // after a rate_limited error: one message in flight at a time, so none overtakes another
  #tokens = 0; // the client's own rate limit: a token bucket
  #refilledAt = 0;
  /** @type {Map<string, {id: string, text: string}>} messages from send(), in order, until acked */
  #pending = new Map();
  /** @type {Map<string, unknown>} id -> its ack timer, for messages sent on this connection */
  #inFlight = new Map();
  /** @type {Map<string, unknown>} */ #timers = new Map();

  /** @param {string} room @param {Options} [options] */
  constructor(room, options = {}) {
    super();
    this.room = room;
    this.options = { ...DEFAULTS, ...options };
    this.server = options.server ?? pageServer();
    this.#since = options.since;
    this.WebSocket = options.WebSocket ?? /** @type {new (url: string) => Socket} */ (globalThis.WebSocket);
    this.clock = options.clock ?? REAL_CLOCK;
    this.random = options.random ?? Math.random;
    this.probe = options.probe ?? isUp;
  }

  get state() { return this.#state; }
  get user() { return this.#user; }
  get epoch() { return this.#epoch; }
  get seq() { return this.#seq; }
  /** Ids of the messages from send() not acked yet, oldest first. */
  get pending() { return [...this.#pending.keys()]; }

  /** Connect (again, after close() or "refused"). */
  connect() {
    this.#stopped = false;
    this.#attempt = 0;
    this.#failedHandshakes = 0;
    this.#cancel("retry");
    if (this.#socket === null) this.#open();
  }

  /** While "reconnecting": try now instead of waiting (the page calls it when the browser is back online). */
  reconnectNow() {
    if (this.#state === "reconnecting") {
      this.#cancel("retry");
      this.#open();
    }
  }

  /** Leave the room. Messages not acked yet stay pending, for a later connect(). */
  close() {
    this.#stopped = true;
    const socket = this.#socket;
    this.#ended();
    if (socket) closeQuietly(socket, 1000, "bye");
    this.#setState("offline", { reason: "closed" });
  }

  /**
   * Send a chat message: now if connected, else once reconnected. Returns its id; the "ack" event tells
   * when the server has it.
   * @param {string} text
   */
  send(text) {
    if (typeof text !== "string") throw new TypeError(`A message's text is a string, not ${typeof text}.`);
    const length = [...text].length;
    if (length < 1 || length > MAX_TEXT) {
      throw new RangeError(`A message is 1-${MAX_TEXT} characters long; this one has ${length}.`);
    }
    if (/\p{Cs}/u.test(text)) {
      // JSON.stringify writes it as "\ud83d", which no strict JSON parser (the server's) accepts.
      throw new RangeError("The text has half of a character (a lone surrogate, e.g. a cut emoji).");
    }
    if (this.#pending.size >= this.options.bufferSize) {
      throw new SendBufferFullError(
        `${this.#pending.size} messages are already waiting for the server; wait for their "ack" events ` +
          `(or a reconnect) before sending more.`,
      );
    }
    const id = newId();
    this.#pending.set(id, { id, text });
    this.#pump();
    return id;
  }

  // -- Connection --------------------------------------------------------------------------------------------

  #open() {
    const query = new URLSearchParams();
    const since = this.#epoch === null ? this.#since : this.#seq;
    this.#replaying = since !== undefined;
    if (since !== undefined) query.set("since", String(since));
    if (this.#epoch !== null) query.set("epoch", this.#epoch);
    const search = String(query);
    const url = `${this.server}/ws/chat/${encodeURIComponent(this.room)}${search ? `?${search}` : ""}`;
    const socket = new this.WebSocket(url);
    this.#socket = socket;
    this.#opened = false;
    this.#welcomed = false;
    socket.onopen = () => { this.#opened = true; };
    socket.onmessage = (event) => this.#receive(event.data);
    socket.onclose = (event) => this.#closed(event.code, event.reason, !this.#opened);
    socket.onerror = () => {}; // a close event follows every error
    this.#setState("connecting", { reason: "" });
    this.#schedule("open", this.options.openTimeout, () => this.#drop("no welcome from the server in time"));
  }

  /**
   * Give up on the current connection now, without waiting for the browser's close handshake.
   * @param {string} reason
   */
  #drop(reason) {
    const socket = this.#socket;
    if (socket === null) return;
    closeQuietly(socket, 1000, reason);
    this.#closed(1000, reason, false);
  }

  /** @param {number} code @param {string} reason @param {boolean} handshakeFailed */
  #closed(code, reason, handshakeFailed) {
    if (code === 1009) this.#dropTooBig(); // before #ended() forgets what was in flight
    this.#ended();
    if (this.#stopped) return;
    const why = reason ? `${code} ${reason}` : `${code}`;
    if (!handshakeFailed) {
      this.#retryLater(why);
      return;
    }
    // The server is down (retry), or it answered the handshake with HTTP 403 (don't retry: the token is
    // expired or the room is invalid). Browsers don't tell which, so ask the server whether it is up.
    const httpUrl = this.server.replace(/^ws/, "http");
    this.probe(httpUrl).then(
      (up) => this.#refusedOrRetry(up, why),
      () => this.#refusedOrRetry(false, why),
    );
  }

  /** @param {boolean} up @param {string} why */
  #refusedOrRetry(up, why) {
    if (this.#stopped || this.#socket !== null) return; // close() or connect() meanwhile
    // Up once may be a server that started listening just after our try: a refusal is twice in a row.
    this.#failedHandshakes = up ? this.#failedHandshakes + 1 : 0;
    if (this.#failedHandshakes < 2) {
      this.#retryLater(up ? "handshake failed" : why === "1006" ? "server unreachable" : why);
      return;
    }
    this.#stopped = true;
    this.#setState("offline", { reason: "refused" });
    this.#emit("refused", {});
  }

  #ended() {
    if (this.#socket) detach(this.#socket);
    this.#socket = null;
    this.#opened = false;
    this.#welcomed = false;
    for (const name of [...this.#timers.keys()]) this.#cancel(name);
    for (const timer of this.#inFlight.values()) this.clock.clearTimeout(timer);
    this.#inFlight.clear(); // resent after the next welcome
  }

  /** @param {string} reason */
  #retryLater(reason) {
    const delay = backoff(this.#attempt, this.options, this.random);
    this.#attempt += 1;
    this.#schedule("retry", delay, () => this.#open()); // first: a "state" listener may call close()
    this.#setState("reconnecting", { reason, delay, retryAt: this.clock.now() + delay });
  }

  // -- Frames from the server ----------------------------------------------------------------------------------

  /** @param {unknown} data */
  #receive(data) {
    let frame;
    try {
      frame = JSON.parse(String(data));
    } catch {
      this.#report(null, "invalid_frame", "The server sent a frame that is not JSON; ignored.", false);
      return;
    }
    if (this.#welcomed) this.#heard();
    switch (frame?.type) {
      case "welcome": return this.#welcome(frame.payload);
      case "chat.message": return this.#message(frame.seq, frame.payload);
      case "ack": return this.#settle(frame.id, frame.seq);
      case "presence.join":
      case "presence.leave":
        return this.#presence(frame.type.slice(9), frame.payload);
      case "ping": return this.#write({ type: "pong" });
      case "error": return this.#error(frame.id, frame.payload);
      default: return; // "pong", and types from a later protocol version
    }
  }

  /** @param {{user: string, members: string[], seq: number, epoch: string, resumed: boolean, heartbeat: number}} welcome */
  #welcome(welcome) {
    const socket = this.#socket;
    const previousEpoch = this.#epoch;
    // SPEC.md §9: after we have seen messages, resumed: false means we may have missed some (the server lost
    // its history, or it moved on past our seq while we were away).
    const hole = previousEpoch !== null && this.#seq > 0 && !welcome.resumed;
    if (welcome.epoch !== previousEpoch) this.#seq = 0; // another history: its seqs start again
    else if (!welcome.resumed) this.#seq = Math.min(this.#seq, welcome.seq); // it lost its latest (§17)
    if (!this.#replaying) this.#seq = welcome.seq; // no replay asked for: what comes next is welcome.seq + 1
    this.#epoch = welcome.epoch;
    this.#acceptAnySeq = this.#replaying && !welcome.resumed;
    this.#cancel("open");
    this.#welcomed = true;
    this.#failedHandshakes = 0;
    this.#user = welcome.user;
    this.#heartbeat = welcome.heartbeat * 1000;
    this.#heard();
    this.#schedule("stable", this.options.stableAfter, () => { this.#attempt = 0; });
    this.#tokens = this.options.sendBurst; // a new connection has a full bucket on the server too
    this.#refilledAt = this.clock.now();
    this.#pump(); // what is pending, in order, with the same ids
    // Events last, each followed by a check: a listener may have called close() (or connect()).
    this.#setState("open", { reason: "" });
    if (hole && this.#socket === socket) this.#emit("hole", { epoch: welcome.epoch, previousEpoch });
    if (this.#socket === socket) {
      this.#members = new Set(welcome.members);
      this.#emit("presence", { kind: "welcome", user: welcome.user, members: welcome.members, count: welcome.members.length });
    }
  }

  /** @param {string} kind @param {{user: string, count: number}} change */
  #presence(kind, { user, count }) {
    // Each frame says whether its user is in the room now; the list is ours to keep (SPEC.md §10).
    if (kind === "join") this.#members.add(user);
    else this.#members.delete(user);
    this.#emit("presence", { kind, user, members: [...this.#members].sort(), count });
  }

  /** @param {number} seq @param {{id: string, user: string, text: string, ts: number}} message */
  #message(seq, message) {
    if (!this.#welcomed || seq <= this.#seq) return; // seen already (a replay overlapping live traffic)
    if (seq !== this.#seq + 1 && !this.#acceptAnySeq) {
      // SPEC.md §7 says this never happens; if it does, the resume fills it in.
      this.#drop(`seq ${seq} after ${this.#seq}: reconnecting to fill the gap`);
      return;
    }
    this.#acceptAnySeq = false;
    this.#seq = seq;
    const own = message.user === this.#user && this.#pending.has(message.id);
    if (own) this.#settle(message.id, seq); // our copy can come before the ack
    this.#emit("message", { seq, epoch: this.#epoch, ...message, own });
  }

  /** @param {string | null} id @param {{code: string, detail: string}} error */
  #error(id, error) {
    const retry = error.code === "rate_limited";
    const ours = id !== null && this.#pending.has(id);
    if (ours) {
      this.#unsend(id);
      if (retry) {
        // The server's limit is below ours. Wait, then send one at a time, so that the refused message
        // goes before the ones typed after it.
        this.#careful = true;
        this.#pauseUntil = this.clock.now() + this.options.rateLimitPause;
      } else {
        this.#pending.delete(id); // the server will never take it: don't loop
      }
    }
    this.#report(id, error.code, error.detail, ours && !retry);
    this.#pump();
  }

  /** The server closed with 1009: the largest frame in flight (in bytes, as the server counts) was too big. */
  #dropTooBig() {
    let largest = null;
    let largestBytes = 0;
    for (const id of this.#inFlight.keys()) {
      const text = this.#pending.get(id)?.text ?? "";
      const bytes = new TextEncoder().encode(JSON.stringify(messageFrame(id, text))).length;
      if (bytes > largestBytes) [largest, largestBytes] = [id, bytes];
    }
    if (largest === null) return;
    this.#pending.delete(largest);
    const detail = `The server closed the connection (1009): this message's frame (${largestBytes} bytes) is too big for it.`;
    this.#report(largest, "message_too_big", detail, true);
  }

  /** Reset the silence timer: heartbeat + silenceGrace without any frame means the connection is dead. */
  #heard() {
    const limit = this.#heartbeat + this.options.silenceGrace;
    this.#schedule("silence", limit, () => this.#drop(`nothing from the server for ${limit / 1000} s`));
  }

  // -- Sending -------------------------------------------------------------------------------------------------

  /**
   * Send pending messages, oldest first: at most maxInFlight (1 when careful) unacked on the connection, at
   * most sendRate per second. When it has to wait, it schedules itself.
   */
  #pump() {
    if (this.#pending.size === 0) this.#careful = false;
    if (!this.#welcomed) return;
    const { sendRate, sendBurst, maxInFlight } = this.options;
    const now = this.clock.now();
    this.#tokens = Math.min(sendBurst, this.#tokens + ((now - this.#refilledAt) * sendRate) / 1000);
    this.#refilledAt = now;
    for (const { id, text } of this.#pending.values()) {
      if (this.#inFlight.has(id)) continue;
      if (this.#inFlight.size >= (this.#careful ? 1 : maxInFlight)) return; // an ack calls #pump again
      const wait = Math.max(this.#pauseUntil - now, this.#tokens < 1 ? ((1 - this.#tokens) * 1000) / sendRate : 0);
      if (wait > 0) {
        this.#schedule("pause", wait, () => this.#pump());
        return;
      }
      this.#tokens -= 1;
      this.#write(messageFrame(id, text));
      this.#inFlight.set(id, this.clock.setTimeout(() => this.#ackTimedOut(id), this.options.ackTimeout));
    }
  }

  /** @param {string} id */
  #ackTimedOut(id) {
    this.#inFlight.delete(id);
    this.#pump(); // sends it again, same id: the server acks a retry without committing it twice (§8)
  }

  /** @param {string} id @param {number} seq */
  #settle(id, seq) {
    if (!this.#pending.has(id)) return; // acked already (an ack and our own copy both settle)
    this.#unsend(id);
    this.#pending.delete(id);
    this.#emit("ack", { id, seq });
    this.#pump();
  }

  /** @param {string} id */
  #unsend(id) {
    this.clock.clearTimeout(this.#inFlight.get(id));
    this.#inFlight.delete(id);
  }

  /** @param {object} frame */
  #write(frame) {
    if (this.#socket?.readyState === 1) this.#socket.send(JSON.stringify(frame));
  }

  // -- Plumbing ------------------------------------------------------------------------------------------------

  /** @param {State} state @param {{reason: string, delay?: number, retryAt?: number}} detail */
  #setState(state, detail) {
    this.#state = state;
    this.#emit("state", { state, attempt: this.#attempt, ...detail });
  }

  /** @param {string | null} id @param {string} code @param {string} detail @param {boolean} dropped */
  #report(id, code, detail, dropped) {
    this.#emit("error", { id, code, detail, dropped });
  }

  /** @param {string} type @param {object} detail */
  #emit(type, detail) {
    this.dispatchEvent(new ChatEvent(type, detail));
  }

  /** @param {string} name @param {number} ms @param {() => void} callback */
  #schedule(name, ms, callback) {
    this.#cancel(name);
    this.#timers.set(name, this.clock.setTimeout(() => {
      this.#timers.delete(name);
      callback();
    }, ms));
  }

  /** @param {string} name */
  #cancel(name) {
    if (this.#timers.has(name)) this.clock.clearTimeout(this.#timers.get(name));
    this.#timers.delete(name);
  }
}

/** @param {string} id @param {string} text */
function messageFrame(id, text) {
  return { type: "chat.message", id, payload: { text } };
}

function pageServer() {
  if (typeof location === "undefined") {
    throw new TypeError('Outside a browser, say which server: new ChatClient(room, {server: "ws://127.0.0.1:8001"}).');
  }
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
}

/**
 * Whether the server answers HTTP at all. "no-cors": a page on another origin than its chat server gets an
 * opaque answer instead of a CORS error; any answer means up, only a network error means down.
 * @param {string} httpUrl
 */
async function isUp(httpUrl) {
  const options = { mode: /** @type {RequestMode} */ ("no-cors"), cache: /** @type {RequestCache} */ ("no-store") };
  await fetch(`${httpUrl}/healthz`, { ...options, signal: AbortSignal.timeout(5_000) });
  return true;
}

/** @param {Socket} socket */
function detach(socket) {
  socket.onopen = socket.onmessage = socket.onclose = null;
  socket.onerror = () => {}; // some browsers report an error for a socket closed before it opened
}

/** @param {Socket} socket @param {number} code @param {string} reason */
function closeQuietly(socket, code, reason) {
  detach(socket);
  try {
    socket.close(code, reason.slice(0, 120)); // a close reason is at most 123 bytes
  } catch {
    // already closed
  }
}
