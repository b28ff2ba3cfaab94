// @ts-check
/**
 * Pitfall 10's clients: N of them in one room, naive (naive-client.js, to a naive server) or the shared client
 * (to a chapter). Prints one JSON line per event (open, close, attempt: a connection attempt, message); reads
 * commands on stdin: "type" (each client sends a message,
 * as a user typing during an outage), "quit".
 *
 * node --experimental-websocket reconnect.mjs naive|shared ws://127.0.0.1:PORT N [TOKEN]
 */
import { createInterface } from "node:readline";

import { ChatClient } from "../../shared_client/chat-client.js";
import { ReconnectingWebSocket } from "./naive-client.js";

const [kind, server, count, token] = process.argv.slice(2);
const room = `r${process.pid}`;
/** @param {object} event */
const say = (event) => process.stdout.write(`${JSON.stringify({ ...event, at: performance.now() })}\n`);

/**
 * Client i's sockets. The browser sends the token as a cookie; node has none, so it goes in the URL (SPEC.md §4
 * allows both). Each socket is an attempt to connect.
 * @param {number} i
 */
const socketsOf = (i) =>
  class extends WebSocket {
    /** @param {string} url */
    constructor(url) {
      super(`${url}${url.includes("?") ? "&" : "?"}token=${token}`);
      say({ event: "attempt", client: i });
    }
  };

/** @type {{send: (text: string) => void}[]} */
const clients = [];
for (let i = 0; i < Number(count); i++) {
  if (kind === "naive") {
    const ws = new ReconnectingWebSocket(`${server}/ws/${room}`);
    ws.onopen = () => say({ event: "open", client: i });
    ws.onclose = () => say({ event: "close", client: i });
    ws.onmessage = (data) => say({ event: "message", client: i, text: JSON.parse(data).message });
    ws.onreconnect = () => say({ event: "attempt", client: i });
    clients.push({ send: (text) => ws.send(JSON.stringify({ message: text })) });
  } else {
    const client = new ChatClient(room, { server, WebSocket: socketsOf(i) });
    client.addEventListener("state", (event) => {
      const { state } = /** @type {any} */ (event).detail;
      if (state === "open") say({ event: "open", client: i });
      if (state === "reconnecting") say({ event: "close", client: i });
    });
    client.addEventListener("message", (event) => say({ event: "message", client: i, text: /** @type {any} */ (event).detail.text }));
    client.connect();
    clients.push({ send: (text) => client.send(text) });
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line === "type") clients.forEach((client, i) => client.send(`typed by ${i}`));
  if (line === "quit") process.exit(0);
}
process.exit(0);
