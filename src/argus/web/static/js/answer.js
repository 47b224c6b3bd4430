// An answer drawn on its photo: boxes with labels and scores, five face landmarks, labels as
// bars, aligned face crops, the graph's steps as a timeline, the model versions, the raw JSON.
// Each answer kind is one case in describePart(); a new kind adds its drawing there.
import { h, fill, fmt, copyText, say } from "./dom.js";

const FACE = "#ffd400";
const LANDMARKS = [
  ["left eye", "#00e5ff"], ["right eye", "#00e5ff"], ["nose", "#ff4dd2"],
  ["mouth, left", "#7cff4d"], ["mouth, right", "#7cff4d"],
];
const TEXT = "#ff2fd0";
const GAZE = "#fff04d";
const PERSON = "#00a0ff";
const SIDES = { left: "#ff8c00", right: "#00dc78" };
// The people task's skeleton: pairs of landmark names (images/draw.py's BONES, the same bones).
const FACE_BONES = "nose-left_eye_inner left_eye_inner-left_eye left_eye-left_eye_outer left_eye_outer-left_ear nose-right_eye_inner right_eye_inner-right_eye right_eye-right_eye_outer right_eye_outer-right_ear mouth_left-mouth_right";
const BODY_BONES = "left_shoulder-right_shoulder left_shoulder-left_elbow left_elbow-left_wrist left_wrist-left_pinky left_wrist-left_index left_wrist-left_thumb left_pinky-left_index right_shoulder-right_elbow right_elbow-right_wrist right_wrist-right_pinky right_wrist-right_index right_wrist-right_thumb right_pinky-right_index left_shoulder-left_hip right_shoulder-right_hip left_hip-right_hip left_hip-left_knee left_knee-left_ankle left_ankle-left_heel left_heel-left_foot_index left_ankle-left_foot_index right_hip-right_knee right_knee-right_ankle right_ankle-right_heel right_heel-right_foot_index right_ankle-right_foot_index";
const BONES = `${FACE_BONES} ${BODY_BONES}`.split(" ").map((pair) => pair.split("-"));
const SEEN = 0.5; // landmarks less visible (or present) than this are not drawn
const PALETTE = ["#ff6b35", "#2ec4b6", "#e71d36", "#8f2d56", "#3a86ff", "#ffbe0b", "#06d6a0"];

/** The answer's parts: [{step, value}] — one for a one-model question, one per answer step of
 * a graph (value null when the step was skipped). */
export function parts(answer) {
  const body = answer.answer || {};
  if (Object.values(body).some(Array.isArray)) return [{ step: answer.question, value: body }];
  return Object.entries(body).map(([step, value]) => ({ step, value }));
}

/** A face a `who` answer named: the person and similarity, or unknown. */
function whoText(face) {
  const sim = face.similarity === null || face.similarity === undefined ? "" : ` · ${fmt.score(face.similarity)}`;
  return `${face.name || "unknown"}${sim}`;
}

function colourOf(label) {
  let n = 0;
  for (const ch of String(label)) n = (n * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[n % PALETTE.length];
}

function sideColour(name) {
  return SIDES[name.split("_")[0]] || PERSON;
}

/** A person's box, the landmarks seen and the bones between two seen landmarks. */
function person(item, i, boxes, points, bones) {
  boxes.push({ box: item.box, colour: PERSON, text: `person ${i + 1} · ${fmt.score(item.score)}`, kind: "person" });
  const seen = new Map((item.pose || [])
    .filter((p) => p.visibility >= SEEN && p.presence >= SEEN)
    .map((p) => [p.name, p]));
  for (const [a, b] of BONES) {
    if (!seen.has(a) || !seen.has(b)) continue;
    const colour = sideColour(a) === sideColour(b) ? sideColour(a) : PERSON;
    bones.push({ from: [seen.get(a).x, seen.get(a).y], to: [seen.get(b).x, seen.get(b).y], colour });
  }
  for (const p of seen.values()) points.push({ x: p.x, y: p.y, colour: sideColour(p.name) });
}

/** A face's attributes in a few words (as images/draw.py's face_words). */
export function faceWords(face) {
  if (!face.gaze) return [`no face mesh (${fmt.score(face.score)})`];
  const shut = ["left", "right"].filter((side) => !face.eyes[side].open);
  const { yaw, pitch, roll } = face.head;
  return [
    `${face.smiling ? "smiling" : "not smiling"} ${fmt.score(face.smile)}${face.mouth_open ? ", mouth open" : ""}`,
    shut.length ? `${shut.join(" and ")} eye shut` : "eyes open",
    `looks ${face.gaze.word}`,
    `yaw ${Math.round(yaw)}° pitch ${Math.round(pitch)}° roll ${Math.round(roll)}°`,
  ];
}

/** The faces of a face-attributes step (one result per face crop), or none. */
function attributesOf(value) {
  return Array.isArray(value.results) ? value.results.map((r) => r && r.attributes).filter(Boolean) : [];
}

/** What to draw on the photo: {boxes: [{box, colour, text, kind}], points: [{x, y, colour}],
 * quads: [{corners, colour, text}] (text lines: four corners, the text's own top-left first),
 * rays: [{from, to, colour, text, dashed}], bones: [{from, to, colour}] (people's skeletons)}. */
export function shapes(answerParts) {
  const boxes = [];
  const points = [];
  const quads = [];
  const rays = [];
  const bones = [];
  for (const { value } of answerParts) {
    if (!value) continue;
    (value.faces || []).forEach((face, i) => {
      boxes.push({ box: face.box, colour: FACE, text: "similarity" in face ? whoText(face) : `face ${i + 1} · ${fmt.score(face.score)}`, kind: "face" });
      (face.landmarks || []).forEach(([x, y], j) => points.push({ x, y, colour: (LANDMARKS[j] || LANDMARKS[0])[1] }));
    });
    for (const item of value.objects || []) {
      boxes.push({ box: item.box, colour: colourOf(item.label), text: `${item.label} · ${fmt.score(item.score)}`, kind: "object" });
    }
    (value.people || []).forEach((item, i) => person(item, i, boxes, points, bones));
    for (const line of value.lines || []) quads.push({ corners: line.box, colour: TEXT, text: line.text });
    for (const face of attributesOf(value)) {
      if (!face.gaze) continue;
      const words = faceWords(face);
      rays.push({ from: face.gaze.origin, to: face.gaze.end, colour: GAZE, kind: "gaze",
        camera: face.gaze.word === "at the camera", text: words.slice(0, 3).join(" · "), under: face.box });
    }
    for (const item of value.attention || []) {
      const target = item.looking_at || {};
      if (!target.box) continue;
      const centre = (b) => [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2];
      rays.push({ from: centre(item.box), to: centre(target.box), colour: GAZE, kind: "attention", dashed: true });
    }
  }
  return { boxes, points, quads, rays, bones };
}

/** Gaze arrows (a ring where the face looks at the camera) with the face's words under its
 * box, and dashed lines from a face to what it looks at. */
function drawRays(ctx, rays, k, line, fontSize) {
  for (const ray of rays) {
    const [x1, y1] = ray.from.map((v) => v * k);
    const [x2, y2] = ray.to.map((v) => v * k);
    ctx.setLineDash(ray.dashed ? [line * 4, line * 3] : []);
    ctx.lineWidth = line;
    ctx.strokeStyle = ray.colour;
    ctx.beginPath();
    ctx.moveTo(x1, y1);
    ctx.lineTo(x2, y2);
    const angle = Math.atan2(y2 - y1, x2 - x1);
    const head = 4 * line + 4;
    if (!ray.dashed) {
      for (const turn of [Math.PI / 6, -Math.PI / 6]) {
        ctx.moveTo(x2, y2);
        ctx.lineTo(x2 - head * Math.cos(angle + turn), y2 - head * Math.sin(angle + turn));
      }
    }
    ctx.stroke();
    ctx.setLineDash([]);
    if (ray.camera) {
      ctx.beginPath();
      ctx.arc(x1, y1, head, 0, 2 * Math.PI);
      ctx.stroke();
    }
    if (ray.text && ray.under) {
      const [bx, , , by] = ray.under.map((v) => v * k);
      const width = ctx.measureText(ray.text).width + 8;
      ctx.fillStyle = "rgba(0, 0, 0, 0.75)";
      ctx.fillRect(bx, by + 4, width, fontSize + 6);
      ctx.fillStyle = ray.colour;
      ctx.fillText(ray.text, bx + 4, by + 7);
    }
  }
}

/** Draw `bitmap` and the shapes on `canvas` (at most 1600 px a side). */
export function draw(canvas, bitmap, found, imageWidth) {
  const scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  // answers are in the pixels the server decoded; map them onto this canvas
  const k = canvas.width / (imageWidth || bitmap.width);
  const line = Math.max(2, Math.round(canvas.width / 320));
  const fontSize = Math.max(12, Math.round(canvas.width / 45));
  ctx.font = `600 ${fontSize}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  for (const { box, colour, text } of found.boxes) {
    const [x1, y1, x2, y2] = box.map((v) => v * k);
    ctx.lineWidth = line + 2;
    ctx.strokeStyle = "#000";
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.lineWidth = line;
    ctx.strokeStyle = colour;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const width = ctx.measureText(text).width + 8;
    const top = y1 - fontSize - 6 >= 0 ? y1 - fontSize - 6 : y2;
    ctx.fillStyle = colour;
    ctx.fillRect(x1 - line / 2, top, width, fontSize + 6);
    ctx.fillStyle = "#000";
    ctx.fillText(text, x1 + 4 - line / 2, top + 3);
  }
  for (const { from, to, colour } of found.bones || []) {
    for (const [width, stroke] of [[line + 2, "#000"], [line, colour]]) {
      ctx.beginPath();
      ctx.moveTo(from[0] * k, from[1] * k);
      ctx.lineTo(to[0] * k, to[1] * k);
      ctx.lineWidth = width;
      ctx.strokeStyle = stroke;
      ctx.stroke();
    }
  }
  for (const quad of found.quads || []) drawQuad(ctx, quad, k, line);
  const r = Math.max(3, line * 1.5);
  for (const { x, y, colour } of found.points) {
    ctx.beginPath();
    ctx.arc(x * k, y * k, r, 0, 2 * Math.PI);
    ctx.fillStyle = colour;
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "#000";
    ctx.stroke();
  }
  drawRays(ctx, found.rays || [], k, line, fontSize);
  return k;
}

/** A text line: its quadrilateral veiled in white, what was read written inside it along the
 * line's own slope, as large as fits (dense pages stay legible; a misreading sits on its words). */
function drawQuad(ctx, { corners, colour, text }, k, line) {
  const pts = corners.map(([x, y]) => [x * k, y * k]);
  ctx.beginPath();
  pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  ctx.closePath();
  ctx.fillStyle = "rgba(255, 255, 255, 0.75)";
  ctx.fill();
  ctx.lineWidth = Math.max(1, line / 2);
  ctx.strokeStyle = colour;
  ctx.stroke();
  const [[x0, y0], [x1, y1], , [x3, y3]] = pts;
  const length = Math.hypot(x1 - x0, y1 - y0);
  const height = Math.hypot(x3 - x0, y3 - y0);
  let size = Math.max(6, height * 0.6);
  ctx.font = `600 ${size}px system-ui, sans-serif`;
  const drawn = ctx.measureText(text).width;
  if (drawn > length * 0.95) size = Math.max(6, size * length * 0.95 / drawn);
  ctx.save();
  ctx.translate(pts.reduce((s, [x]) => s + x, 0) / 4, pts.reduce((s, [, y]) => s + y, 0) / 4);
  ctx.rotate(Math.atan2(y1 - y0, x1 - x0));
  ctx.font = `600 ${size}px system-ui, sans-serif`;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillStyle = "#78005a";
  ctx.fillText(text, 0, 0);
  ctx.restore();
}

function bars(labels) {
  return h("ul", { class: "bars" }, labels.map((item) =>
    h("li", {},
      h("span", { text: item.label }),
      h("span", { class: "bar", role: "presentation" }, barFill(item.score)),
      h("span", { class: "score", text: fmt.pct(item.score) }))));
}

function barFill(score) {
  const span = h("span");
  span.style.width = `${Math.max(0, Math.min(1, score)) * 100}%`;
  return span;
}

function crop(png, alt) {
  return h("img", { src: `data:image/png;base64,${png}`, alt, width: 112, height: 112 });
}

/** One part of the answer, as HTML beside the drawing. */
function describePart({ step, value }, single) {
  const title = single ? null : h("h3", { text: step });
  if (value === null || value === undefined) {
    return h("div", { class: "part" }, title, h("p", { class: "muted", text: "skipped (see the steps)" }));
  }
  const out = [];
  if (value.labels) out.push(bars(value.labels));
  if (value.faces && value.gallery !== undefined) {
    // who: each face named from the gallery (or unknown), at the gallery's threshold
    out.push(h("p", { text: `gallery ${value.gallery} · named at similarity ≥ ${value.threshold}` }),
      value.faces.length
        ? h("ol", { class: "who" }, value.faces.map((f) => h("li", { text: whoText(f) })))
        : h("p", { text: "no face" }));
  } else if (value.faces) {
    out.push(h("p", { text: value.faces.length ? `${value.faces.length} face${value.faces.length > 1 ? "s" : ""}: ${value.faces.map((f, i) => `face ${i + 1} ${fmt.score(f.score)}`).join(", ")} (box and five landmarks each)` : "no face" }));
    const cropped = value.faces.filter((f) => f.crop_png);
    if (cropped.length) out.push(h("div", { class: "crops" }, cropped.map((f, i) => crop(f.crop_png, `aligned face ${i + 1}`))));
  }
  if (value.objects) {
    out.push(value.objects.length
      ? h("ul", {}, value.objects.map((o) => h("li", { text: `${o.label} ${fmt.score(o.score)}` })))
      : h("p", { text: "no object" }));
  }
  if (value.people) {
    out.push(h("p", { text: value.people.length
      ? `${value.people.length} ${value.people.length > 1 ? "people" : "person"}: ${value.people.map((p, i) => `person ${i + 1} ${fmt.score(p.score)}, ${(p.pose || []).filter((m) => m.visibility >= SEEN && m.presence >= SEEN).length} of ${(p.pose || []).length} landmarks seen`).join("; ")}`
      : "no people" }));
  }
  if (Array.isArray(value.crops)) {
    out.push(value.crops.some((c) => c.png)
      ? h("div", { class: "crops" }, value.crops.filter((c) => c.png).map((c) => crop(c.png, `aligned face ${c.from + 1}`)))
      : h("p", { class: "muted", text: `${value.count ?? value.crops.length} aligned crop(s); ask with crops on to see them` }));
  }
  if (Array.isArray(value.lines)) {
    out.push(value.lines.length
      ? h("ol", { class: "text-lines" }, value.lines.map((l) => h("li", { text: `${l.text} (${fmt.score(l.score)})` })))
      : h("p", { text: "no text" }));
  }
  const faces = attributesOf(value);
  if (faces.length) {
    out.push(h("ul", { class: "attributes" }, faces.map((face, i) =>
      h("li", { text: `face ${i + 1}: ${faceWords(face).join(" · ")}` }))));
  }
  if (Array.isArray(value.attention)) {
    const what = (t) => (t.index === undefined ? t.kind : `${t.label || t.kind} ${t.index + 1} (${t.step})`);
    out.push(h("ul", { class: "attention" }, value.attention.map((item) =>
      h("li", { text: `face ${item.face + 1} looks ${item.gaze || "(unknown)"}: at ${what(item.looking_at)}` }))));
  }
  if (Array.isArray(value.embedding)) out.push(h("p", { text: `a vector of ${value.embedding.length} numbers` }));
  if (!out.length) out.push(h("pre", { text: JSON.stringify(value, shorten, 2) }));
  return h("div", { class: "part" }, title, out);
}

function shorten(key, value) {
  if (typeof value === "string" && value.length > 120 && /png$/.test(key)) {
    return `<${value.length} characters of base64 PNG>`;
  }
  return value;
}

export function timeline(answer) {
  const steps = Object.entries(answer.steps || {});
  const total = Math.max(answer.timings_ms?.total || 0, ...steps.map(([, s]) => s.end_ms || 0), 0.001);
  return h("ol", { class: "timeline" }, steps.map(([name, s]) => {
    const span = h("span", { class: "span" });
    if (!s.skipped) {
      const start = s.start_ms ?? 0;
      const end = s.end_ms ?? start + s.ms;
      span.style.left = `${(100 * start) / total}%`;
      span.style.width = `${(100 * (end - start)) / total}%`;
    }
    const words = s.skipped
      ? `skipped: ${s.skipped}`
      : `${fmt.ms(s.ms)}${s.cached ? " · cached" : ""}`;
    return h("li", { class: s.skipped ? "skipped" : s.cached ? "cached" : "" },
      h("span", { text: name }),
      h("span", { class: "track", role: "presentation" }, span),
      h("span", { text: words }));
  }));
}

/** The whole answer into `container`; `blob` is the photo asked about. Returns the canvas. */
export async function renderAnswer(container, answer, blob) {
  const found = parts(answer);
  const drawn = shapes(found);
  const canvas = h("canvas", { class: "answer", role: "img" });
  const faces = drawn.boxes.filter((b) => b.kind === "face").length;
  const people = drawn.boxes.filter((b) => b.kind === "person").length;
  const objects = drawn.boxes.length - faces - people;
  const caption = [`${answer.image.width}×${answer.image.height}`];
  if (faces) caption.push(`${faces} face box${faces > 1 ? "es" : ""} with landmarks`);
  if (people) caption.push(`${people} ${people > 1 ? "people" : "person"} with a skeleton`);
  if (objects) caption.push(`${objects} object box${objects > 1 ? "es" : ""}`);
  const lines = drawn.quads.length;
  if (lines) caption.push(`${lines} line${lines > 1 ? "s" : ""} of text with what each says`);
  const gazes = drawn.rays.filter((r) => r.kind === "gaze").length;
  if (gazes) caption.push(`${gazes} gaze${gazes > 1 ? "s" : ""}`);
  canvas.setAttribute("aria-label", `The photo with the answer drawn: ${caption.slice(1).join(", ") || "nothing to draw"}`);
  Object.assign(canvas.dataset, { faces, objects, people, lines, gazes, bones: drawn.bones.length, points: drawn.points.length });
  const copyJson = h("button", { type: "button", class: "small", text: "Copy JSON",
    onclick: async () => say((await copyText(JSON.stringify(answer, null, 2))) ? "JSON copied" : "could not copy") });
  fill(container,
    h("h2", { text: `${answer.question}` }),
    h("figure", {}, canvas, h("figcaption", { text: caption.join(" · ") })),
    found.map((part) => describePart(part, found.length === 1)),
    h("h3", { text: "Steps" }),
    timeline(answer),
    h("p", { class: "hint", text: `total ${fmt.ms(answer.timings_ms.total)} (decode ${fmt.ms(answer.timings_ms.decode)}, models ${fmt.ms(answer.timings_ms.infer)})${answer.cached ? " · every step from the cache" : ""}` }),
    h("h3", { text: "Model versions" }),
    h("ul", { class: "plain models-used" }, answer.models.map((m) =>
      h("li", {}, h("strong", { text: `${m.name} v${m.version}` }), " ", h("code", { text: fmt.digest(m.digest) })))),
    h("details", { class: "raw" }, h("summary", { text: "Raw JSON" }), copyJson,
      h("pre", { text: JSON.stringify(answer, shorten, 2) })));
  try {
    const bitmap = await createImageBitmap(blob);
    draw(canvas, bitmap, drawn, answer.image.width);
    bitmap.close();
    canvas.dataset.drawn = "true";
  } catch {
    canvas.hidden = true; // the browser cannot show this format; the answer still reads above
  }
  return canvas;
}
