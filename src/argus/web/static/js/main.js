// The page: tabs (keyboard like any tab list), the token field, and what this token may see.
import { getToken, setToken } from "./api.js";
import { $ } from "./dom.js";
import { setNavigator } from "./nav.js";
import { refreshSession, session, onSession } from "./session.js";
import * as ask from "./ask.js";
import * as models from "./models.js";
import * as train from "./train.js";
import * as review from "./review.js";
import * as galleries from "./galleries.js";
import * as jobs from "./jobs.js";
import * as records from "./records.js";
import * as health from "./health.js";

const sections = { ask, models, train, review, galleries, jobs, records, health };
const started = new Set();
let current = null;

function tabs() {
  return [...document.querySelectorAll('[role="tab"]')].filter((tab) => !tab.hidden);
}

function select(name, { focus = false } = {}) {
  const tab = document.getElementById(`tab-${name}`);
  if (!tab || tab.hidden) name = "ask";
  for (const other of document.querySelectorAll('[role="tab"]')) {
    const on = other.dataset.tab === name;
    other.setAttribute("aria-selected", String(on));
    other.tabIndex = on ? 0 : -1;
    document.getElementById(`panel-${other.dataset.tab}`).hidden = !on;
  }
  if (focus) document.getElementById(`tab-${name}`).focus();
  if (current && current !== name) sections[current].hide?.();
  current = name;
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  const section = sections[name];
  const panel = document.getElementById(`panel-${name}`);
  if (!started.has(name)) {
    started.add(name);
    section.init(panel);
  }
  panel.setAttribute("aria-busy", "true"); // until the tab has fetched what it shows
  Promise.resolve(section.show?.()).finally(() => panel.setAttribute("aria-busy", "false"));
}

setNavigator((name) => {
  select(name);
  return sections[name];
});

function keyboard(event) {
  const all = tabs();
  const at = all.indexOf(event.target);
  let next = null;
  if (event.key === "ArrowRight") next = all[(at + 1) % all.length];
  else if (event.key === "ArrowLeft") next = all[(at - 1 + all.length) % all.length];
  else if (event.key === "Home") next = all[0];
  else if (event.key === "End") next = all[all.length - 1];
  if (next) {
    event.preventDefault();
    select(next.dataset.tab, { focus: true });
  }
}

function applySession() {
  const who = $("#whoami");
  const words = {
    admin: "admin token",
    infer: "inference token: management hidden",
    unknown: "this token is not valid here",
    none: session.tokens_required ? "no token" : "no token needed",
  };
  who.textContent = session.tokens_required ? words[session.token] || "" : "no token needed";
  document.body.classList.toggle("can-manage", session.manage);
  for (const el of document.querySelectorAll(".admin")) el.hidden = !session.manage;
  $("#needs-token").hidden = session.ask;
  if (current && document.getElementById(`tab-${current}`).hidden) select("ask");
}

async function start() {
  $("#token").value = getToken();
  $("#token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    setToken($("#token").value.trim());
    await refreshSession();
    if (current) sections[current].show?.();
  });
  const list = $("#tabs");
  list.addEventListener("click", (event) => {
    const tab = event.target.closest('[role="tab"]');
    if (tab) select(tab.dataset.tab);
  });
  list.addEventListener("keydown", keyboard);
  window.addEventListener("hashchange", () => select(location.hash.slice(1)));
  onSession(applySession);
  await refreshSession();
  select(location.hash.slice(1) || "ask");
  document.body.dataset.ready = "true";
}

start();
