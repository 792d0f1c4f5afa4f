// The showcase: the four layers' sockets, the system echo and a room, one timeline. All text goes in with textContent, never as HTML.
"use strict";

const SOURCES = {
  chat: { label: "Chat", path: "/ws/chat", resumable: false },
  reliable: { label: "Reliable", path: "/ws/reliable", resumable: true },
  notification: { label: "Notification", path: "/ws/notifications", resumable: false },
  analytics: { label: "Analytics", path: "/ws/analytics", resumable: true },
  system: { label: "System", path: "/ws/system", resumable: false },
  room: { label: "Room", path: null, resumable: false },  // set when a room is joined
  job: { label: "Job", path: null, resumable: true },  // jobs.js watches one
};
// Close codes that say "do not try again": bad credentials, not allowed, a bad room name.
const FINAL = new Set([1008, 4400, 4401, 4403]);
const TOKEN = new URLSearchParams(location.search).get("token");
const sockets = {};
const timeline = document.getElementById("timeline");
const scheme = location.protocol === "https:" ? "wss:" : "ws:";

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

function show(source, frame) {
  const item = document.createElement("li");
  item.dataset.source = source;
  item.dataset.action = frame.action;
  if (frame.action === "error" || frame.action === "gap") item.className = frame.action;
  const tag = document.createElement("span");
  tag.className = `tag ${source}`;
  tag.textContent = SOURCES[source].label;
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = new Date().toLocaleTimeString();
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

function setState(source, state, detail) {
  const card = document.getElementById(`socket-${source}`);
  card.dataset.state = state;
  card.querySelector(".state").textContent = detail || state;
}

function connect(source) {
  const spec = SOURCES[source];
  const entry = sockets[source] || (sockets[source] = { attempts: 0, cursor: null, ws: null, retry: null });
  const params = new URLSearchParams();
  if (TOKEN) params.set("token", TOKEN);  // the page's own ?token=, passed on to its sockets
  if (spec.resumable && entry.cursor) params.set("cursor", entry.cursor);
  const query = params.toString() ? `?${params}` : "";
  const ws = new WebSocket(`${scheme}//${location.host}${spec.path}${query}`);
  entry.ws = ws;
  setState(source, "connecting");
  ws.onopen = () => {
    entry.attempts = 0;
    setState(source, "open");
    if (source === "analytics" && !entry.viewed) {
      entry.viewed = true;
      send("analytics", "analytics", { event: "page_view", data: { path: location.pathname } });
    }
  };
  ws.onmessage = (message) => {
    if (entry.ws !== ws) return;  // replaced (another room joined)
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    if (frame.cursor) entry.cursor = frame.cursor;
    show(source, frame);
  };
  ws.onclose = (event) => {
    if (entry.ws !== ws) return;  // replaced (another room joined)
    if (FINAL.has(event.code)) {
      setState(source, "closed", `closed (${event.code}${event.reason ? ": " + event.reason : ""})`);
      show(source, { action: "error", payload: { code: `closed_${event.code}`, detail: event.reason || "closed" } });
      return;
    }
    const delay = Math.min(8000, 250 * 2 ** entry.attempts) * (0.5 + Math.random() / 2);
    entry.attempts += 1;
    setState(source, "closed", `reconnecting in ${(delay / 1000).toFixed(1)} s`);
    entry.retry = setTimeout(() => connect(source), delay);
  };
}

function send(source, action, payload) {
  const ws = sockets[source] && sockets[source].ws;
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ action, payload }));
    return true;
  }
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
  if (/^\.+$/.test(name)) {  // a URL collapses dot segments: such a room has no address
    show("room", { action: "error", payload: { code: "invalid_room", detail: "a room name needs a letter or digit" } });
    return;
  }
  const previous = sockets.room && sockets.room.ws;
  if (sockets.room) clearTimeout(sockets.room.retry);  // a reconnect to the old room, pending
  SOURCES.room.path = `/ws/room/${encodeURIComponent(name)}`;
  document.getElementById("room-path").textContent = `${SOURCES.room.path} · pub/sub`;
  if (sockets.room) sockets.room.attempts = 0;
  connect("room");
  if (previous) previous.close(1000);
});

document.getElementById("room-chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("room-message");
  if (!input.value.trim()) return;
  if (send("room", "room_chat", { message: input.value })) input.value = "";
});

for (const source of Object.keys(SOURCES)) if (SOURCES[source].path) connect(source);
