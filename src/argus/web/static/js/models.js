// Models: versions (digest, source, licence, lineage, report), aliases and canary share, app
// pins, what is loaded and its memory; promote, canary, rollback and pin, each with a reason
// for the audit trail; the history.
import { api, metrics } from "./api.js";
import { $, h, fill, fmt, say } from "./dom.js";
import { confirmAction } from "./dialog.js";
import { renderAgreement, renderReport } from "./report.js";
import { forgetQuestions } from "./catalog.js";
import { session } from "./session.js";

let chosen = null;
let apps = [];

const path = (name) => `/v1/models/${encodeURIComponent(name)}`;

function sourceSummary(source) {
  if (!source || !source.kind) return "";
  if (source.kind === "trained") {
    const base = source.base ? `${source.base.name} v${source.base.version}` : "a base";
    const data = source.dataset ? `${source.dataset.images} photos` : "photos";
    return `trained (${source.mode}) on ${data} from ${base}`;
  }
  if (source.kind === "optimized" && source.parent) {
    return `${source.method?.to} of v${source.parent.version} (agreement ${fmt.pct(source.agreement?.agreement ?? 0)})`;
  }
  if (source.kind === "wheel" && source.wheels?.length) {
    return `from ${source.wheels.map((w) => `${w.project} ${w.version}`).join(", ")}`;
  }
  return source.kind;
}

async function loadedVersions() {
  const out = {};
  try {
    for (const m of await metrics()) {
      const key = `${m.labels.model}:${m.labels.version}`;
      if (m.name === "argus_model_loaded") (out[key] ||= {}).runtime = m.labels.runtime;
      if (m.name === "argus_model_memory_bytes") (out[key] ||= {}).memory = m.value;
    }
  } catch {
    // metrics unreachable: the column stays empty
  }
  return out;
}

async function list() {
  const [models, appList] = await Promise.all([api.get("/v1/models"), api.get("/v1/apps").catch(() => [])]);
  apps = appList;
  fill($("#model-list"), models.map((m) => h("li", {}, h("button", {
    type: "button", "aria-current": String(m.name === chosen), dataset: { model: m.name },
    onclick: () => open(m.name),
  }, h("strong", { text: m.name }), h("span", { class: "muted", text: ` ${m.task} · ${m.versions.length} version${m.versions.length === 1 ? "" : "s"}` })))));
  fill($("#app-list"), apps.length ? apps.map((a) => h("li", {}, h("strong", { text: a.name }), ": ",
    a.pins.length ? a.pins.map((p) => `${p.model}${p.version ? ` v${p.version}` : ` @${p.alias}`}`).join(", ") : "no pins"))
    : h("li", { class: "muted", text: "none" }));
  if (!chosen && models.length) chosen = models[0].name;
  return models;
}

function aliasChips(info) {
  return h("div", { class: "chips" }, Object.entries(info.aliases).map(([alias, v]) => h("span", {
    class: `chip ${alias}`,
    text: alias === "canary" && info.canary_percent !== null ? `canary → v${v} (${info.canary_percent}%)` : `${alias} → v${v}`,
  })));
}

async function change(work, done) {
  try {
    await work();
    say(done);
    forgetQuestions();
    await refresh();
  } catch (err) {
    say(`error: ${err.message}`);
    alertError(err);
  }
}

function alertError(err) {
  const box = $("#model-error");
  if (box) {
    box.textContent = `${err.message}${err.status ? ` (${err.status})` : ""}`;
    box.hidden = false;
  }
}

function versionOptions(info) {
  return [...info.versions].reverse().map((v) => [v.version, `version ${v.version}${v.aliases.length ? ` (${v.aliases.join(", ")})` : ""}`]);
}

function actions(info) {
  const name = info.name;
  const latest = info.versions.at(-1)?.version;
  const promote = async () => {
    const got = await confirmAction({ title: `Promote a version of ${name}`, ok: "Promote",
      fields: [{ name: "version", label: "Version", type: "select", options: versionOptions(info), value: latest },
        { name: "to", label: "Alias", value: "production", required: true }] });
    if (got) await change(() => api.post(`${path(name)}/promote`, { version: Number(got.version), to: got.to, reason: got.reason }), `promoted ${name} version ${got.version} to ${got.to}`);
  };
  const canary = async () => {
    const got = await confirmAction({ title: `Canary a version of ${name}`, ok: "Start canary",
      text: "That share of requests without a pin gets this version; the rest get production.",
      fields: [{ name: "version", label: "Version", type: "select", options: versionOptions(info), value: latest },
        { name: "percent", label: "Share of requests (%)", type: "number", value: 10, min: 0, max: 100, required: true }] });
    if (got) await change(() => api.post(`${path(name)}/canary`, { version: Number(got.version), percent: Number(got.percent), reason: got.reason }), `canary of ${name} version ${got.version} at ${got.percent}%`);
  };
  const endCanary = async () => {
    const got = await confirmAction({ title: `End the canary of ${name}`, ok: "End canary" });
    if (got) await change(() => api.del(`${path(name)}/canary`, { reason: got.reason }), `ended the canary of ${name}`);
  };
  const rollback = async () => {
    const aliases = Object.keys(info.aliases).filter((a) => a !== "canary");
    const got = await confirmAction({ title: `Roll back an alias of ${name}`, ok: "Roll back",
      text: "The alias goes back to where it was before its last move.",
      fields: [{ name: "alias", label: "Alias", type: "select", options: (aliases.length ? aliases : ["production"]).map((a) => [a, a]), value: "production" }] });
    if (got) await change(() => api.post(`${path(name)}/rollback`, { alias: got.alias, reason: got.reason }), `rolled back ${name}@${got.alias}`);
  };
  const pin = async () => {
    const targets = [...Object.keys(info.aliases).map((a) => [`alias:${a}`, `alias ${a}`]), ...versionOptions(info).map(([v, t]) => [`version:${v}`, t])];
    const got = await confirmAction({ title: `Pin an application to ${name}`, ok: "Pin",
      text: "The application's requests get this version or alias of the model.",
      fields: [{ name: "app", label: "Application (a new name adds it)", value: apps[0]?.name || "", required: true },
        { name: "target", label: "To", type: "select", options: targets }] });
    if (!got) return;
    const [kind, value] = got.target.split(/:(.*)/s);
    const body = kind === "alias" ? { alias: value } : { version: Number(value) };
    await change(async () => {
      if (!apps.some((a) => a.name === got.app)) await api.post(`/v1/apps/${encodeURIComponent(got.app)}`);
      await api.put(`/v1/apps/${encodeURIComponent(got.app)}/pins/${encodeURIComponent(name)}`, { ...body, reason: got.reason });
    }, `pinned ${got.app} to ${name} ${value}`);
  };
  return h("div", { class: "row admin", hidden: !session.manage },
    h("button", { type: "button", id: "model-promote", text: "Promote…", onclick: promote }),
    h("button", { type: "button", id: "model-canary", text: "Canary…", onclick: canary }),
    info.aliases.canary !== undefined ? h("button", { type: "button", id: "model-end-canary", text: "End canary…", onclick: endCanary }) : null,
    h("button", { type: "button", id: "model-rollback", text: "Roll back…", onclick: rollback }),
    h("button", { type: "button", id: "model-pin", text: "Pin an app…", onclick: pin }));
}

function versionsTable(info, loaded) {
  return h("div", { class: "table-wrap" }, h("table", { class: "table versions" },
    h("thead", {}, h("tr", {}, ["version", "digest", "created", "source", "licence", "aliases", "loaded", ""].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, [...info.versions].reverse().map((v) => {
      const here = loaded[`${info.name}:${v.version}`];
      return h("tr", { dataset: { version: v.version } },
        h("td", { text: v.version }),
        h("td", {}, h("code", { text: fmt.digest(v.digest), title: v.digest })),
        h("td", { text: `${fmt.time(v.created_at)}${v.created_by ? ` by ${v.created_by}` : ""}` }),
        h("td", { text: sourceSummary(v.source) }),
        h("td", { text: v.license || "" }),
        h("td", {}, h("div", { class: "chips" }, v.aliases.map((a) => h("span", { class: `chip ${a}`, text: a })))),
        h("td", { text: here ? `yes, ${fmt.bytes(here.memory)}` : "no" }),
        h("td", {}, h("button", { type: "button", class: "small", text: "Details", "aria-label": `Details of version ${v.version}`, onclick: () => details(info.name, v.version) })));
    }))));
}

async function details(name, version) {
  const holder = $("#version-detail");
  fill(holder, h("p", { class: "hint", text: "Loading…" }));
  try {
    const v = await api.get(`${path(name)}/versions/${version}`);
    fill(holder,
      h("h3", { text: `${name} version ${version}` }),
      h("p", {}, h("code", { text: v.digest })),
      v.report?.kind === "optimized" ? [renderAgreement(v.report), canaryButton(name, v)]
        : v.report ? renderReport(v.report, v.pictures || []) : h("p", { class: "hint", text: "No training report (not trained here)." }),
      h("details", {}, h("summary", { text: "Lineage (source)" }), h("pre", { text: JSON.stringify(v.source, null, 2) })));
    holder.scrollIntoView({ block: "nearest" });
  } catch (err) {
    fill(holder, h("p", { class: "error", text: err.message }));
  }
}

/** One click: POST /v1/models/{name}/canary with 10% for an optimized version, its evidence as
 * the reason kept in the audit trail. */
function canaryButton(name, v) {
  const agreement = v.report.agreement || {};
  const reason = `${v.report.to} of v${v.report.parent?.version}: ${agreement.measure} ${fmt.pct(agreement.agreement ?? 0)} on ${agreement.images} held-out images`;
  return h("div", { class: "row admin", hidden: !session.manage },
    h("button", { type: "button", id: "version-canary", text: `Canary 10% to version ${v.version}`,
      onclick: () => change(() => api.post(`${path(name)}/canary`, { version: v.version, percent: 10, reason }),
        `canary of ${name} version ${v.version} at 10%`) }));
}

function pinsTable(name) {
  const rows = [];
  for (const a of apps) for (const p of a.pins) if (p.model === name) rows.push([a.name, p]);
  if (!rows.length) return h("p", { class: "hint", text: "No application is pinned to this model." });
  return h("table", { class: "table pins" },
    h("thead", {}, h("tr", {}, ["application", "pinned to", ""].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, rows.map(([app, p]) => h("tr", {}, h("td", { text: app }), h("td", { text: p.version ? `version ${p.version}` : `alias ${p.alias}` }),
      h("td", {}, h("button", { type: "button", class: "small admin", hidden: !session.manage, text: "Unpin…", onclick: async () => {
        const got = await confirmAction({ title: `Unpin ${app} from ${name}`, ok: "Unpin" });
        if (got) await change(() => api.del(`/v1/apps/${encodeURIComponent(app)}/pins/${encodeURIComponent(name)}`, { reason: got.reason }), `unpinned ${app}`);
      } }))))));
}

function historyTable(events) {
  return h("div", { class: "table-wrap" }, h("table", { class: "table history" },
    h("thead", {}, h("tr", {}, ["when", "what", "alias", "versions", "who", "reason and detail"].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, [...events].reverse().map((e) => {
      const { reason, ...rest } = e.detail || {};
      const more = Object.entries(rest).map(([k, v]) => ` ${k}: ${typeof v === "string" && v.startsWith("sha256:") ? fmt.digest(v) : typeof v === "object" ? JSON.stringify(v) : v}`).join(";");
      return h("tr", {},
        h("td", { text: fmt.time(e.at) }), h("td", { text: e.action }), h("td", { text: e.alias || "" }),
        h("td", { text: `${e.from_version ?? "–"} → ${e.to_version ?? "–"}` }), h("td", { text: e.actor }),
        h("td", {}, reason ? h("strong", { text: reason }) : null, h("span", { class: "muted", text: more })));
    }))));
}

async function open(name) {
  chosen = name;
  for (const b of document.querySelectorAll("#model-list button")) b.setAttribute("aria-current", String(b.dataset.model === name));
  const holder = $("#model-detail");
  try {
    const [info, events, loaded] = await Promise.all([api.get(path(name)), api.get(`${path(name)}/history`), loadedVersions()]);
    fill(holder,
      h("h2", { text: info.name }, h("span", { class: "muted", text: ` · ${info.task}` })),
      aliasChips(info),
      actions(info),
      h("p", { id: "model-error", class: "error", role: "alert", hidden: true }),
      h("h3", { text: "Versions" }),
      versionsTable(info, loaded),
      h("div", { id: "version-detail" }),
      h("h3", { text: "Applications" }),
      pinsTable(name),
      h("h3", { text: "History" }),
      historyTable(events));
    holder.dataset.model = name;
  } catch (err) {
    fill(holder, h("p", { class: "error", text: err.message }));
  }
}

async function refresh() {
  await list();
  if (chosen) await open(chosen);
}

export function init() {}

export async function show() {
  if (!session.ask) return;
  await refresh().catch((err) => fill($("#model-detail"), h("p", { class: "error", text: err.message })));
}

/** For other tabs: show `name` (and a version's details). */
export async function reveal(name, version) {
  chosen = name;
  await refresh();
  if (version) await details(name, version);
}
