// A trained version's report: held-out scores, per-class table, confusion matrix, threshold,
// the worst mistakes and the pictures the trainer drew. An optimized version's report: how
// closely it answers like its parent on held-out images, and how much faster it ran.
import { blobUrl } from "./api.js";
import { h, fmt } from "./dom.js";

function confusion(classes, matrix) {
  return h("div", { class: "table-wrap" }, h("table", { class: "table confusion" },
    h("caption", { class: "hint", text: "Held-out photos: rows are the true class, columns the answer." }),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "true \\ answer" }), classes.map((c) => h("th", { scope: "col", text: c })))),
    h("tbody", {}, matrix.map((row, i) => h("tr", {}, h("th", { scope: "row", text: classes[i] }),
      row.map((n, j) => h("td", { class: i === j ? "right" : n ? "wrong" : "", text: n })))))));
}

/** The report as HTML; `pictures` are API paths of its PNGs (fetched with the token). */
export function renderReport(report, pictures = []) {
  const held = report.held_out || {};
  const out = [
    h("p", {},
      h("strong", { text: `held-out accuracy ${fmt.pct(held.accuracy ?? 0)}` }),
      ` · macro-F1 ${fmt.score(held.macro_f1 ?? 0)} · ${held.images ?? 0} held-out photos · mode ${report.mode}`,
      report.mode_reason ? ` (${report.mode_reason})` : ""),
  ];
  if (held.per_class?.length) {
    out.push(h("div", { class: "table-wrap" }, h("table", { class: "table per-class" },
      h("thead", {}, h("tr", {}, ["class", "precision", "recall", "F1", "photos"].map((t, i) => h("th", { scope: "col", class: i ? "num" : "", text: t })))),
      h("tbody", {}, held.per_class.map((c) => h("tr", {},
        h("td", { text: c.label }), h("td", { class: "num", text: fmt.score(c.precision) }),
        h("td", { class: "num", text: fmt.score(c.recall) }), h("td", { class: "num", text: fmt.score(c.f1) }),
        h("td", { class: "num", text: c.support })))))));
  }
  if (held.confusion) out.push(confusion(held.classes, held.confusion));
  if (held.threshold) {
    const t = held.threshold;
    out.push(h("p", { class: "hint", text: t.value !== null && t.value !== undefined
      ? `Threshold: answers scoring at least ${fmt.score(t.value)} are right ${fmt.pct(t.target_precision)} of the time.`
      : `Threshold: ${t.why || "none"}` }));
  }
  if (held.worst_mistakes?.length) {
    out.push(h("h4", { text: "Most confident mistakes" }), h("ul", {}, held.worst_mistakes.map((m) =>
      h("li", { text: `${m.path}: ${m.label}, answered ${m.guess} (${fmt.score(m.score)})` }))));
  }
  const warnings = report.checks?.warnings || [];
  if (warnings.length) out.push(h("ul", { class: "hint" }, warnings.map((w) => h("li", { text: w }))));
  if (pictures.length) {
    const holder = h("div", { class: "pictures" });
    for (const path of pictures) {
      const name = path.split("/").pop();
      const img = h("img", { alt: name.startsWith("confusion") ? "Confusion matrix of the held-out photos" : `Training ${name.replace(".png", "")}` });
      holder.append(img);
      blobUrl(path).then((url) => { img.src = url; }).catch(() => img.remove());
    }
    out.push(holder);
  }
  return h("div", { class: "report" }, out);
}

const AGREEMENT_SHOWN = {
  top1_agreement: "top-1 agreement", top5_overlap: "top-5 overlap", clear_top1_agreement: "top-1 agreement on clear answers",
  max_score_diff: "largest score difference", mean_top1_score_diff: "mean top-1 score difference",
  mean_cosine: "mean cosine", min_cosine: "lowest cosine", same_boxes_images: "images with the same boxes",
  matched_boxes: "boxes matched", parent_boxes: "parent's boxes", new_boxes: "new version's boxes", mean_iou: "mean IoU",
};

/** An optimized version's agreement report (argus models optimize) as HTML. */
export function renderAgreement(report) {
  const a = report.agreement || {};
  const speed = report.speed || {};
  const method = report.method || {};
  const held = report.held_out || {};
  const rows = Object.entries(AGREEMENT_SHOWN).filter(([k]) => a[k] !== undefined && a[k] !== null)
    .map(([k, label]) => h("tr", {}, h("td", { text: label }), h("td", { class: "num", text: String(a[k]) })));
  const out = [
    h("p", {},
      h("strong", { class: "agreement", text: `${a.measure}: ${fmt.pct(a.agreement ?? 0)}` }),
      ` against version ${report.parent?.version} on ${a.images ?? 0} held-out images (${held.made_from || ""}) · `,
      `${report.to} by ${method.engine}${method.format ? ` ${method.format}` : ""}`),
    h("p", { class: "hint", text: `Model call ${speed.parent_ms} ms → ${speed.new_ms} ms (×${speed.speedup}; ${speed.how || ""}).` }),
    h("div", { class: "table-wrap" }, h("table", { class: "table agreement" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "measure" }), h("th", { scope: "col", class: "num", text: "value" }))),
      h("tbody", {}, rows))),
  ];
  if (a.disagreements?.length) {
    out.push(h("h4", { text: "Where it answers differently" }), h("ul", {}, a.disagreements.map((d) =>
      h("li", { text: Object.entries(d).map(([k, v]) => `${k} ${v}`).join(", ") }))));
  }
  return h("div", { class: "report" }, out);
}
