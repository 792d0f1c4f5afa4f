// The showcase: the four layers' sockets, the system echo and a room, one timeline. Every socket
// is a taskcast.js client (reconnects, backoff and cursors live there). All text goes in with
// textContent, never as HTML.
import { connect } from "/taskcast.js";

const SOURCES = {
  chat: { label: "Chat", path: "/ws/chat" },
  reliable: { label: "Reliable", path: "/ws/reliable", storage: "session" }, // a reload resumes
  notification: { label: "Notification", path: "/ws/notifications" },
  analytics: { label: "Analytics", path: "/ws/analytics", storage: "session" },
  system: { label: "System", path: "/ws/system" },
  room: { label: "Room", path: null }, // set when a room is joined
  job: { label: "Job", path: null }, // jobs.js watches one
};
export const TOKEN = new URLSearchParams(location.search).get("token"); // passed on to the sockets
const clients = {};
let viewed = false; // the page_view event goes once, on the first open
const timeline = document.getElementById("timeline");

function describe(frame) {
  const p = frame.payload;
  switch (frame.action) {
    case "error":
      return `Error ${p.code}: ${p.detail}` + (p.errors ? ` (${p.errors.map((e) => `${e.loc.join(".")}: ${e.msg}`).join("; ")})` : "");
    case "gap":
      return `Some messages were lost (${p.reason}): ${p.detail}`;
    case "notification_broadcast":
      return `[${p.type}] ${p.message}`;
    case "analytics_notification":
      return p.data === null || p.data === undefined ? p.event : `${p.event} ${JSON.stringify(p.data)}`;
    case "pong":
      return "pong";
    default:
      return p && typeof p === "object" && "message" in p ? p.message : JSON.stringify(p);
  }
}

export function show(source, frame) {
  const item = document.createElement("li");
  item.dataset.source = source;
  item.dataset.action = frame.action;
  if (frame.action === "error" || frame.action === "gap") item.className = frame.action;
  const tag = document.createElement("span");
  tag.className = `tag ${source}`;
  tag.textContent = SOURCES[source].label;
  const time = document.createElement("span");
  time.className = "time";
  // A kept message says when it was sent: a replayed one shows that, not when it came back.
  const sent = frame.sent_at ? new Date(frame.sent_at) : null;
  time.textContent = (sent && !isNaN(sent) ? sent : new Date()).toLocaleTimeString();
  time.title = sent ? `sent ${frame.sent_at}` : "received";
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = describe(frame);
  item.append(tag, time, text);
  if (frame.replayed) {
    const badge = document.createElement("span");
    badge.className = "badge replayed";
    badge.textContent = "replayed";
    item.append(badge);
  }
  timeline.prepend(item);
  while (timeline.children.length > 500) timeline.lastChild.remove();
}

export function setState(source, state, detail) {
  const card = document.getElementById(`socket-${source}`);
  card.dataset.state = state;
  card.querySelector(".state").textContent = detail || state;
}

// A client's state on its card: "reconnecting" and "closed" both show as closed, with why.
export function showState(source, { state, code, reason, delay }, label) {
  if (state === "reconnecting") setState(source, "closed", `reconnecting in ${(delay / 1000).toFixed(1)} s`);
  else if (state === "closed") setState(source, "closed", `closed (${code}${reason ? `: ${reason}` : ""})`);
  else setState(source, state, label);
}

function open(source) {
  const client = connect(SOURCES[source].path, { token: TOKEN, storage: SOURCES[source].storage });
  clients[source] = client;
  setState(source, "connecting");
  client.on("state", (change) => {
    if (clients[source] !== client) return; // replaced (another room joined)
    showState(source, change);
    if (change.state === "closed") {
      show(source, { action: "error", payload: { code: `closed_${change.code}`, detail: change.reason || "closed" } });
    }
    if (change.state === "open" && source === "analytics" && !viewed) {
      viewed = true;
      send("analytics", "analytics", { event: "page_view", data: { path: location.pathname } });
    }
  });
  client.on("frame", (frame) => clients[source] === client && show(source, frame));
}

function send(source, action, payload) {
  if (clients[source] && clients[source].send(action, payload)) return true;
  show(source, { action: "error", payload: { code: "not_connected", detail: "the socket is not open; try again shortly" } });
  return false;
}

document.getElementById("chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("message");
  const message = input.value;
  if (!message.trim()) return;
  send("chat", "chat", { message });
  send("reliable", "reliable_chat", { message });
  input.value = "";
});

document.getElementById("analytics-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("event");
  if (!input.value.trim()) return;
  send("analytics", "analytics", { event: input.value, data: { from: "showcase" } });
  input.value = "";
});

document.getElementById("echo-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("echo");
  if (!input.value.trim()) return;
  send("system", "user_message", { message: input.value });
  input.value = "";
});

document.getElementById("room-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = document.getElementById("room-name").value.trim();
  if (!name) return;
  if (/^\.+$/.test(name)) { // a URL collapses dot segments: such a room has no address
    show("room", { action: "error", payload: { code: "invalid_room", detail: "a room name needs a letter or digit" } });
    return;
  }
  if (name.includes("/")) { // one path segment: the server has no route for more
    show("room", { action: "error", payload: { code: "invalid_room", detail: "a room name may not contain /" } });
    return;
  }
  const previous = clients.room;
  SOURCES.room.path = `/ws/room/${encodeURIComponent(name)}`;
  document.getElementById("room-path").textContent = `${SOURCES.room.path} · pub/sub`;
  open("room");
  if (previous) previous.close(); // no retry; its events are no longer shown
});

document.getElementById("room-chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("room-message");
  if (!input.value.trim()) return;
  if (send("room", "room_chat", { message: input.value })) input.value = "";
});

for (const source of ["chat", "reliable", "notification", "analytics", "system"]) open(source);
