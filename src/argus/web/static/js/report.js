// A trained version's report: held-out scores, per-class table, confusion matrix, threshold,
// the worst mistakes and the pictures the trainer drew.
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
