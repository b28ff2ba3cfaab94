// @ts-check
/** The chat page: pick a name and a room, then chat through the shared client (chat-client.js). */
import { ChatClient } from "./chat-client.js";

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const input = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ ($(id));

/** @type {ChatClient | null} */
let client = null;
let countdown = 0; // the interval that updates "reconnecting in N s"
let lastRefusal = 0;

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = /** @type {HTMLButtonElement} */ ($("login").querySelector("button"));
  if (button.disabled) return; // Enter pressed twice: one login, one client
  button.disabled = true;
  const error = await login(input("user").value);
  button.disabled = false;
  $("login-error").hidden = error === "";
  $("login-error").textContent = error;
  if (error === "") join(input("room").value);
});

/**
 * Ask for a token: the server sets it as the chat_token cookie, which the WebSocket handshake sends.
 * @param {string} user
 * @returns {Promise<string>} an error to show, or ""
 */
async function login(user) {
  try {
    const response = await fetch(`/api/token?user=${encodeURIComponent(user)}`, { cache: "no-store" });
    if (response.ok) return "";
    return (await response.json()).detail ?? `The server answered ${response.status}.`;
  } catch {
    return "The server is not reachable; try again in a moment.";
  }
}

/** @param {string} room */
function join(room) {
  client?.close();
  const chat = new ChatClient(room, { since: 0 }); // since=0: the room's history first
  client = chat;
  $("title").textContent = `#${room}`;
  $("messages").replaceChildren();
  $("outbox").replaceChildren();
  $("login").hidden = true;
  $("chat").hidden = false;
  input("text").focus();

  /** Listen to this client, as long as it is the page's. @param {string} type @param {(detail: any) => void} listener */
  const on = (type, listener) => {
    chat.addEventListener(type, (event) => {
      if (client === chat) listener(/** @type {any} */ (event).detail);
    });
  };
  on("state", showState);
  on("presence", ({ members }) => {
    $("members").textContent = members.join(", ");
  });
  on("message", showMessage);
  on("ack", ({ id }) => {
    const item = outboxItem(id);
    if (item) setNote(item, "sent", "sent"); // the message itself follows (it can also come first)
  });
  on("hole", () => {
    notice("Some messages may be missing here: the server no longer had them all (it restarted, or you were away long).");
  });
  on("error", ({ id, code, detail, dropped }) => {
    const item = id ? outboxItem(id) : null;
    if (dropped && item) setNote(item, "failed", `not sent: ${detail}`);
    else if (code !== "rate_limited") console.warn("chat:", code, detail); // rate_limited: the client retries
  });
  on("refused", () => relogin(chat));
  chat.connect();
}

/**
 * The server refused the handshake (HTTP 403). Most likely the token expired: get a new one and connect
 * again. Refused again within 30 s, it is something else: say what, and offer to try again.
 * @param {ChatClient} chat
 */
async function relogin(chat) {
  const again = Date.now() - lastRefusal < 30_000;
  lastRefusal = Date.now();
  const error = again ? "" : await login(chat.user || input("user").value);
  if (client !== chat) return;
  if (!again && error === "") {
    chat.connect();
    return;
  }
  $("state").textContent = again
    ? "The server refused the connection (HTTP 403). Check the room name; if this page comes from another " +
      "address than the server's, the server must allow it in CHAT_ALLOWED_ORIGINS."
    : error;
  $("retry").hidden = false;
}

$("send").addEventListener("submit", (event) => {
  event.preventDefault();
  if (client === null) return;
  const text = input("text").value;
  try {
    const id = client.send(text);
    const item = document.createElement("li");
    item.dataset.id = id;
    item.textContent = text;
    setNote(item, "pending", client.state === "open" ? "sending…" : "waiting for the connection…");
    $("outbox").append(item);
    item.scrollIntoView({ block: "nearest" });
    input("text").value = "";
    $("send-error").hidden = true;
  } catch (error) {
    $("send-error").textContent = error instanceof Error ? error.message : String(error);
    $("send-error").hidden = false;
  }
});

$("retry").addEventListener("click", () => {
  if (client?.state === "offline") {
    lastRefusal = 0; // the person asked: log in again
    relogin(client);
  } else {
    client?.reconnectNow();
  }
});
window.addEventListener("online", () => client?.reconnectNow()); // the network is back: don't wait

$("leave").addEventListener("click", () => {
  if (client === null) return;
  const unsent = client.pending.length;
  if (unsent && !confirm(`${unsent} message(s) have not reached the server yet. Leave anyway?`)) return;
  client.close();
  client = null;
  clearInterval(countdown);
  $("chat").hidden = true;
  $("login").hidden = false;
  input("room").focus();
});

/** @param {{state: string, reason: string, retryAt?: number}} detail */
function showState({ state, reason, retryAt }) {
  clearInterval(countdown);
  $("state").dataset.state = state;
  $("state").title = reason; // the technical reason (a close code), for the curious
  $("retry").hidden = state !== "reconnecting";
  if (state === "reconnecting" && retryAt !== undefined) {
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      const text = `${lost(reason)} Reconnecting in ${seconds} s…`;
      if ($("state").textContent !== text) $("state").textContent = text; // a status region: no needless updates
    };
    tick();
    countdown = setInterval(tick, 250);
  } else {
    $("state").textContent = { connecting: "Connecting…", open: "Connected", offline: "Offline" }[state] ?? state;
  }
  for (const item of $("outbox").querySelectorAll("li.pending small")) {
    item.textContent = state === "open" ? "sending…" : "waiting for the connection…";
  }
}

/** What a reconnecting client's reason means to the person chatting. @param {string} reason */
function lost(reason) {
  const code = reason.split(" ")[0];
  if (code === "1001") return "The server is restarting.";
  if (code === "1013") return "The server is busy.";
  if (code === "4001") return "This window fell behind.";
  if (reason === "server unreachable") return "The server is unreachable.";
  if (reason === "handshake failed") return "The server did not let us in.";
  return "Disconnected.";
}

/** @param {{seq: number, epoch: string, id: string, user: string, text: string, ts: number, own: boolean}} message */
function showMessage(message) {
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const item = document.createElement("li");
  item.className = message.own || message.user === client?.user ? "message own" : "message";
  Object.assign(item.dataset, { seq: message.seq, epoch: message.epoch, id: message.id });
  const user = document.createElement("b");
  user.className = "user";
  user.textContent = message.user;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = message.text;
  const time = document.createElement("time");
  time.dateTime = new Date(message.ts).toISOString();
  time.textContent = new Date(message.ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  item.append(user, ": ", text, time);
  list.append(item);
  outboxItem(message.id)?.remove(); // ours, delivered
  if (atBottom) item.scrollIntoView({ block: "end" });
}

/** @param {string} text */
function notice(text) {
  const item = document.createElement("li");
  item.className = "notice";
  item.textContent = text;
  $("messages").append(item);
}

/** @param {string} id */
function outboxItem(id) {
  return /** @type {HTMLElement | null} */ ($("outbox").querySelector(`li[data-id="${CSS.escape(id)}"]`));
}

/** @param {HTMLElement} item @param {string} className @param {string} note */
function setNote(item, className, note) {
  item.className = className;
  let small = item.querySelector("small");
  if (small === null) {
    small = document.createElement("small");
    item.append(small);
  }
  small.textContent = note;
}
