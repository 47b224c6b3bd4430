// Jobs: many photos submitted as jobs (POST /v1/jobs?question=…), their states polled live,
// an answer opened and drawn on its photo; every job and the queue's counts for admins.
import { api } from "./api.js";
import { $, h, fill, fmt, say, showError, dropZone, sleep } from "./dom.js";
import { fillQuestions } from "./catalog.js";
import { renderAnswer, parts } from "./answer.js";
import { session } from "./session.js";

const FINISHED = new Set(["done", "failed", "dead", "cancelled"]);
let files = [];
const mine = []; // {file, id, job, row}
let polling = false;
let panel;

function summary(job) {
  if (job.status !== "done" || !job.answer) return job.error || "";
  const first = parts(job.answer).find((p) => p.value);
  const v = first?.value || {};
  if (v.labels?.length) return `${v.labels[0].label} ${fmt.pct(v.labels[0].score)}`;
  if (v.faces) return `${v.faces.length} face${v.faces.length === 1 ? "" : "s"}`;
  if (v.objects) return `${v.objects.length} object${v.objects.length === 1 ? "" : "s"}`;
  return "answered";
}

function drawRow(entry) {
  const job = entry.job;
  fill(entry.row,
    h("td", { text: entry.file.name }),
    h("td", { class: `status ${job.status}`, text: job.status }),
    h("td", { text: summary(job) }),
    h("td", {}, job.status === "done" ? h("button", { type: "button", class: "small", text: "Open", "aria-label": `Open the answer for ${entry.file.name}`,
      onclick: () => renderAnswer($("#jobs-answer"), job.answer, entry.file) }) : null));
}

async function poll() {
  if (polling) return;
  polling = true;
  try {
    while (mine.some((e) => !FINISHED.has(e.job.status))) {
      await sleep(700);
      for (const entry of mine.filter((e) => !FINISHED.has(e.job.status))) {
        try {
          entry.job = await api.get(`/v1/jobs/${entry.id}`);
          drawRow(entry);
        } catch {
          // one failed poll: try again on the next round
        }
      }
      if (!panel.hidden && session.manage) await everyJob();
    }
    say("every job submitted here has finished");
  } finally {
    polling = false;
  }
}

async function submit(event) {
  event.preventDefault();
  const error = $("#jobs-error");
  showError(error, null);
  if (!files.length) {
    showError(error, "Choose some photos first.");
    return;
  }
  const question = $("#jobs-question").value;
  const batch = files;
  files = [];
  $("#jobs-drop-help").textContent = "Drop photos here or press Enter to pick several.";
  for (const file of batch) {
    const row = h("tr");
    $("#jobs-table").prepend(row);
    try {
      const job = await api.send("/v1/jobs", file, { question }, { "Content-Type": file.type || "application/octet-stream" });
      const entry = { file, id: job.id, job, row };
      mine.push(entry);
      drawRow(entry);
    } catch (err) {
      fill(row, h("td", { text: file.name }), h("td", { class: "status failed", text: "refused" }), h("td", { text: err.message }), h("td"));
    }
  }
  say(`${batch.length} job${batch.length === 1 ? "" : "s"} submitted`);
  poll();
}

async function everyJob() {
  try {
    const { jobs, counts } = await api.get("/v1/jobs", { limit: 20 });
    $("#jobs-counts").textContent = Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(" · ") || "no jobs";
    fill($("#jobs-all"), jobs.map((j) => h("tr", {},
      h("td", {}, h("code", { text: j.id.slice(0, 16) })), h("td", { text: j.question }),
      h("td", { text: j.status }), h("td", { text: fmt.time(j.created_at) }))));
  } catch {
    // not an admin token after all: the section stays as it is
  }
}

export function init(element) {
  panel = element;
  dropZone($("#jobs-drop"), $("#jobs-files"), (picked) => {
    files = picked;
    $("#jobs-drop-help").textContent = `${files.length} photo${files.length === 1 ? "" : "s"} ready: ${files.map((f) => f.name).join(", ").slice(0, 200)}`;
  });
  $("#jobs-form").addEventListener("submit", submit);
}

export async function show() {
  if (!session.ask) return;
  await fillQuestions($("#jobs-question")).catch((err) => showError($("#jobs-error"), err));
  if (session.manage) await everyJob();
}
