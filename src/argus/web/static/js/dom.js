// Small DOM helpers: building elements, announcing, formatting, copying, drop zones.

// Names set as attributes, not properties (`tabindex` is no property; `for` is `htmlFor`).
const ATTRIBUTES = new Set(["role", "for", "scope", "tabindex", "list"]);

/** h("div", {class: "x", onclick: f, "aria-label": "y"}, child, "text", [more]) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key.includes("-") || ATTRIBUTES.has(key)) el.setAttribute(key, value === true ? "" : value);
    else el[key] = value;
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Tell screen readers (and the tests) what just happened. */
export function say(message) {
  const status = document.getElementById("status");
  status.textContent = "";
  requestAnimationFrame(() => { status.textContent = message; });
}

export function showError(el, error) {
  if (!error) {
    el.hidden = true;
    el.textContent = "";
    return;
  }
  const status = error.status ? ` (${error.status})` : "";
  el.textContent = `${error.message || error}${status}`;
  el.hidden = false;
}

export const fmt = {
  pct: (x) => `${(100 * x).toFixed(x === 1 || x === 0 ? 0 : 1)}%`,
  score: (x) => Number(x).toFixed(2),
  ms: (x) => (x >= 100 ? `${Math.round(x)} ms` : `${Number(x).toFixed(1)} ms`),
  digest: (d) => (d || "").replace(/^sha256:/, "").slice(0, 12),
  bytes(n) {
    if (n === undefined || n === null) return "";
    const units = ["B", "kB", "MB", "GB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
  },
  time(iso) {
    if (!iso) return "";
    const d = new Date(/[zZ]|[+-]\d\d:\d\d$/.test(iso) ? iso : `${iso}Z`);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
  },
};

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h("textarea", { value: text, "aria-hidden": "true" });
    document.body.append(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
}

/** Make `zone` take dropped files, and open `input` on click, Enter or Space. */
export function dropZone(zone, input, onFiles) {
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const files = [...(event.dataTransfer?.files || [])];
    if (files.length) onFiles(files);
  });
  input.addEventListener("change", () => {
    const files = [...input.files];
    if (files.length) onFiles(files);
  });
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
