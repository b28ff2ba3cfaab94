// @ts-check
/** A fake WebSocket and a fake clock, so the client's logic runs in `node --test` without a server or waiting. */
import { webcrypto } from "node:crypto";

// The client makes ids with the browser's crypto.getRandomValues: Node 20 has it globally, Node 18 only here.
globalThis.crypto ??= /** @type {Crypto} */ (webcrypto);

/** Timers that run only when the test advances time. */
export class FakeClock {
  #now = 1_000_000;
  #next = 1;
  /** @type {Map<number, {at: number, callback: () => void}>} */
  #timers = new Map();

  now() {
    return this.#now;
  }

  /** @param {() => void} callback @param {number} ms */
  setTimeout(callback, ms) {
    const handle = this.#next++;
    this.#timers.set(handle, { at: this.#now + ms, callback });
    return handle;
  }

  /** @param {unknown} handle */
  clearTimeout(handle) {
    this.#timers.delete(/** @type {number} */ (handle));
  }

  /** Move time forward by `ms`, running every timer that falls due, in order. @param {number} ms */
  advance(ms) {
    const end = this.#now + ms;
    for (;;) {
      let due = null;
      for (const [handle, timer] of this.#timers) {
        if (timer.at <= end && (due === null || timer.at < due[1].at)) due = [handle, timer];
      }
      if (due === null) break;
      this.#timers.delete(due[0]);
      this.#now = due[1].at;
      due[1].callback();
    }
    this.#now = end;
  }
}

/** Stands in for the browser's WebSocket; the test plays the server with open(), deliver() and serverClose(). */
export class FakeSocket {
  /** @type {FakeSocket[]} every socket created, oldest first */
  static created = [];

  /** @param {string} url */
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    /** @type {any[]} frames the client sent, parsed */
    this.sent = [];
    /** @type {{code: number | undefined, reason: string | undefined} | null} */
    this.closedByClient = null;
    /** @type {((event: unknown) => void) | null} */ this.onopen = null;
    /** @type {((event: {data: unknown}) => void) | null} */ this.onmessage = null;
    /** @type {((event: {code: number, reason: string}) => void) | null} */ this.onclose = null;
    /** @type {((event: unknown) => void) | null} */ this.onerror = null;
    FakeSocket.created.push(this);
  }

  static get last() {
    return FakeSocket.created[FakeSocket.created.length - 1];
  }

  /** @param {string} data */
  send(data) {
    if (this.readyState !== 1) throw new Error("send() on a socket that is not open");
    this.sent.push(JSON.parse(data));
  }

  /** @param {number} [code] @param {string} [reason] */
  close(code, reason) {
    this.closedByClient = { code, reason };
    this.readyState = 3;
  }

  // -- The server's side --

  open() {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** @param {object} frame */
  deliver(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  /** The handshake succeeded and the welcome arrived. @param {object} [payload] */
  welcome(payload = {}) {
    this.open();
    const welcome = { user: "alice", room: "lobby", members: ["alice"], seq: 0, epoch: "e1", resumed: false };
    this.deliver({ type: "welcome", payload: { ...welcome, heartbeat: 20, ...payload } });
  }

  /** @param {number} seq @param {string} id @param {string} [user] */
  message(seq, id, user = "bob") {
    this.deliver({ type: "chat.message", seq, payload: { id, user, text: `text of ${id}`, ts: 1 } });
  }

  /** @param {number} code @param {string} [reason] */
  serverClose(code, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** Frames of one type the client sent. @param {string} type */
  sentOf(type) {
    return this.sent.filter((frame) => frame.type === type);
  }
}
