// The jobs panel: Run starts a job (POST /api/jobs) and watches its life on /ws/jobs/{id} with a
// taskcast.js client; the job's watch path and newest cursor live in sessionStorage, so a reload
// picks it up where it was.
import { connect } from "/taskcast.js";
import { TOKEN, setState, show, showState } from "./showcase.js";

const JOB_KEY = "taskcast.job";
let watcher = null;

function jobText(p) {
  switch (p.state) {
    case "progress":
      return `Job ${p.job_id.slice(0, 8)}: ${p.current}/${p.total}${p.message ? ` (${p.message})` : ""}`;
    case "retry":
      return `Job ${p.job_id.slice(0, 8)}: retry ${p.attempt} (${p.reason})`;
    case "succeeded":
      return `Job ${p.job_id.slice(0, 8)} succeeded: ${typeof p.result === "string" ? p.result : JSON.stringify(p.result)}`;
    case "failed":
      return `Job ${p.job_id.slice(0, 8)} failed: ${p.error_type}: ${p.error}`;
    default:
      return `Job ${p.job_id.slice(0, 8)}: ${p.state}${p.attempt ? ` (attempt ${p.attempt})` : ""}`;
  }
}

function stopWatching() {
  const old = watcher;
  watcher = null;
  if (old) old.close();
}

function watchJob(job) {
  const bar = document.getElementById("job-progress");
  const label = `job ${job.job_id.slice(0, 8)}`;
  const client = connect(job.watch, { token: TOKEN, cursor: job.cursor });
  watcher = client;
  setState("job", "connecting", label);
  client.on("state", (change) => {
    if (watcher !== client) return; // done, or another job
    if (change.state === "closed") sessionStorage.removeItem(JOB_KEY); // refused: not again
    showState("job", change, label);
  });
  client.on("frame", (frame) => watcher === client && frame.action !== "job_event" && show("job", frame));
  client.on("job_event", (p, frame) => {
    if (watcher !== client) return;
    if (p.state === "progress") {
      bar.max = p.total;
      bar.value = p.current;
    }
    if (p.state === "succeeded") bar.value = bar.max;
    show("job", { ...frame, payload: { message: jobText(p) } });
    if (p.state === "succeeded" || p.state === "failed") {
      sessionStorage.removeItem(JOB_KEY);
      stopWatching();
      setState("job", "done", p.state);
      return;
    }
    job.cursor = client.cursor;
    sessionStorage.setItem(JOB_KEY, JSON.stringify(job));
  });
}

document.getElementById("job-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const content = document.getElementById("job-content").value;
  if (!content.trim()) return;
  const headers = { "Content-Type": "application/json" };
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  let reply;
  try {
    const response = await fetch("/api/jobs", {
      method: "POST",
      headers,
      body: JSON.stringify({ type: document.getElementById("job-type").value, content }),
    });
    reply = await response.json();
    if (!response.ok) throw new Error(typeof reply.detail === "string" ? reply.detail : `HTTP ${response.status}`);
  } catch (error) {
    show("job", { action: "error", payload: { code: "job_not_started", detail: String(error.message || error) } });
    return;
  }
  if (!reply.watch) {
    show("job", { action: "error", payload: { code: "not_watchable", detail: `job ${reply.job_id} runs, but watching is off (no TASKCAST_JOB_SECRET)` } });
    return;
  }
  document.getElementById("job-content").value = "";
  const bar = document.getElementById("job-progress");
  bar.max = 1;
  bar.value = 0;
  stopWatching();
  const job = { job_id: reply.job_id, watch: reply.watch, cursor: null };
  sessionStorage.setItem(JOB_KEY, JSON.stringify(job));
  watchJob(job);
});

const kept = sessionStorage.getItem(JOB_KEY);
if (kept) {
  try {
    watchJob(JSON.parse(kept)); // a reload mid-job: on from its cursor
  } catch {
    sessionStorage.removeItem(JOB_KEY);
  }
}
