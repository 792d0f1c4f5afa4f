// The jobs panel: Run starts a job (POST /api/jobs) and watches its life on /ws/jobs/{id};
// the job's watch path and newest cursor live in sessionStorage, so a reload picks it up where
// it was. Uses show() and setState() from showcase.js.
"use strict";

const JOB_KEY = "taskcast.job";
let jobSocket = null;

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

function watchJob(job, attempts = 0) {
  const bar = document.getElementById("job-progress");
  const params = new URLSearchParams(job.watch.split("?")[1]);
  if (TOKEN) params.set("token", TOKEN);
  if (job.cursor) params.set("cursor", job.cursor);
  const ws = new WebSocket(`${scheme}//${location.host}${job.watch.split("?")[0]}?${params}`);
  jobSocket = ws;
  setState("job", "connecting", `job ${job.job_id.slice(0, 8)}`);
  ws.onopen = () => setState("job", "open", `job ${job.job_id.slice(0, 8)}`);
  ws.onmessage = (message) => {
    if (jobSocket !== ws) return;
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    if (frame.action === "job_event") {
      const p = frame.payload;
      if (p.state === "progress") {
        bar.max = p.total;
        bar.value = p.current;
      }
      if (p.state === "succeeded") bar.value = bar.max;
      show("job", { action: frame.action, replayed: frame.replayed, payload: { message: jobText(p) } });
      if (frame.cursor) job.cursor = frame.cursor;
      if (p.state === "succeeded" || p.state === "failed") {
        sessionStorage.removeItem(JOB_KEY);
        setState("job", "done", p.state);
        jobSocket = null;
        ws.close(1000);
        return;
      }
      sessionStorage.setItem(JOB_KEY, JSON.stringify(job));
    } else {
      show("job", frame);
    }
  };
  ws.onclose = (event) => {
    if (jobSocket !== ws) return;
    if (FINAL.has(event.code)) {
      sessionStorage.removeItem(JOB_KEY);
      setState("job", "closed", `closed (${event.code})`);
      return;
    }
    const delay = Math.min(8000, 250 * 2 ** attempts) * (0.5 + Math.random() / 2);
    setState("job", "closed", `reconnecting in ${(delay / 1000).toFixed(1)} s`);
    setTimeout(() => jobSocket === ws && watchJob(job, attempts + 1), delay);
  };
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
  if (jobSocket) {
    const old = jobSocket;
    jobSocket = null;
    old.close(1000);
  }
  const job = { job_id: reply.job_id, watch: reply.watch, cursor: null };
  sessionStorage.setItem(JOB_KEY, JSON.stringify(job));
  watchJob(job);
});

const kept = sessionStorage.getItem(JOB_KEY);
if (kept) {
  try {
    watchJob(JSON.parse(kept));  // a reload mid-job: on from its cursor
  } catch {
    sessionStorage.removeItem(JOB_KEY);
  }
}
