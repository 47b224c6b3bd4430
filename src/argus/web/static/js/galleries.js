// Galleries: the people `who` names. Create a gallery, enrol a person by dropping photos
// (POST /v1/galleries/{g}/people), forget one with a reason (DELETE …/people/{person}); the
// audit trail below is GET /v1/galleries/{g}/history. Every button is one documented call.
import { api } from "./api.js";
import { confirmAction } from "./dialog.js";
import { $, h, fill, fmt, say, showError, dropZone } from "./dom.js";

let panel;
let chosen = null; // the gallery shown on the right

const path = (name) => `/v1/galleries/${encodeURIComponent(name)}`;

async function loadApps() {
  const select = $("#galleries-app");
  const apps = await api.get("/v1/apps").catch(() => []);
  fill(select, h("option", { value: "", text: "any" }), apps.map((a) => h("option", { value: a.name, text: a.name })));
}

async function list() {
  const rows = await api.get("/v1/galleries");
  fill($("#galleries-table"), rows.map((g) => h("tr", { dataset: { gallery: g.name } },
    h("td", {}, h("button", { type: "button", class: "small", text: g.name, onclick: () => open(g.name) })),
    h("td", { text: g.app || "any" }),
    h("td", { text: String(g.threshold) }),
    h("td", { text: String(g.people.length) }),
    h("td", { text: String(g.faces) }))));
  if (chosen && !rows.some((g) => g.name === chosen)) {
    chosen = null;
    $("#galleries-detail").hidden = true;
  }
}

async function open(name) {
  chosen = name;
  const [info, trail] = await Promise.all([api.get(path(name)), api.get(`${path(name)}/history`)]);
  $("#galleries-detail").hidden = false;
  $("#galleries-title").textContent = `${info.name} · ${info.app ? `app ${info.app}` : "any app"} · threshold ${info.threshold}`;
  fill($("#galleries-actions"),
    h("button", { type: "button", id: "galleries-threshold", text: "Threshold…", onclick: () => threshold(info) }),
    h("button", { type: "button", id: "galleries-delete", class: "danger", text: "Delete gallery…", onclick: () => remove(info) }));
  fill($("#galleries-people"), info.people.map((p) => h("tr", { dataset: { person: p.name } },
    h("td", { text: p.name }),
    h("td", { text: String(p.faces) }),
    h("td", {}, h("button", { type: "button", class: "small danger", text: "Forget", onclick: () => forget(p.name) })))));
  if (!info.people.length) fill($("#galleries-people"), h("tr", {}, h("td", { colspan: 3, class: "muted", text: "no one enrolled yet" })));
  fill($("#galleries-history"), trail.map((e) => h("li", { text:
    `${fmt.time(e.at)} · ${e.action}${e.person ? ` ${e.person}` : ""} · ${e.actor}${e.detail?.reason ? ` · “${e.detail.reason}”` : ""}` })));
}

async function enrol(files) {
  const error = $("#galleries-error");
  showError(error, null);
  const person = $("#galleries-person").value.trim();
  if (!chosen) return;
  if (!person) {
    showError(error, "say who the photos show first (Person)");
    $("#galleries-person").focus();
    return;
  }
  const form = new FormData();
  form.append("person", person);
  for (const file of files) form.append("photo", file, file.name);
  if ($("#galleries-keep").checked) form.append("keep_photo", "true");
  try {
    const done = await api.form(`${path(chosen)}/people`, form);
    say(`${done.person}: ${done.enrolled} face${done.enrolled > 1 ? "s" : ""} enrolled`);
    await Promise.all([open(chosen), list()]);
  } catch (err) {
    showError(error, err);
  }
}

async function forget(person) {
  const values = await confirmAction({
    title: `Forget ${person}?`,
    text: `Every face of ${person} in ${chosen} is deleted (and any kept photo). This cannot be undone.`,
    ok: "Forget",
  });
  if (!values) return;
  try {
    await api.del(`${path(chosen)}/people/${encodeURIComponent(person)}`, { reason: values.reason });
    say(`${person} forgotten`);
    await Promise.all([open(chosen), list()]);
  } catch (err) {
    showError($("#galleries-error"), err);
  }
}

async function threshold(info) {
  const values = await confirmAction({
    title: `Threshold of ${info.name}`,
    text: "A face is named when its cosine similarity to the nearest enrolled face reaches this (SFace: 0.363).",
    fields: [{ name: "threshold", label: "Threshold (0 to 1)", type: "text", value: info.threshold, required: true }],
    ok: "Set",
  });
  if (!values) return;
  try {
    await api.put(`${path(info.name)}/threshold`, { threshold: Number(values.threshold), reason: values.reason || null });
    say(`threshold of ${info.name} set`);
    await Promise.all([open(info.name), list()]);
  } catch (err) {
    showError($("#galleries-error"), err);
  }
}

async function remove(info) {
  const values = await confirmAction({
    title: `Delete ${info.name}?`,
    text: `Every face of everyone in ${info.name} is deleted. The audit trail stays.`,
    ok: "Delete",
  });
  if (!values) return;
  try {
    await api.del(path(info.name), { reason: values.reason });
    say(`gallery ${info.name} deleted`);
    chosen = null;
    $("#galleries-detail").hidden = true;
    await list();
  } catch (err) {
    showError($("#galleries-error"), err);
  }
}

export function init(root) {
  panel = root;
  $("#galleries-new", panel).addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("#galleries-error");
    showError(error, null);
    const name = $("#galleries-name").value.trim();
    if (!event.target.reportValidity()) return;
    try {
      await api.post("/v1/galleries", { name, app: $("#galleries-app").value || null });
      say(`gallery ${name} created`);
      $("#galleries-name").value = "";
      await list();
      await open(name);
    } catch (err) {
      showError(error, err);
    }
  });
  dropZone($("#galleries-drop"), $("#galleries-files"), (files) => enrol(files));
}

export async function show() {
  try {
    await Promise.all([list(), loadApps()]);
    if (chosen) await open(chosen);
  } catch (err) {
    showError($("#galleries-error"), err);
  }
}
