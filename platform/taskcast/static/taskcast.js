// taskcast.js — a browser (and Node 20) client for Taskcast endpoints. One ES module, no build
// step, no dependency; served by the web tier at /taskcast.js, typed by /asyncapi.d.ts.
//
//   import { connect } from "/taskcast.js";
//   const client = connect("/ws/reliable", { token, storage: "session" });
//   client.on("reliable_chat_notification", (payload, frame) => show(payload.message, frame.sent_at));
//   client.on("state", ({ state, code, delay }) => console.log(state, code, delay));
//   const reply = await client.request("ping");  // the frame that carries this request's ref
//
// connect(url, options): `url` is absolute (ws://, wss://) or a path resolved against
// `location` (ws: or wss: as the page's protocol). Options:
//   token           sent as ?token=
//   cursor          where to start on a reliable endpoint (default: live, or the stored one)
//   storage         "session": keep the newest cursor per URL path in sessionStorage, so a
//                   reload resumes; default: in memory only
//   backoff         {first: 250, max: 8000} ms: the delay doubles per failed attempt, bounded
//                   by max, with half jitter (between half of it and all of it); it starts
//                   again from first once a connection has stayed open 2 s
//   requestTimeout  ms a request waits for its reply (default 10000)
//   openTimeout     ms a handshake may take before the attempt counts as failed (10000)
//   heartbeat       ms of silence after which the client sends a ping; with no frame for twice
//                   as long the connection counts as lost (1006) and is opened again (20000;
//                   0: never). A browser's socket does not notice a peer gone silently (a
//                   sleeping laptop, a changed network) by itself.
//   WebSocket       a constructor, where there is no global one (in Node, a socket closed while
//                   its peer is silent lingers until the system gives up on it, and keeps the
//                   process alive: a script that must end calls process.exit())
//
// The client opens the socket at once and opens it again after a close with any code but
// 4400, 4401, 4403 and 1008 (a retry would be refused again) and 1000 (the server ended the
// session), sending the newest cursor back:
// a reliable endpoint sends what was missed, once, in order, marked `replayed`, or a `gap`
// frame first. client.close(code = 1000, reason) stops it. client.state, client.cursor (the
// newest received) and client.url are readable.
//
// client.on(name, fn) returns a function that unsubscribes. Names:
//   an action name  fn(payload, frame) for each frame of that action (a reply to a pending
//                   request goes to the request only; "state" and "frame" are never actions)
//   "frame"         fn(frame) for every frame
//   "gap"           fn(payload, frame): messages were lost (payload: group, reason, detail)
//   "error"         fn(payload, frame): an error frame that answers no pending request
//   "state"         fn({state, code, reason, delay, attempt}); state: "connecting", "open",
//                   "reconnecting" (closed, trying again after `delay` ms) or "closed" (for good)
// A listener that throws does not keep the frame from the others; its error is rethrown on a
// later tick (reported as uncaught). An error frame `invalid_cursor` drops the cursor (and its
// stored copy): the server went live instead.
// client.send(action, payload) → true if the frame went, false when the socket is not open.
// client.request(action, payload, {timeout}) → a Promise of the reply frame carrying its own
// ref; it waits for the socket to open, and rejects with an Error whose .frame is the error
// reply, on timeout (name "TimeoutError"), or when the socket closes before the reply or the
// client is closed (name "ConnectionError", .code the close code).

const FINAL = new Set([1008, 4400, 4401, 4403]);
const STEADY = 2000; // ms a connection stays open for the backoff to start again from `first`
const MAX_CURSOR = 4096; // no server gives a longer one
const HEARTBEAT = "taskcast.heartbeat"; // the ref of the client's own pings: answers go nowhere

export function connect(url, options = {}) {
  return new Client(url, options);
}

class Client {
  constructor(url, options) {
    this.url = resolve(url);
    this.token = options.token ?? null;
    this.backoff = backoffOf(options.backoff);
    this.requestTimeout = delayOf(options.requestTimeout, 10000);
    this.openTimeout = delayOf(options.openTimeout, 10000);
    this.heartbeat = options.heartbeat === 0 ? 0 : delayOf(options.heartbeat, 20000);
    this.state = "connecting";
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (!this._WebSocket) throw new Error("no WebSocket here: pass options.WebSocket");
    this._store = options.storage === "session" ? sessionStore() : null;
    const { host, pathname } = new URL(this.url);
    this._storeKey = `taskcast.cursor:${host}${pathname}`;
    this.cursor = options.cursor ?? usable(this._stored("getItem"));
    this._listeners = new Map();
    this._pending = new Map(); // ref → {finish, go, sent}
    this._refs = 0;
    this._failures = 0; // connections in a row that did not stay open (STEADY)
    this._ws = null;
    this._retry = null;
    this._timers = () => {}; // the open socket's: its handshake, steady and heartbeat timers
    this._heard = 0; // when the open socket last received a frame
    this._closed = null; // the code it stopped with
    queueMicrotask(() => this._open()); // after the caller's on(...) calls: they see "connecting"
  }

  on(name, fn) {
    if (!this._listeners.has(name)) this._listeners.set(name, new Set());
    this._listeners.get(name).add(fn);
    return () => this._listeners.get(name).delete(fn);
  }

  send(action, payload = null) {
    return this._send({ action, payload });
  }

  request(action, payload = null, { timeout } = {}) {
    timeout = delayOf(timeout, this.requestTimeout);
    const ref = `r${++this._refs}`;
    let text;
    try {
      text = JSON.stringify({ action, payload, ref }); // a payload JSON cannot carry fails here
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const error = new Error(`no reply to ${action} within ${timeout} ms`);
        error.name = "TimeoutError";
        request.finish(error);
      }, timeout);
      const request = {
        sent: false,
        go: () => (request.sent = this._sendText(text)),
        finish: (error, frame) => {
          clearTimeout(timer);
          this._pending.delete(ref);
          if (error) reject(error);
          else resolve(frame);
        },
      };
      this._pending.set(ref, request);
      if (this.state === "closed") request.finish(closedError(this._closed));
      else if (this.state === "open") request.go();
      // else it goes when the socket opens
    });
  }

  close(code = 1000, reason = "") {
    const ws = this._ws;
    this._ws = null;
    this._timers();
    try {
      if (ws) ws.close(code, reason);
    } catch {
      ws.close(1000); // a code or reason the socket refuses: closed all the same
    }
    this._stop(code, reason);
  }

  // The connection, again and again ----------------------------------------------------------

  _open() {
    if (this._closed !== null) return;
    const address = new URL(this.url);
    if (this.token) address.searchParams.set("token", this.token);
    if (this.cursor) address.searchParams.set("cursor", this.cursor);
    const attempt = this._failures + 1;
    this._state({ state: "connecting", attempt });
    if (this._closed !== null) return; // closed by a listener of that state
    let ws;
    try {
      ws = this._ws = new this._WebSocket(address.href);
    } catch (error) { // an address or a page this browser will not connect (mixed content, CSP)
      return this._stop(1006, `${error.name || "Error"}: ${error.message}`); // every time
    }
    // A connection that says nothing counts as lost: no handshake within openTimeout, or no
    // frame within twice the heartbeat (a ping goes out after one).
    const lost = (reason) => {
      if (this._ws !== ws) return;
      ws.onclose({ code: 1006, reason }); // first: the socket's own events are then ignored
      ws.close();
    };
    let steady = null;
    let beat = null;
    const opening = setTimeout(() => lost("no handshake within openTimeout"), this.openTimeout);
    const timers = () => (clearTimeout(opening), clearTimeout(steady), clearInterval(beat));
    this._timers = timers;
    ws.onopen = () => {
      if (this._ws !== ws) return;
      clearTimeout(opening);
      steady = setTimeout(() => (this._failures = 0), STEADY);
      if (this.heartbeat > 0) {
        this._heard = Date.now();
        beat = setInterval(() => {
          const quiet = Date.now() - this._heard;
          if (quiet >= 2 * this.heartbeat) lost("no frame within twice the heartbeat");
          else if (quiet >= this.heartbeat) this._sendText(`{"action":"ping","ref":"${HEARTBEAT}"}`);
        }, this.heartbeat / 2);
      }
      this._state({ state: "open", attempt });
      for (const request of [...this._pending.values()]) {
        if (!request.sent && this._ws === ws) request.go();
      }
    };
    ws.onmessage = (message) => this._ws === ws && this._received(message.data);
    // Browsers follow an error with a close (1006); Node 20's WebSocket may not: one of the two.
    ws.onerror = () => ws.onclose({ code: 1006, reason: "" });
    ws.onclose = ({ code, reason }) => {
      timers(); // this socket's (a later socket's are its own)
      if (this._ws !== ws) return; // closed by close(), or after its error
      this._ws = null;
      if (FINAL.has(code) || code === 1000) return this._stop(code, reason); // or ended by the server
      for (const request of [...this._pending.values()]) {
        if (request.sent) request.finish(closedError(code)); // it may have been handled
      }
      this._failures += 1;
      const { first, max } = this.backoff;
      const ceiling = Math.min(max, first * 2 ** Math.min(30, this._failures - 1));
      const delay = Math.round(ceiling * (0.5 + Math.random() / 2));
      this._retry = setTimeout(() => this._open(), delay); // before the state: a listener may close()
      this._state({ state: "reconnecting", code, reason, delay, attempt: attempt + 1 });
    };
  }

  _stop(code, reason) {
    clearTimeout(this._retry);
    if (this.state === "closed") return;
    this._closed = code;
    this._state({ state: "closed", code, reason });
    for (const request of [...this._pending.values()]) request.finish(closedError(code));
  }

  _send(frame) {
    return this._sendText(JSON.stringify(frame));
  }

  _sendText(text) {
    if (this.state !== "open" || !this._ws) return false;
    this._ws.send(text);
    return true;
  }

  _received(text) {
    this._heard = Date.now(); // anything at all: the peer is there
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return; // not the protocol: nothing to give
    }
    if (!frame || typeof frame.action !== "string") return;
    if (usable(frame.cursor)) {
      this.cursor = frame.cursor;
      this._stored("setItem", frame.cursor);
    }
    if (frame.ref === HEARTBEAT) return; // the answer to the client's own ping
    this._emit("frame", frame);
    const request = typeof frame.ref === "string" && this._pending.get(frame.ref);
    const payload = frame.payload && typeof frame.payload === "object" ? frame.payload : {};
    if (request && frame.action === "error") {
      const said = [payload.code, payload.detail].filter((part) => typeof part === "string");
      request.finish(Object.assign(new Error(said.join(": ") || "error reply"), { frame }));
    } else if (request) {
      request.finish(null, frame);
    } else if (frame.action !== "state" && frame.action !== "frame") {
      // (those two names are the client's own events, never a server's frame)
      if (frame.action === "error" && payload.code === "invalid_cursor") this._forgetCursor();
      this._emit(frame.action, frame.payload, frame);
    }
  }

  _forgetCursor() {
    // The server ignored it (live from now): sending it again would only be refused again.
    this.cursor = null;
    this._stored("removeItem");
  }

  _stored(method, ...args) {
    // sessionStorage, when asked for and allowed: a browser that refuses it (storage blocked,
    // full, a private mode) only costs the resume after a reload, never a frame.
    try {
      return this._store ? this._store[method](this._storeKey, ...args) : null;
    } catch {
      return null;
    }
  }

  _state(change) {
    this.state = change.state;
    this._emit("state", change);
  }

  _emit(name, ...args) {
    for (const fn of [...(this._listeners.get(name) || [])]) {
      try {
        fn(...args);
      } catch (error) {
        setTimeout(() => {
          throw error; // reported as uncaught, without keeping the frame from other listeners
        });
      }
    }
  }
}

function resolve(url) {
  let base;
  if (!/^wss?:\/\//i.test(url)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(url)) throw new Error("a ws:// or wss:// URL, or a path");
    if (!globalThis.location) throw new Error(`${url}: a path needs a page (location) to resolve`);
    base = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}`;
  }
  const address = new URL(url, base);
  address.hash = ""; // never sent: a WebSocket refuses a URL with one
  return address.href;
}

function delayOf(ms, fallback) {
  return ms > 0 && ms < 2 ** 31 ? ms : fallback; // what a timer can wait (NaN, Infinity: not)
}

function usable(cursor) {
  return typeof cursor === "string" && cursor.length > 0 && cursor.length <= MAX_CURSOR ? cursor : null;
}

function sessionStore() {
  try {
    return globalThis.sessionStorage ?? null; // reading it throws where storage is blocked
  } catch {
    return null;
  }
}

function backoffOf({ first, max } = {}) {
  const start = delayOf(first, 250);
  return { first: start, max: Math.max(start, delayOf(max, 8000)) };
}

function closedError(code) {
  const error = new Error(code ? `the socket closed (${code}) before a reply` : "closed");
  error.name = "ConnectionError";
  error.code = code;
  return error;
}
