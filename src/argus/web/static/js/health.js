// Health, from the server's own /metrics (polled while the tab is open): throughput, p50/p95,
// batch sizes, batching queue depth, loaded models and their memory; jobs for admins.
import { api, metrics } from "./api.js";
import { $, h, fill, fmt } from "./dom.js";
import { session } from "./session.js";

const EVERY_MS = 2000;
let timer = null;
let previous = null; // {t, count, buckets}

/** The q-quantile of a Prometheus histogram, from cumulative buckets [[le, count]]. */
export function quantile(q, buckets) {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] || 0;
  if (!total) return null;
  const rank = q * total;
  let lowerLe = 0;
  let lowerCount = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return lowerLe;
      const within = count - lowerCount;
      return within ? lowerLe + ((le - lowerLe) * (rank - lowerCount)) / within : le;
    }
    lowerLe = le;
    lowerCount = count;
  }
  return lowerLe;
}

function latencyBuckets(samples, filter = () => true) {
  const byLe = new Map();
  for (const m of samples) {
    if (m.name !== "argus_request_duration_seconds_bucket" || !filter(m.labels)) continue;
    const le = m.labels.le === "+Inf" ? Infinity : Number(m.labels.le);
    byLe.set(le, (byLe.get(le) || 0) + m.value);
  }
  return [...byLe.entries()];
}

function sum(samples, name, filter = () => true) {
  return samples.filter((m) => m.name === name && filter(m.labels)).reduce((a, m) => a + m.value, 0);
}

function card(title, ...body) {
  return h("div", { class: "card" }, h("h2", { text: title }), body);
}

function wideCard(title, table) {
  return h("div", { class: "card wide" }, h("h2", { text: title }), h("div", { class: "table-wrap" }, table));
}

function ms(seconds) {
  return seconds === null ? "–" : fmt.ms(seconds * 1000);
}

async function tick() {
  const samples = await metrics();
  const now = performance.now();
  const ok = (l) => l.status === "200";
  const count = sum(samples, "argus_request_duration_seconds_count");
  const buckets = latencyBuckets(samples, ok);
  let rate = null;
  let window = buckets;
  let windowWords = "since the server started";
  if (previous && count >= previous.count) {
    rate = (count - previous.count) / ((now - previous.t) / 1000);
    const before = new Map(previous.buckets);
    const delta = buckets.map(([le, c]) => [le, c - (before.get(le) || 0)]);
    if (delta.some(([, c]) => c > 0)) {
      window = delta;
      windowWords = `over the last ${Math.round((now - previous.t) / 1000)} s`;
    }
  }
  previous = { t: now, count, buckets };

  const questions = [...new Set(samples.filter((m) => m.name === "argus_request_duration_seconds_count").map((m) => m.labels.question))].sort();
  const models = samples.filter((m) => m.name === "argus_model_loaded").map((m) => m.labels);
  const of = (name, l) => samples.find((m) => m.name === name && m.labels.model === l.model && m.labels.version === l.version)?.value;
  const ready = samples.find((m) => m.name === "argus_ready")?.value === 1;
  const cards = [
    card("Serving",
      h("p", { class: "stat", id: "health-ready", text: ready ? "ready" : "loading" }),
      h("p", {}, h("span", { class: "stat", id: "health-rate", text: rate === null ? "…" : rate.toFixed(1) }), " requests/s"),
      h("p", { class: "hint", text: `${count} answered or refused since start` })),
    card("Latency",
      h("p", {}, "p50 ", h("span", { class: "stat", id: "health-p50", text: ms(quantile(0.5, window)) })),
      h("p", {}, "p95 ", h("span", { class: "stat", id: "health-p95", text: ms(quantile(0.95, window)) })),
      h("p", { class: "hint", text: `answered requests, ${windowWords}` })),
    wideCard("Questions", h("table", { class: "table" },
      h("thead", {}, h("tr", {}, ["question", "requests", "p50", "p95"].map((t, i) => h("th", { scope: "col", class: i ? "num" : "", text: t })))),
      h("tbody", {}, questions.map((q) => {
        const b = latencyBuckets(samples, (l) => l.question === q && ok(l));
        return h("tr", {}, h("td", { text: q }), h("td", { class: "num", text: sum(samples, "argus_request_duration_seconds_count", (l) => l.question === q) }),
          h("td", { class: "num", text: ms(quantile(0.5, b)) }), h("td", { class: "num", text: ms(quantile(0.95, b)) }));
      })))),
    wideCard("Loaded models", h("table", { class: "table", id: "health-models" },
      h("thead", {}, h("tr", {}, ["model", "memory", "queue", "mean batch", "runtime"].map((t, i) => h("th", { scope: "col", class: i && i < 4 ? "num" : "", text: t })))),
      h("tbody", {}, models.map((l) => {
        const batches = of("argus_model_batch_size_count", l);
        const items = of("argus_model_batch_size_sum", l);
        return h("tr", {}, h("td", { text: `${l.model} v${l.version}` }), h("td", { class: "num", text: fmt.bytes(of("argus_model_memory_bytes", l)) }),
          h("td", { class: "num", text: of("argus_model_queue_depth", l) ?? 0 }),
          h("td", { class: "num", text: batches ? (items / batches).toFixed(2) : "–" }), h("td", { text: l.runtime }));
      })))),
  ];
  const [health, jobs] = await Promise.all([
    api.get("/v2/health/ready").catch(() => null),
    session.manage ? api.get("/v1/jobs", { limit: 1 }).catch(() => null) : null,
  ]);
  if (health?.refused?.length) {
    cards.push(card("Refused models", h("ul", {}, health.refused.map((r) => h("li", { text: `${r.name || r.model} v${r.version}: ${r.reason}` })))));
  }
  if (jobs) {
    cards.push(card("Jobs", h("ul", { class: "plain", id: "health-jobs" },
      Object.entries(jobs.counts).map(([k, n]) => h("li", {}, h("strong", { text: n }), ` ${k}`)))));
  }
  fill($("#health"), cards);
}

async function loop() {
  try {
    await tick();
  } catch (err) {
    fill($("#health"), h("p", { class: "error", text: err.message }));
  }
  timer = setTimeout(loop, EVERY_MS);
}

export function init() {}

export function show() {
  clearTimeout(timer);
  loop();
}

export function hide() {
  clearTimeout(timer);
  timer = null;
}
