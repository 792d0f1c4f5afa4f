// Benchmark clients: node client.mjs URL COUNT BROADCASTS OUT
// Opens COUNT sockets (50 at a time; "{i}" in URL becomes the socket's number), prints "connected", waits for "go <seconds>" on stdin, then
// records every "bench:<seq>:<sent ns>" frame: latency (ms, float32, to OUT), duplicates, and the
// arrival of "bench:barrier:…" frames. Prints one JSON line when every socket has BROADCASTS
// frames or the time is up.
import { writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import WebSocket from "ws";

const [url, countArg, broadcastsArg, out] = process.argv.slice(2);
const count = Number(countArg);
const broadcasts = Number(broadcastsArg);
const epochOffset = BigInt(Date.now()) * 1000000n - process.hrtime.bigint();
const wallNs = () => process.hrtime.bigint() + epochOffset;

const latencies = [];
const seen = [];
let duplicates = 0;
let barrier = 0;
let done = 0;
let finish = () => {};

function open(index) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace("{i}", String(index)), { perMessageDeflate: false });
    const mine = new Set();
    seen[index] = mine;
    ws.on("open", () => resolve(ws));
    ws.on("error", reject);
    ws.on("message", (data) => {
      const now = wallNs();
      const text = data.toString();
      const at = text.indexOf("bench:");
      if (at < 0) return;
      const [, seq, sent] = text.slice(at, text.indexOf('"', at)).split(":");
      if (seq === "barrier") {
        barrier = Math.max(barrier, Number(now / 1000n) / 1e6);
        return;
      }
      const number = Number(seq);
      if (mine.has(number)) {
        duplicates += 1;
        return;
      }
      mine.add(number);
      latencies.push(Number(now - BigInt(sent)) / 1e6);
      if (mine.size === broadcasts && ++done === count) finish();
    });
  });
}

const sockets = [];
for (let i = 0; i < count; i += 50) {
  const batch = [];
  for (let j = i; j < Math.min(count, i + 50); j++) batch.push(open(j));
  sockets.push(...(await Promise.all(batch)));
}
console.log("connected");

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const seconds = Number(line.split(" ")[1]);
  await new Promise((resolve) => {
    finish = resolve;
    if (broadcasts === 0 || done === count) resolve();
    setTimeout(resolve, seconds * 1000);
  });
  break;
}
writeFileSync(out, Buffer.from(new Float32Array(latencies).buffer));
const received = seen.reduce((sum, s) => sum + s.size, 0);
console.log(JSON.stringify({ received, duplicates, barrier, last: Date.now() / 1000 }));
for (const ws of sockets) ws.terminate();
process.exit(0);
