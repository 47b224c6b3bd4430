// Ask: a photo (dropped, picked, pasted or from the camera), a question, an app and a version;
// the answer drawn on the photo, its steps, models and JSON, and the same call as curl/Python.
import { api, ApiError } from "./api.js";
import { $, h, fill, say, showError, copyText, dropZone } from "./dom.js";
import { fillQuestions, loadQuestions, modelInfo } from "./catalog.js";
import { renderAnswer } from "./answer.js";
import { curl, tritonPython } from "./snippets.js";
import { session } from "./session.js";

let panel;
let photo = null; // {blob, name, type}
let previewUrl = null;
let stream = null;

function setPhoto(blob, name) {
  photo = { blob, name: name || "photo.jpg", type: blob.type || "application/octet-stream" };
  const preview = $("#ask-preview");
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(blob);
  preview.src = previewUrl;
  preview.alt = `The photo to ask about: ${photo.name}`;
  preview.hidden = !blob.type.startsWith("image/");
  $("#ask-drop-help").textContent = `${photo.name} — drop, pick or paste another to replace it.`;
  say(`${photo.name} is ready to ask`);
}

async function describeQuestion() {
  const name = $("#ask-question").value;
  const question = (await loadQuestions()).find((q) => q.name === name);
  const help = $("#ask-question-help");
  const target = $("#ask-target");
  const keep = target.value;
  fill(target, h("option", { value: "", text: "as the server chooses (pins, canary, production)" }));
  if (!question) {
    help.textContent = "";
    return;
  }
  help.textContent = `${question.description || ""} — ${question.models.length > 1 ? "models" : "model"}: ${question.models.join(", ")}`;
  const infos = await Promise.all(question.models.map((m) => modelInfo(m).catch(() => null)));
  const aliases = new Set();
  for (const info of infos) for (const alias of Object.keys(info?.aliases || {})) aliases.add(alias);
  for (const alias of [...aliases].sort()) {
    const where = infos.length === 1 && infos[0] ? ` → v${infos[0].aliases[alias]}` : "";
    target.append(h("option", { value: `alias:${alias}`, text: `alias ${alias}${where}` }));
  }
  if (infos.length === 1 && infos[0]) {
    for (const v of [...infos[0].versions].reverse()) {
      target.append(h("option", { value: `version:${v.version}`, text: `version ${v.version}${v.aliases.length ? ` (${v.aliases.join(", ")})` : ""}` }));
    }
  }
  if ([...target.options].some((o) => o.value === keep)) target.value = keep;
}

async function fillApps() {
  const select = $("#ask-app");
  const keep = select.value;
  try {
    const apps = await api.get("/v1/apps");
    fill(select, h("option", { value: "", text: "none" }), apps.map((a) => h("option", { value: a.name, text: a.name })));
    if (apps.some((a) => a.name === keep)) select.value = keep;
  } catch {
    // inference-only setups may still list apps; without them, "none" is all there is
  }
}

function options() {
  const query = {};
  const topK = $("#ask-top-k").value;
  const conf = $("#ask-conf").value;
  const keep = $("#ask-keep").value;
  if (topK) query.top_k = topK;
  if (conf) query.conf = conf;
  if (keep) query.keep_uncertain = keep;
  const gallery = $("#ask-gallery").value.trim();
  if (gallery) query.gallery = gallery;
  if ($("#ask-crops").checked) query.crops = "true";
  if ($("#ask-record").checked) query.record = "true";
  const target = $("#ask-target").value;
  if (target.startsWith("alias:")) query.alias = target.slice(6);
  if (target.startsWith("version:")) query.version = target.slice(8);
  return query;
}

async function submit(event) {
  event.preventDefault();
  const error = $("#ask-error");
  showError(error, null);
  if (!photo) {
    showError(error, "Choose a photo first: drop one, pick a file, paste or use the camera.");
    $("#ask-drop").focus();
    return;
  }
  const question = $("#ask-question").value;
  const query = options();
  const app = $("#ask-app").value;
  const button = $("#ask-go");
  button.disabled = true;
  button.textContent = "Asking…";
  const result = $("#ask-result");
  try {
    const headers = { "Content-Type": photo.type };
    if (app) headers["X-Argus-App"] = app;
    const answer = await api.send(`/v1/questions/${encodeURIComponent(question)}`, photo.blob, query, headers);
    result.hidden = false;
    await renderAnswer(result, answer, photo.blob);
    result.append(snippetBox({ question, query, app, answer }));
    say(`answered ${question}`);
  } catch (err) {
    result.hidden = true;
    showError(error, err instanceof ApiError ? err : new Error(String(err)));
    say(`error: ${err.message}`);
  } finally {
    button.disabled = false;
    button.textContent = "Ask";
  }
}

function snippetBox({ question, query, app, answer }) {
  const facts = { origin: location.origin, question, query, app, answer, filename: photo.name,
    type: photo.type, tokens: session.tokens_required };
  const pre = h("pre", { id: "snippet" });
  const box = h("details", { class: "snippet" }, h("summary", { text: "The same call from code" }), pre);
  async function copy(kind) {
    const text = kind === "curl" ? curl(facts) : tritonPython(facts);
    pre.textContent = text;
    pre.dataset.kind = kind;
    box.open = true;
    say((await copyText(text)) ? `${kind === "curl" ? "curl" : "Python"} copied` : "shown below");
  }
  return h("div", {},
    h("div", { class: "row" },
      h("button", { type: "button", id: "copy-curl", text: "Copy as curl", onclick: () => copy("curl") }),
      h("button", { type: "button", id: "copy-python", text: "Copy as Python (tritonclient)", onclick: () => copy("python") })),
    box);
}

async function openCamera() {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (err) {
    showError($("#ask-error"), `The camera is not available: ${err.message}`);
    return;
  }
  const video = $("#camera-view");
  video.srcObject = stream;
  video.hidden = false;
  await video.play();
  $("#camera-snap").hidden = false;
  $("#camera-close").hidden = false;
  $("#camera-snap").focus();
}

function closeCamera() {
  for (const track of stream?.getTracks() || []) track.stop();
  stream = null;
  $("#camera-view").hidden = true;
  $("#camera-snap").hidden = true;
  $("#camera-close").hidden = true;
}

function snap() {
  const video = $("#camera-view");
  const canvas = h("canvas", { width: video.videoWidth, height: video.videoHeight });
  canvas.getContext("2d").drawImage(video, 0, 0);
  canvas.toBlob((blob) => {
    if (blob) setPhoto(blob, "camera.jpg");
    closeCamera();
  }, "image/jpeg", 0.92);
}

function paste(event) {
  if (panel.hidden) return;
  const file = [...(event.clipboardData?.files || [])][0];
  if (file) {
    event.preventDefault();
    setPhoto(file, file.name && file.name !== "image.png" ? file.name : "pasted.png");
  }
}

export function init(element) {
  panel = element;
  dropZone($("#ask-drop"), $("#ask-file"), ([file]) => setPhoto(file, file.name));
  $("#ask-form").addEventListener("submit", submit);
  $("#ask-question").addEventListener("change", () => describeQuestion().catch(() => {}));
  document.addEventListener("paste", paste);
  if (navigator.mediaDevices?.getUserMedia) {
    $("#camera-open").hidden = false;
    $("#camera-open").addEventListener("click", openCamera);
    $("#camera-snap").addEventListener("click", snap);
    $("#camera-close").addEventListener("click", closeCamera);
  }
}

export async function show() {
  if (!session.ask) return;
  try {
    await fillQuestions($("#ask-question"), true);
    await Promise.all([describeQuestion(), fillApps()]);
  } catch (err) {
    showError($("#ask-error"), err);
  }
}

export function hide() {
  closeCamera();
}

/** For other tabs: open Ask on `question` (e.g. a newly trained one) with a version. */
export async function prepare(question, version) {
  await fillQuestions($("#ask-question"), true);
  $("#ask-question").value = question;
  await describeQuestion();
  if (version) $("#ask-target").value = `version:${version}`;
}
