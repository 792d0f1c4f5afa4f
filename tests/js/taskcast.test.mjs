// taskcast.js against the real web tier: each test starts `python -m web` of its own (the Python
// is TASKCAST_PYTHON; REDIS_URL and TASKCAST_KEY_PREFIX come from the pytest wrapper,
// tests/web/test_taskcast_js.py). Run: node --experimental-websocket --test tests/js/
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { connect } from "../../platform/taskcast/static/taskcast.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PYTHON = process.env.TASKCAST_PYTHON || "python3";

async function freePort() {
  const probe = createServer().listen(0, "127.0.0.1");
  await once(probe, "listening");
  const { port } = probe.address();
  probe.close();
  await once(probe, "close");
  return port;
}

// A promise that settles within `ms`, or rejects saying what did not happen.
function within(ms, promise, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// The arguments of the first `name` event for which `match` holds (bounded).
function until(client, name, match = () => true, ms = 15000) {
  let stop;
  const seen = new Promise((resolve) => {
    stop = client.on(name, (...args) => match(...args) && resolve(args));
  });
  return within(ms, seen, `${name} event`).finally(() => stop());
}

async function startServer(port, env = {}) {
  const child = spawn(PYTHON, ["-m", "web"], {
    cwd: ROOT,
    env: { ...process.env, HOST: "127.0.0.1", PORT: String(port), TASKCAST_LOG_LEVEL: "warning", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let output = "";
  child.stderr.on("data", (chunk) => (output += chunk));
  const deadline = Date.now() + 30000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`python -m web exited (${child.exitCode}):\n${output}`);
    const answer = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null);
    if (answer && answer.status === 200) return child;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`no /healthz 200 within 30 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50)); // it starts: nothing to wait on but the port
  }
}

async function stopServer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await within(15000, exited, "the server's exit");
}

function publish(...texts) {
  return within(
    20000,
    new Promise((resolve, reject) => {
      execFile(PYTHON, ["tests/js/publish.py", ...texts], { cwd: ROOT }, (error, stdout, stderr) =>
        error ? reject(new Error(`publish.py: ${error.message}\n${stderr}`)) : resolve(),
      );
    }),
    "publish.py",
  );
}

test("after a server restart the client resumes: each message once, in order, the missed ones replayed", async (t) => {
  const port = await freePort();
  let server = await startServer(port);
  const stored = new Map(); // sessionStorage, as a page has it
  globalThis.sessionStorage = {
    getItem: (key) => stored.get(key) ?? null,
    setItem: (key, value) => stored.set(key, String(value)),
  };
  const client = connect(`ws://127.0.0.1:${port}/ws/reliable`, {
    backoff: { first: 100, max: 500 },
    storage: "session",
  });
  t.after(async () => {
    client.close();
    delete globalThis.sessionStorage;
    await stopServer(server);
  });
  const tag = `restart-${process.pid}-${Date.now()}`;
  const got = [];
  client.on("reliable_chat_notification", (payload, frame) => {
    if (payload.message.startsWith(tag)) got.push([payload.message.slice(tag.length + 1), frame.replayed === true]);
  });
  const states = [];
  client.on("state", (change) => states.push(change));

  await until(client, "reliable_chat_notification", (p) => p.message.includes("connection established"));
  const first = until(client, "reliable_chat_notification", (p) => p.message === `${tag} before`);
  await publish(`${tag} before`);
  const [, firstFrame] = await first;
  assert.equal(typeof firstFrame.cursor, "string");
  assert.match(firstFrame.sent_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

  const away = until(client, "state", (s) => s.state === "reconnecting");
  await stopServer(server); // SIGTERM: the sockets are closed with 1001 first
  assert.equal((await away)[0].code, 1001);
  await publish(`${tag} down 1`, `${tag} down 2`);

  const back = until(client, "reliable_chat_notification", (p) => p.message === `${tag} down 2`);
  server = await startServer(port);
  await back;
  const last = until(client, "reliable_chat_notification", (p) => p.message === `${tag} after`);
  await publish(`${tag} after`);
  await last;

  assert.deepEqual(got, [
    ["before", false],
    ["down 1", true],
    ["down 2", true],
    ["after", false],
  ]);
  assert.equal(client.state, "open");
  assert.ok(states.some((s) => s.state === "reconnecting" && s.code !== 1001), "it retried while down");
  // The newest cursor is kept per path, so a reload would resume from it.
  assert.equal(stored.get(`taskcast.cursor:127.0.0.1:${port}/ws/reliable`), client.cursor); // per host and path
  const reloaded = connect(`ws://127.0.0.1:${port}/ws/reliable`, { storage: "session" });
  assert.equal(reloaded.cursor, client.cursor);
  reloaded.close();
});

describe("with tokens", () => {
  let server;
  let port;
  before(async () => {
    port = await freePort();
    server = await startServer(port, { TASKCAST_WS_TOKENS: '{"good": null}' });
  });
  after(() => stopServer(server));

  test("requests resolve with their own replies, errors reject with the error frame", async (t) => {
    const client = connect(`ws://127.0.0.1:${port}/ws/system`, { token: "good" });
    t.after(() => client.close());
    const echoes = [];
    const errors = [];
    client.on("system_echo", (payload) => echoes.push(payload.message));
    client.on("error", (payload) => errors.push(payload.code));

    // Sent once the socket opens; five at once, each answered on its own ref.
    const texts = ["one", "two", "three", "four", "five"];
    const replies = await Promise.all(texts.map((message) => client.request("user_message", { message })));
    assert.deepEqual(
      replies.map((frame) => [frame.action, frame.payload.message]),
      texts.map((text) => ["system_echo", `🔧 System Echo: ${text}`]),
    );
    assert.equal(new Set(replies.map((frame) => frame.ref)).size, texts.length);
    assert.equal((await client.request("ping")).action, "pong");

    await assert.rejects(client.request("user_message", { text: "no message" }), (error) => {
      assert.equal(error.frame.action, "error");
      assert.equal(error.frame.payload.code, "invalid_payload");
      assert.equal(typeof error.frame.ref, "string");
      return true;
    });
    await assert.rejects(client.request("no_such_action"), (error) => error.frame.payload.code === "unknown_action");

    // A reply settles its request only; a frame without a request reaches the listeners.
    assert.deepEqual(echoes, ["🔧 System: Connection established!"]);
    assert.deepEqual(errors, []);
    const unasked = until(client, "error");
    assert.equal(client.send("user_message", {}), true);
    assert.equal((await unasked)[0].code, "invalid_payload");

    const closing = client.request("ping");
    client.close();
    await assert.rejects(closing, { name: "ConnectionError" });
    assert.equal(client.send("ping"), false);
  });

  test("the heartbeat's pings keep a quiet socket open and their pongs reach no listener", async (t) => {
    const client = connect(`ws://127.0.0.1:${port}/ws/system`, { token: "good", heartbeat: 100 });
    t.after(() => client.close());
    const frames = [];
    const states = [];
    client.on("frame", (frame) => frames.push(frame.action));
    client.on("state", (change) => states.push(change.state));
    await until(client, "system_echo");
    await new Promise((done) => setTimeout(done, 700)); // several heartbeats of silence
    assert.deepEqual(states, ["connecting", "open"]);
    assert.deepEqual(frames, ["system_echo"]); // the pongs went nowhere
    assert.equal((await client.request("ping")).action, "pong"); // a caller's own still answers
  });

  test("a request with no reply times out", async (t) => {
    const client = connect(`ws://127.0.0.1:${port}/ws/chat`, { token: "good" });
    t.after(() => client.close());
    // chat is broadcast to the room, never answered on its ref
    await assert.rejects(client.request("chat", { message: "hi" }, { timeout: 500 }), { name: "TimeoutError" });
  });

  test("a refused token closes with 4401 and the client does not try again", async (t) => {
    const client = connect(`ws://127.0.0.1:${port}/ws/chat`, { token: "bad", backoff: { first: 20, max: 40 } });
    t.after(() => client.close());
    const states = [];
    client.on("state", (change) => states.push(change.state));
    const [closed] = await until(client, "state", (s) => s.state === "closed");
    assert.equal(closed.code, 4401);
    assert.equal(client.state, "closed");
    // A retry would come within `max` (40 ms): a second is ample to see none.
    await assert.rejects(until(client, "state", () => true, 1000), /not within 1000 ms/);
    assert.deepEqual(states, ["connecting", "open", "closed"]);
    await assert.rejects(client.request("ping"), { name: "ConnectionError" });
  });
});

test("while nothing answers, the delays grow and stay within max", async (t) => {
  const port = await freePort(); // nothing listens there
  const client = connect(`ws://127.0.0.1:${port}/ws/reliable`, { backoff: { first: 40, max: 320 } });
  t.after(() => client.close());
  const delays = [];
  const attempts = [];
  const enough = until(
    client,
    "state",
    (change) => {
      if (change.state === "reconnecting") delays.push(change.delay);
      if (change.state === "connecting") attempts.push(change.attempt);
      return delays.length === 7;
    },
    20000,
  );
  await enough;
  client.close();
  assert.equal(client.state, "closed");
  for (const delay of delays) assert.ok(delay > 0 && delay <= 320, `${delay} ms is within max`);
  assert.ok(delays[0] <= 40, `the first delay (${delays[0]} ms) is within first`);
  // Half jitter: each delay lies in [ceiling/2, ceiling] and the ceiling doubles up to max.
  for (let n = 1; n < 4; n += 1) assert.ok(delays[n] >= delays[n - 1], `${delays} grow`);
  for (const delay of delays.slice(3)) assert.ok(delay >= 160, `${delays}: at max, at least half of it`);
  assert.deepEqual(attempts, [1, 2, 3, 4, 5, 6, 7]);
});

test("close() from a state listener stops it; a payload JSON cannot carry fails alone", async () => {
  const port = await freePort(); // nothing listens there
  const client = connect(`ws://127.0.0.1:${port}/ws/chat`, { backoff: { first: 20, max: 40 } });
  const states = [];
  client.on("state", (change) => {
    states.push(change.state);
    if (change.state === "reconnecting") client.close();
  });
  const circular = {};
  circular.self = circular;
  await assert.rejects(client.request("ping", circular), TypeError); // at once, not at its timeout
  const waiting = client.request("ping", null, { timeout: 5000 });
  await assert.rejects(waiting, { name: "ConnectionError" }); // settled by the close
  await new Promise((done) => setTimeout(done, 300)); // several backoffs' time
  assert.deepEqual(states, ["connecting", "reconnecting", "closed"]);
});

test("a path needs a page to resolve against; a WebSocket constructor can be passed in", async () => {
  assert.throws(() => connect("/ws/reliable"), /needs a page/);
  assert.throws(() => connect("http://example.invalid/ws/chat"), /ws:\/\/ or wss:\/\//);
  const opened = [];
  class FakeSocket {
    constructor(url) {
      opened.push(url);
    }
    close() {}
  }
  const client = connect("ws://example.invalid/ws/jobs/abc?watch=w", { WebSocket: FakeSocket, token: "t", cursor: "c1" });
  await Promise.resolve(); // it opens once the caller's listeners are on
  assert.deepEqual(opened, ["ws://example.invalid/ws/jobs/abc?watch=w&token=t&cursor=c1"]);
  assert.equal(client.state, "connecting");
  assert.equal(client.send("ping"), false);
  client.close();
  assert.equal(client.state, "closed");
});

test("a browser that refuses sessionStorage costs the resume after a reload, never a frame", async (t) => {
  class FakeSocket {
    constructor(url) {
      FakeSocket.last = this;
      this.url = url;
    }
    send() {}
    close() {}
  }
  const refusing = {
    getItem() {
      throw new Error("SecurityError");
    },
    setItem() {
      throw new Error("QuotaExceededError");
    },
    removeItem() {
      throw new Error("SecurityError");
    },
  };
  for (const storage of [refusing, "blocked"]) {
    const descriptor = storage === "blocked"
      ? { get() { throw new Error("SecurityError"); }, configurable: true } // reading it throws
      : { value: storage, configurable: true };
    Object.defineProperty(globalThis, "sessionStorage", descriptor);
    t.after(() => delete globalThis.sessionStorage);
    const client = connect("ws://example.invalid/ws/reliable", { WebSocket: FakeSocket, storage: "session" });
    await Promise.resolve(); // it opens once the caller's listeners are on
    const got = [];
    client.on("reliable_chat_notification", (payload) => got.push(payload.message));
    FakeSocket.last.onopen();
    const frame = { action: "reliable_chat_notification", payload: { message: "kept" }, cursor: "c9" };
    FakeSocket.last.onmessage({ data: JSON.stringify(frame) });
    FakeSocket.last.onmessage({ data: JSON.stringify({ action: "error", payload: { code: "invalid_cursor" } }) });
    assert.deepEqual(got, ["kept"]);
    assert.equal(client.cursor, null); // dropped by the invalid_cursor error, storage or not
    client.close();
    delete globalThis.sessionStorage;
  }
});

// A TCP server that answers the WebSocket handshake (or, with `handshake: false`, never does),
// then says nothing: a peer gone silently. Counts connections and the bytes sent after it.
async function silentPeer({ handshake = true } = {}) {
  const { createHash } = await import("node:crypto");
  const seen = { connections: 0, after: 0, sockets: [] };
  const server = createServer((socket) => {
    seen.connections += 1;
    seen.sockets.push(socket);
    let head = "";
    socket.on("data", (chunk) => {
      if (head.includes("\r\n\r\n")) return void (seen.after += chunk.length);
      head += chunk.toString("latin1");
      const key = /Sec-WebSocket-Key: (.+)\r\n/i.exec(head);
      if (!handshake || !key || !head.includes("\r\n\r\n")) return;
      const accept = createHash("sha1").update(`${key[1].trim()}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    });
    socket.on("error", () => {});
  }).listen(0, "127.0.0.1");
  await once(server, "listening");
  const stop = () => {
    for (const socket of seen.sockets) socket.destroy();
    server.close();
  };
  return { url: `ws://127.0.0.1:${server.address().port}/ws`, seen, stop };
}

test("a peer gone silent is noticed by the heartbeat; a handshake never answered, by openTimeout", async (t) => {
  const peer = await silentPeer();
  t.after(peer.stop);
  const client = connect(peer.url, { heartbeat: 100, backoff: { first: 5000 } });
  t.after(() => client.close());
  await until(client, "state", ({ state }) => state === "open");
  const [lost] = await until(client, "state", ({ state }) => state === "reconnecting", 3000);
  assert.deepEqual([lost.code, lost.reason], [1006, "no frame within twice the heartbeat"]);
  assert.ok(peer.seen.after > 0); // it asked (a ping) before giving up

  const mute = await silentPeer({ handshake: false });
  t.after(mute.stop);
  const waiting = connect(mute.url, { openTimeout: 200, backoff: { first: 5000 } });
  t.after(() => waiting.close());
  const [late] = await until(waiting, "state", ({ state }) => state === "reconnecting", 3000);
  assert.deepEqual([late.code, late.reason], [1006, "no handshake within openTimeout"]);
});

test("a socket the browser will not open closes the client, saying why; a path's #fragment is dropped", async () => {
  class Refusing {
    constructor() {
      throw Object.assign(new Error("insecure WebSocket from an https page"), { name: "SecurityError" });
    }
  }
  const client = connect("ws://example.invalid/ws/chat", { WebSocket: Refusing });
  const [closed] = await until(client, "state", ({ state }) => state === "closed", 1000);
  assert.deepEqual([closed.code, closed.reason], [1006, "SecurityError: insecure WebSocket from an https page"]);
  await assert.rejects(client.request("ping"), { name: "ConnectionError" });

  globalThis.location = { protocol: "https:", host: "example.invalid" };
  try {
    const opened = [];
    const fake = class {
      constructor(url) {
        opened.push(url);
      }
      close() {}
    };
    const paged = connect("/ws/system#section", { WebSocket: fake, backoff: { first: 10, max: 2 } });
    await Promise.resolve();
    assert.deepEqual(opened, ["wss://example.invalid/ws/system"]);
    assert.deepEqual(paged.backoff, { first: 10, max: 10 }); // a max under first is first
    const patient = connect("/ws/system", { WebSocket: fake, requestTimeout: Infinity, openTimeout: -1 });
    assert.deepEqual([patient.requestTimeout, patient.openTimeout], [10000, 10000]); // what a timer can wait
    patient.close();
    paged.close();
  } finally {
    delete globalThis.location;
  }
});
