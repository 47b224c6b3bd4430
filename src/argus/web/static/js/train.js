// Train: classes of photos (or a zip) → POST /v1/train → the job's progress, live → the report
// → try the new version on a photo → promote it or canary it.
import { api } from "./api.js";
import { $, h, fill, say, showError, dropZone, sleep } from "./dom.js";
import { confirmAction } from "./dialog.js";
import { renderReport } from "./report.js";
import { renderAnswer } from "./answer.js";
import { forgetQuestions } from "./catalog.js";

let classes = [];
let counter = 0;
let watching = null;

function classCard(entry) {
  const id = `class-${entry.id}`;
  const input = h("input", { type: "file", multiple: true, accept: "image/*", class: "visually-hidden", tabindex: "-1", "aria-label": "Photos of this class" });
  const zone = h("div", { class: "drop", tabindex: "0", role: "button", "aria-describedby": `${id}-count` },
    h("p", { id: `${id}-count`, text: "Drop photos of this class, or press Enter to pick them." }));
  const thumbs = h("div", { class: "thumbs" });
  const name = h("input", { id: `${id}-name`, value: entry.name, placeholder: "class name", required: true,
    oninput: () => { entry.name = name.value.trim(); } });
  const card = h("div", { class: "class-card", dataset: { classId: entry.id } },
    h("div", { class: "row" },
      h("label", { for: `${id}-name`, text: "Class" }), name,
      h("button", { type: "button", class: "small danger", text: "Remove", "aria-label": `Remove the class ${entry.name || ""}`.trim(),
        onclick: () => { classes = classes.filter((c) => c !== entry); card.remove(); } })),
    zone, input, thumbs);
  dropZone(zone, input, (files) => {
    entry.files.push(...files.filter((f) => f.type.startsWith("image/") || !f.type));
    $(`#${id}-count`).textContent = `${entry.files.length} photo${entry.files.length === 1 ? "" : "s"} — drop or pick more.`;
    fill(thumbs, entry.files.slice(0, 30).map((f) => {
      const img = h("img", { alt: "" });
      img.src = URL.createObjectURL(f);
      img.onload = () => URL.revokeObjectURL(img.src);
      return img;
    }));
  });
  return card;
}

function addClass(name = "") {
  counter += 1;
  const entry = { id: counter, name, files: [] };
  classes.push(entry);
  $("#train-classes").append(classCard(entry));
  return entry;
}

async function submit(event) {
  event.preventDefault();
  const error = $("#train-error");
  showError(error, null);
  const form = new FormData();
  const name = $("#train-name").value.trim();
  if (!name) {
    showError(error, "Give the new question a name.");
    $("#train-name").focus();
    return;
  }
  form.append("name", name);
  form.append("base", $("#train-base").value.trim() || "efficientnet-lite0");
  form.append("mode", $("#train-mode").value);
  form.append("val", $("#train-val").value || "0.2");
  const zip = $("#train-zip").files[0];
  if (zip) {
    form.append("zip", zip, zip.name);
  } else {
    const filled = classes.filter((c) => c.files.length);
    if (filled.length < 2 || filled.some((c) => !c.name)) {
      showError(error, "Add at least two named classes with photos, or a zip of class folders.");
      return;
    }
    for (const c of filled) {
      for (const file of c.files) {
        form.append("photo", file, file.name);
        form.append("label", c.name);
      }
    }
  }
  await start(() => api.form("/v1/train", form), `Training ${name}`);
}

/** Queue a training of `model` on its dataset folder on the server (where Review's labels go). */
export async function trainOnServerDataset(model) {
  const form = new FormData();
  form.append("name", model);
  form.append("dataset", "server");
  form.append("mode", "auto");
  await start(() => api.form("/v1/train", form), `Training ${model} on its labelled photos`);
}

async function start(submitJob, title) {
  const button = $("#train-go");
  button.disabled = true;
  try {
    const job = await submitJob();
    say(`training job ${job.id} queued`);
    await watch(job.id, title);
  } catch (err) {
    showError($("#train-error"), err);
  } finally {
    button.disabled = false;
  }
}

async function watch(jobId, title) {
  const token = {};
  watching = token;
  const result = $("#train-result");
  result.hidden = false;
  const bar = h("progress", { max: 1, value: 0, "aria-label": "Training progress" });
  const state = h("p", { id: "train-state", text: "queued" });
  const log = h("ul", { class: "log" });
  const body = h("div");
  fill(result, h("h2", { text: title }), h("p", { class: "hint" }, "job ", h("code", { text: jobId })), state, bar, log, body);
  const started = Date.now();
  let job;
  for (;;) {
    if (watching !== token) return;
    job = await api.get(`/v1/jobs/${jobId}`);
    const p = job.progress;
    if (p && p.total) {
      bar.max = p.total;
      bar.value = p.done;
    }
    let words = job.status;
    if (p?.stage) words += `: ${p.stage} (${p.done}/${p.total})`;
    if (job.status === "queued" && Date.now() - started > 8000) words += " — no worker has taken it yet; is `argus worker` running?";
    state.textContent = words;
    fill(log, (p?.said || []).map((line) => h("li", { text: line })));
    if (["done", "failed", "dead", "cancelled"].includes(job.status)) break;
    await sleep(600);
  }
  if (job.status !== "done") {
    state.textContent = `${job.status}: ${job.error || "no reason given"}`;
    state.className = "error";
    say(`training ${job.status}`);
    return;
  }
  bar.value = bar.max;
  log.remove(); // the report below repeats its warnings
  const answer = job.answer;
  const v = answer.version;
  state.textContent = `done: ${v.name} version ${v.version}${answer.created ? "" : " (identical to an existing version)"}${answer.promotion ? ` · ${answer.promotion.promoted ? "promoted" : "not promoted"}` : ""}`;
  state.className = "ok";
  forgetQuestions();
  const shown = await api.get(`/v1/models/${encodeURIComponent(v.name)}/versions/${v.version}`);
  fill(body, renderReport(answer.report, shown.pictures || []), tryIt(v), promoteButtons(v));
  say(`trained ${v.name} version ${v.version}`);
}

function tryIt(v) {
  const input = h("input", { type: "file", accept: "image/*", class: "visually-hidden", tabindex: "-1", "aria-label": "A photo to try" });
  const zone = h("div", { class: "drop", tabindex: "0", role: "button", id: "train-try" },
    h("p", { text: `Try version ${v.version}: drop a photo or press Enter to pick one.` }));
  const out = h("div", { id: "train-try-answer", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  dropZone(zone, input, async ([file]) => {
    showError(error, null);
    try {
      const answer = await api.send(`/v1/questions/${encodeURIComponent(v.name)}`, file, { version: v.version }, { "Content-Type": file.type || "application/octet-stream" });
      await renderAnswer(out, answer, file);
      say(`version ${v.version} answered ${answer.answer.labels?.[0]?.label || ""}`);
    } catch (err) {
      showError(error, err);
    }
  });
  return h("div", {}, h("h3", { text: "Try it" }), zone, input, error, out);
}

function promoteButtons(v) {
  const status = h("p", { class: "hint", id: "train-promoted" });
  const act = async (kind) => {
    const fields = kind === "canary" ? [{ name: "percent", label: "Share of requests (%)", type: "number", value: 10, min: 0, max: 100, required: true }] : [];
    const got = await confirmAction({ title: `${kind === "canary" ? "Canary" : "Promote"} ${v.name} version ${v.version}`, fields,
      ok: kind === "canary" ? "Start canary" : "Promote to production" });
    if (!got) return;
    try {
      const path = `/v1/models/${encodeURIComponent(v.name)}`;
      if (kind === "canary") await api.post(`${path}/canary`, { version: v.version, percent: Number(got.percent), reason: got.reason });
      else await api.post(`${path}/promote`, { version: v.version, reason: got.reason });
      status.textContent = kind === "canary" ? `canary at ${got.percent}%` : "production now answers with this version";
      say(status.textContent);
    } catch (err) {
      status.textContent = err.message;
    }
  };
  return h("div", {}, h("div", { class: "row" },
    h("button", { type: "button", class: "primary", id: "train-promote", text: "Promote…", onclick: () => act("promote") }),
    h("button", { type: "button", id: "train-canary", text: "Canary…", onclick: () => act("canary") })), status);
}

export function init() {
  $("#train-form").addEventListener("submit", submit);
  $("#train-add-class").addEventListener("click", () => {
    const entry = addClass();
    $(`#class-${entry.id}-name`).focus();
  });
  addClass();
  addClass();
}

export function show() {}

