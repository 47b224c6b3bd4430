// Review: images kept because the model was unsure (or canary and production disagreed), one at
// a time with the model's guess; a key press labels one (filed into the model's dataset folder
// on the server); Retrain trains the model on that folder.
import { api, blobUrl } from "./api.js";
import { $, h, fill, fmt, say, showError } from "./dom.js";
import { go } from "./nav.js";

let panel;
let items = [];
let at = 0;
let known = {}; // model -> labels already given
let imageUrl = null;
let lastModel = ""; // after the last image is labelled, Retrain still knows which model
let drawing = 0; // the latest render(): an older one still waiting for data gives way

function current() {
  return items[at] || null;
}

async function load() {
  showError($("#review-error"), null);
  const model = $("#review-model").value;
  const labelled = $("#review-which").value;
  const mine = ++drawing;
  const found = await api.get("/v1/review", { model, labelled, limit: 200 });
  if (mine !== drawing) return;
  items = found;
  at = 0;
  const models = new Set(items.map((i) => i.model));
  const select = $("#review-model");
  for (const m of models) {
    if (![...select.options].some((o) => o.value === m)) select.append(h("option", { value: m, text: m }));
  }
  await render();
}

async function knownLabels(model) {
  if (!known[model]) {
    const done = await api.get("/v1/review", { model, labelled: "true", limit: 1000 }).catch(() => []);
    known[model] = [...new Set(done.map((i) => i.label).filter(Boolean))].sort();
  }
  return known[model];
}

async function suggestions(item) {
  const out = [];
  const add = (label) => { if (label && !out.includes(label) && out.length < 9) out.push(label); };
  for (const label of await knownLabels(item.model)) add(label);
  add(item.guess);
  for (const l of item.detail?.labels || []) add(l.label);
  return out;
}

async function render() {
  const mine = ++drawing;
  const holder = $("#review-item");
  const item = current();
  const model = item?.model || $("#review-model").value || lastModel;
  lastModel = model;
  const retrain = $("#review-retrain");
  retrain.hidden = !model;
  retrain.textContent = model ? `Retrain ${model} on its labelled photos` : "Retrain";
  retrain.dataset.model = model || "";
  if (!item) {
    fill(holder, h("p", { class: "hint", id: "review-empty", text: items.length ? "That was the last one." : "Nothing kept for review here. Ask with “Keep for review under” set (or run the server with --keep-uncertain)." }));
    return;
  }
  const labels = await suggestions(item);
  if (mine !== drawing) return;
  if (imageUrl) URL.revokeObjectURL(imageUrl);
  const img = h("img", { alt: `Kept image ${item.digest.slice(0, 12)}, guessed ${item.guess}` });
  const input = h("input", { id: "review-label", placeholder: "a new label", "aria-label": "New label", autocomplete: "off" });
  const form = h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); if (input.value.trim()) label(input.value.trim()); } },
    input, h("button", { type: "submit", text: "Label" }));
  fill(holder, h("div", { class: "review", dataset: { digest: item.digest } },
    img,
    h("div", {},
      h("p", { class: "hint", text: `${at + 1} of ${items.length}` }),
      h("p", {}, h("strong", { text: item.guess }), ` · ${fmt.pct(item.score)} · ${item.model} v${item.version}`),
      h("p", { class: "hint", text: `kept because ${item.reason === "uncertain" ? "the top score was low" : item.reason} · ${fmt.time(item.created_at)} · ${item.source}` }),
      item.label ? h("p", { class: "ok", text: `labelled ${item.label}` }) : null,
      h("div", { class: "choices", role: "group", "aria-label": "Label with" },
        labels.map((l, i) => h("button", { type: "button", dataset: { label: l }, onclick: () => label(l) }, h("kbd", { text: i + 1 }), ` ${l}`))),
      form,
      h("div", { class: "row" },
        h("button", { type: "button", text: "Skip (s)", onclick: next }),
        h("button", { type: "button", class: "danger", text: "Discard (x)", onclick: discard })))));
  try {
    imageUrl = await blobUrl(`/v1/review/${item.digest}/image`);
    img.src = imageUrl;
  } catch (err) {
    img.alt = `the image could not be fetched: ${err.message}`;
  }
}

async function label(text) {
  const item = current();
  if (!item) return;
  try {
    const done = await api.post(`/v1/review/${item.digest}/label`, { label: text });
    (known[item.model] ||= []).includes(text) || known[item.model].push(text);
    say(`labelled ${text}${done.filed ? `, filed as ${done.filed}` : ""}`);
    if ($("#review-which").value === "false") items.splice(at, 1);
    else { items[at] = { ...item, label: text }; at += 1; }
    await render();
  } catch (err) {
    showError($("#review-error"), err);
  }
}

async function next() {
  at = Math.min(at + 1, items.length);
  await render();
}

async function discard() {
  const item = current();
  if (!item) return;
  try {
    await api.del(`/v1/review/${item.digest}`);
    items.splice(at, 1);
    say("discarded");
    await render();
  } catch (err) {
    showError($("#review-error"), err);
  }
}

function keys(event) {
  if (panel.hidden || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest("input, select, textarea, dialog")) return;
  const choice = /^[1-9]$/.test(event.key) ? document.querySelectorAll("#review-item .choices button")[Number(event.key) - 1] : null;
  if (choice) {
    event.preventDefault();
    label(choice.dataset.label);
  } else if (event.key === "s" || event.key === "ArrowRight") {
    event.preventDefault();
    next();
  } else if (event.key === "x") {
    event.preventDefault();
    discard();
  }
}

export function init(element) {
  panel = element;
  $("#review-refresh").addEventListener("click", () => load().catch((err) => showError($("#review-error"), err)));
  $("#review-model").addEventListener("change", () => load().catch((err) => showError($("#review-error"), err)));
  $("#review-which").addEventListener("change", () => load().catch((err) => showError($("#review-error"), err)));
  $("#review-retrain").addEventListener("click", async () => {
    const model = $("#review-retrain").dataset.model;
    if (model) await go("train").trainOnServerDataset(model);
  });
  document.addEventListener("keydown", keys);
}

export async function show() {
  known = {};
  await load().catch((err) => showError($("#review-error"), err));
}
