// The REST API with the tab's token (kept in sessionStorage: gone when the tab closes).
// Every error becomes an ApiError carrying the server's own reason ({"error": ...}).

const KEY = "argus.token";

export function getToken() {
  return sessionStorage.getItem(KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function reasonOf(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === "string") return body.error;
  } catch {
    // not JSON: say what came back
  }
  const detail = text ? `: ${text.slice(0, 200)}` : "";
  return `${response.status} ${response.statusText}${detail}`;
}

/** fetch() with the token; resolves to the Response, or throws an ApiError with the reason. */
export async function request(path, { method = "GET", query, json, body, headers, signal } = {}) {
  const sent = new Headers(headers || {});
  const token = getToken();
  if (token) sent.set("Authorization", `Bearer ${token}`);
  let payload = body;
  if (json !== undefined) {
    sent.set("Content-Type", "application/json");
    payload = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(withQuery(path, query), { method, headers: sent, body: payload, signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, `the server did not answer (${err.message})`);
  }
  if (!response.ok) throw new ApiError(response.status, await reasonOf(response));
  return response;
}

async function call(path, options) {
  const response = await request(path, options);
  if (response.status === 204) return null;
  return response.json();
}

export const api = {
  get: (path, query) => call(path, { query }),
  post: (path, json, query) => call(path, { method: "POST", json, query }),
  put: (path, json, query) => call(path, { method: "PUT", json, query }),
  del: (path, query) => call(path, { method: "DELETE", query }),
  form: (path, form) => call(path, { method: "POST", body: form }),
  send: (path, blob, query, headers) => call(path, { method: "POST", body: blob, query, headers }),
};

/** An object URL for a file the API serves (images need the token too, so no plain <img src>). */
export async function blobUrl(path) {
  const response = await request(path);
  return URL.createObjectURL(await response.blob());
}

/** The server's Prometheus text, parsed: [{name, labels, value}]. */
export async function metrics() {
  const response = await request("/metrics");
  return parseMetrics(await response.text());
}

export function parseMetrics(text) {
  const out = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  const pair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const row of text.split("\n")) {
    if (!row || row.startsWith("#")) continue;
    const m = line.exec(row);
    if (!m) continue;
    const labels = {};
    for (const [, key, value] of (m[2] || "").matchAll(pair)) {
      labels[key] = value.replace(/\\"/g, '"').replace(/\\n/g, "\n").replace(/\\\\/g, "\\");
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}
