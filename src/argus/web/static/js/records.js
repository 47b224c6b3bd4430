// Records: recent prediction records, filtered by question, app, source, model version and
// time; a thumbnail where the image was kept for review.
import { api, blobUrl } from "./api.js";
import { $, h, fill, fmt, showError } from "./dom.js";
import { loadQuestions } from "./catalog.js";

function top(answer) {
  const values = Object.values(answer || {});
  const single = values.some(Array.isArray) ? [answer] : values.filter(Boolean);
  for (const v of single) {
    if (v.labels?.length) return `${v.labels[0].label} ${fmt.pct(v.labels[0].score)}`;
    if (v.faces) return `${v.faces.length} face${v.faces.length === 1 ? "" : "s"}`;
    if (v.objects) return `${v.objects.length} object${v.objects.length === 1 ? "" : "s"}`;
  }
  return "";
}

function iso(local) {
  return local ? new Date(local).toISOString() : "";
}

async function search(event) {
  event?.preventDefault();
  const error = $("#records-error");
  showError(error, null);
  try {
    const query = {
      question: $("#records-question").value.trim(), app: $("#records-app").value.trim(),
      source: $("#records-source").value, since: iso($("#records-since").value),
      until: iso($("#records-until").value), limit: 200,
    };
    const [rows, kept] = await Promise.all([api.get("/v1/records", query), api.get("/v1/review", { limit: 1000 }).catch(() => [])]);
    const keptDigests = new Set(kept.map((k) => k.digest));
    const version = $("#records-version").value.trim();
    const shown = version ? rows.filter((r) => r.models.some((m) => `${m.name}:${m.version}` === version || m.name === version)) : rows;
    fill($("#records-table"), shown.map((r) => {
      const thumb = h("td");
      if (keptDigests.has(r.image_sha256)) {
        const img = h("img", { class: "thumb", alt: `kept image ${r.image_sha256.slice(0, 8)}` });
        thumb.append(img);
        blobUrl(`/v1/review/${r.image_sha256}/image`).then((url) => { img.src = url; }).catch(() => img.remove());
      } else {
        thumb.append(h("code", { text: r.image_sha256.slice(0, 8), title: r.image_sha256 }));
      }
      return h("tr", {},
        h("td", { text: fmt.time(r.created_at) }), thumb, h("td", { text: r.question }), h("td", { text: top(r.answer) }),
        h("td", { text: r.models.map((m) => `${m.name} v${m.version}`).join(", ") }),
        h("td", { text: r.app || "" }), h("td", { text: r.source }), h("td", { class: "num", text: r.timings?.total?.toFixed(1) ?? "" }));
    }));
    if (!shown.length) $("#records-table").append(h("tr", {}, h("td", { colSpan: 8, class: "muted", text: "No records. Ask with “Write a prediction record” on (record=true)." })));
  } catch (err) {
    showError(error, err);
  }
}

export function init() {
  $("#records-form").addEventListener("submit", search);
}

export async function show() {
  loadQuestions().then((qs) => fill($("#question-names"), qs.map((q) => h("option", { value: q.name })))).catch(() => {});
  await search();
}
