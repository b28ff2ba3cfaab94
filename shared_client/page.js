// The chat page: log in, join a room, chat. A minimal client; reconnection comes with the shared client.
const $ = (id) => document.getElementById(id);

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const user = $("user").value;
  const room = $("room").value;
  const response = await fetch(`/api/token?user=${encodeURIComponent(user)}`);  // sets the chat_token cookie
  if (!response.ok) { alert((await response.json()).detail); return; }
  $("login").hidden = true;
  $("chat").hidden = false;
  join(room);
});

function join(room) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/chat/${room}?since=0`);
  const shown = new Map();  // client id -> <li>
  ws.onopen = () => { $("state").textContent = "open"; };
  ws.onclose = (event) => { $("state").textContent = `closed (${event.code} ${event.reason})`; };
  ws.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    switch (frame.type) {
      case "ping": ws.send(JSON.stringify({ type: "pong" })); break;
      case "welcome": $("members").textContent = frame.payload.members.join(", "); break;
      case "presence.join": case "presence.leave": $("members").textContent = frame.payload.members.join(", "); break;
      case "chat.message": show(frame.payload, shown).classList.remove("pending"); break;
      case "error": console.warn(frame.payload.code, frame.payload.detail); break;
    }
  };
  $("send").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = crypto.randomUUID();
    ws.send(JSON.stringify({ type: "chat.message", id, payload: { text: $("text").value } }));
    show({ id, user: $("user").value, text: $("text").value }, shown).classList.add("pending");
    $("text").value = "";
  });
}

function show(message, shown) {
  let item = shown.get(message.id);
  if (!item) {
    item = document.createElement("li");
    shown.set(message.id, item);
    $("messages").append(item);
  }
  item.textContent = `${message.user}: ${message.text}`;
  return item;
}
