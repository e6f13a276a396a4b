// seethrough's page: plain JavaScript over the JSON API (see /docs). No build step.
// Every number drawn here comes from the server, computed from the user's own model.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "style") Object.assign(e.style, v);  // CSSOM: a strict CSP forbids style attributes
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
};

const state = {
  models: [], model: null, compare: null, image: null, label: null, testsOffset: 0,
  layers: [], layer: null, maps: null, channel: null, inputPng: null, methods: [], target: null,
  token: 0,  // bumped by every new image, model or layer: answers to older requests are dropped
};
const TESTS_PAGE = 24;

// ---------------------------------------------------------------- talking to the API
async function api(path, options = {}) {
  const r = await fetch(path, options);
  const json = (r.headers.get("content-type") || "").includes("json") ? await r.json() : null;
  if (!r.ok) throw new Error((json && json.message) || `${r.status} ${r.statusText}`);
  return json;
}

function imageForm(extra = {}) {
  const f = new FormData();
  f.append("image", state.image, "image");
  for (const [k, v] of Object.entries(extra)) f.append(k, String(v));
  return f;
}

const post = (path, extra) => api(path, { method: "POST", body: imageForm(extra) });
const modelUrl = (id, rest = "") => `/api/models/${encodeURIComponent(id)}${rest}`;

function showError(err) {
  const box = $("#error");
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

async function guarded(fn) {
  try { showError(null); await fn(); } catch (err) { showError(err); }
}

// ---------------------------------------------------------------- colours
function ramp(stops, t) {  // piecewise-linear colour ramp, t in 0..1
  t = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(t)), f = t - i;
  return stops[i].map((a, j) => Math.round(a + (stops[i + 1][j] - a) * f));
}
const HEAT = [[0, 0, 4], [120, 28, 109], [237, 105, 37], [252, 255, 164]];
const DIVERGING = [[33, 102, 172], [247, 247, 247], [178, 24, 43]];
const gray = (t) => { const v = Math.round(255 * Math.min(1, Math.max(0, t))); return [v, v, v]; };

function extent(a) {
  let lo = Infinity, hi = -Infinity;
  for (const row of a) for (const v of row) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return [lo, hi];
}

// Draw a 2-D array on a canvas, one canvas pixel per value; `signed` centres the colours on 0.
function drawArray(canvas, a, { signed = false, colours = null } = {}) {
  const h = a.length, w = a[0].length;
  canvas.width = w; canvas.height = h;
  const [lo, hi] = extent(a), top = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  const img = canvas.getContext("2d").createImageData(w, h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const v = a[y][x];
    const c = signed ? ramp(DIVERGING, 0.5 + v / (2 * top))
      : (colours || gray)(hi > lo ? (v - lo) / (hi - lo) : 0);
    img.data.set([c[0], c[1], c[2], 255], 4 * (y * w + x));
  }
  canvas.getContext("2d").putImageData(img, 0, 0);
}

const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(3) : v.toFixed(4));

// ---------------------------------------------------------------- models
async function loadModels(select = null) {
  state.models = await api("/api/models");
  $("#model-select").replaceChildren(...state.models.map((m) => el("option", { value: m.id }, `${m.id} (${m.model})`)));
  const none = state.models.length === 0;
  $("#explorer").hidden = none;
  $("#model-select").disabled = none;
  $("#model-zip").hidden = none;
  if (none) { $("#model-info").textContent = "no models yet: train one below"; return; }
  const id = select || (state.model && state.models.some((m) => m.id === state.model.id) ? state.model.id : state.models[0].id);
  await selectModel(id);
}

function fillCompare() {  // every model but the one shown; "(none)" by default
  const sel = $("#compare-select"), keep = sel.value;
  sel.replaceChildren(el("option", { value: "" }, "(none)"), ...state.models.filter((m) => m.id !== state.model.id)
    .map((m) => el("option", { value: m.id }, `${m.id} (${m.model})`)));
  sel.value = [...sel.options].some((o) => o.value === keep) ? keep : "";
}

async function selectModel(id) {
  $("#model-select").value = id;
  state.token++;
  state.model = await api(modelUrl(id));
  state.layers = state.model.layers;
  state.layer = null; state.channel = null; state.target = null;
  fillCompare();
  $("#maps-box").hidden = true; $("#detail-box").hidden = true;
  $("#model-zip").href = modelUrl(id, "/zip");
  const [h, w, c] = state.model.input_shape;
  $("#model-info").textContent = `${state.model.model}, ${h}x${w}x${c} input, ` +
    `${state.model.params.toLocaleString()} parameters, trained on ${shortData(state.model.dataset)}`;
  $("#draw-box").hidden = c !== 1;
  state.methods = (await api(modelUrl(id, "/explain"))).methods;
  const picker = $("#method-select");
  picker.replaceChildren(...state.methods.map((m) => el("option", { value: m.name }, m.name)));
  picker.value = defaultMethod(state.methods);
  state.testsOffset = 0;
  await loadTests();
  if (state.image) await analyze();
}

const shortData = (name) => (name || "?").replace(/^folder:.*\/([^/]+\/[^/]+)$/, "folder .../$1");

function defaultMethod(methods) {
  const names = methods.map((m) => m.name);
  return ["gradcam", "weight_x_input", "saliency"].find((n) => names.includes(n)) || names[0];
}

// ---------------------------------------------------------------- choosing an image
async function loadTests() {
  const box = $("#tests");
  try {
    const page = await api(modelUrl(state.model.id, `/test-images?offset=${state.testsOffset}&limit=${TESTS_PAGE}`));
    $("#tests-box").hidden = false;
    $("#tests-name").textContent = shortData(page.dataset);
    $("#tests-range").textContent = `${page.offset}-${page.offset + page.items.length - 1} of ${page.n}`;
    box.replaceChildren(...page.items.map((it) => el("img", {
      src: modelUrl(state.model.id, `/test-images/${it.index}`), title: `#${it.index}: ${it.class}`,
      "data-index": it.index, onclick: (ev) => guarded(() => pickTest(it, ev.target)),
    })));
  } catch (err) {  // a run whose data set is not on this machine: uploads and drawings still work
    $("#tests-box").hidden = true;
  }
}

async function pickTest(item, img) {
  document.querySelectorAll(".thumbs img.chosen").forEach((e) => e.classList.remove("chosen"));
  img.classList.add("chosen");
  const blob = await (await fetch(modelUrl(state.model.id, `/test-images/${item.index}`))).blob();
  await setImage(blob, `test image #${item.index}, labelled ${item.class}`);
}

async function setImage(blob, label) {
  state.image = blob; state.label = label; state.target = null;
  for (const id of ["#prediction-panel", "#network-panel", "#explain-panel", "#compare-panel"]) $(id).hidden = true;
  await analyze();  // on an error the panels stay hidden: nothing on screen belongs to another image
}

function setupInputs() {
  $("#file-input").addEventListener("change", (ev) => {
    const f = ev.target.files[0];
    if (f) guarded(() => setImage(f, f.name));
  });
  const drop = $("#drop");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault(); drop.classList.remove("over");
    const f = ev.dataTransfer.files[0];
    if (f) guarded(() => setImage(f, f.name));
  });
  $("#tests-prev").onclick = () => guarded(() => { state.testsOffset = Math.max(0, state.testsOffset - TESTS_PAGE); return loadTests(); });
  $("#tests-next").onclick = () => guarded(() => { state.testsOffset += TESTS_PAGE; return loadTests(); });
  setupDrawing();
}

function drawingPad(c, lineWidth) {  // white strokes on black, by mouse, pen or finger; returns "clear"
  const ctx = c.getContext("2d");
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, c.width, c.height); };
  clear();
  let down = false;
  const at = (ev) => { const r = c.getBoundingClientRect(); return [(ev.clientX - r.left) * c.width / r.width, (ev.clientY - r.top) * c.height / r.height]; };
  c.addEventListener("pointerdown", (ev) => { down = true; c.setPointerCapture(ev.pointerId); ctx.beginPath(); ctx.moveTo(...at(ev)); });
  c.addEventListener("pointermove", (ev) => {
    if (!down) return;
    ctx.strokeStyle = "#fff"; ctx.lineWidth = lineWidth; ctx.lineCap = ctx.lineJoin = "round";
    ctx.lineTo(...at(ev)); ctx.stroke();
  });
  c.addEventListener("pointerup", () => { down = false; });
  return clear;
}

function setupDrawing() {
  const c = $("#draw");
  $("#draw-clear").onclick = drawingPad(c, 18);
  $("#draw-use").onclick = () => c.toBlob((blob) => guarded(() => setImage(blob, "your drawing")), "image/png");
}

// ---------------------------------------------------------------- prediction
async function analyze() {
  const p = await post(modelUrl(state.model.id, "/predict"), { top_k: 3 });
  state.inputPng = p.input_png;
  $("#prediction-panel").hidden = false;
  $("#model-input").src = p.input_png;
  $("#prediction").textContent = p.prediction;
  $("#truth").textContent = state.label ? `(${state.label})` : "";
  const u = p.unfamiliar;
  $("#unfamiliar").hidden = !(u && u.marked);
  $("#unfamiliar").textContent = u && u.marked ? `Unfamiliar: this image is unlike the training images (energy ` +
    `${u.energy.toFixed(2)} above ${u.threshold.toFixed(2)}, a threshold that marks ` +
    `${Math.round(100 * u.false_alarm_rate)} % of validation images); treat the prediction with care.` : "";
  const pickClass = (i) => guarded(() => { state.target = i; renderBars($("#bars"), p, false, pickClass); return explain(); });
  renderBars($("#bars"), p, false, pickClass);
  renderLayers();
  $("#network-panel").hidden = false;
  if (state.layer) await loadMaps(state.layer);
  await explain();
  await renderCompare();
}

function renderBars(box, p, only = false, onPick = null) {
  const top = new Set(p.top_k);
  const rows = only ? p.top_k.map((i) => [i, p.probabilities[i]]) : p.probabilities.map((q, i) => [i, q]);
  box.replaceChildren();
  for (const [i, q] of rows) {
    const cls = top.has(i) ? "top" : "";
    const pick = onPick ? { onclick: () => onPick(i), title: "explain this class" } : {};
    const chosen = onPick && state.target === i ? " chosen" : "";
    const pickable = onPick ? " pickable" : "";
    box.append(el("span", { class: `label ${cls}${pickable}${chosen}`, "data-class": i, ...pick }, q.class),
      el("div", { class: `bar-cell${pickable}${chosen}`, "data-class": i, ...pick },
        el("div", { class: `bar ${cls}`, style: { width: `${(100 * q.probability).toFixed(1)}%` } })),
      el("span", { class: `muted${pickable}${chosen}`, "data-class": i, ...pick }, `${(100 * q.probability).toFixed(1)}%`));
  }
}

// ---------------------------------------------------------------- layers, maps, kernels, arithmetic
function renderLayers() {
  const [h, w, c] = state.model.input_shape;
  const input = el("div", { class: "layer input" }, el("div", {}, el("b", {}, "input")),
    el("div", { class: "shape" }, `${c}x${h}x${w}`));
  $("#layers").replaceChildren(input, ...state.layers.map((l) => el("div", {
    class: `layer ${l.kind}${l.name === state.layer ? " chosen" : ""}`, "data-layer": l.name, title: l.layer,
    onclick: () => guarded(() => loadMaps(l.name)),
  }, el("div", {}, el("b", {}, l.name)), el("div", { class: "kind" }, l.layer),
  el("div", { class: "shape" }, l.output_shape.join("x")),
  el("div", { class: "params" }, `${l.params.toLocaleString()} params`))));
}

async function loadMaps(layer) {
  const changed = state.layer !== layer;
  state.layer = layer;
  if (changed) state.channel = null;  // a channel of another layer means nothing here
  const token = ++state.token;
  document.querySelectorAll(".layer").forEach((e) => e.classList.toggle("chosen", e.dataset.layer === layer));
  $("#detail-box").hidden = true;
  $("#kernel").replaceChildren(); $("#arith").replaceChildren();
  const r = await post(modelUrl(state.model.id, `/layers/${encodeURIComponent(layer)}/feature-maps`));
  if (token !== state.token) return;  // another layer or image was chosen meanwhile
  state.maps = r;
  $("#maps-box").hidden = false;
  const box = $("#maps");
  if (r.values) { renderValues(box, layer, r); return; }
  $("#maps-title").textContent = `${layer}: ${r.shape[0]} feature maps of ${r.shape[1]}x${r.shape[2]} ` +
    `(each scaled to its own range; click one)`;
  box.replaceChildren(...r.maps.map((m, ch) => {
    const canvas = el("canvas");
    drawArray(canvas, m);
    return el("div", { class: "map", "data-channel": ch, onclick: () => guarded(() => showDetail(ch)) }, canvas, `#${ch}`);
  }));
  if (state.channel !== null && state.channel < r.maps.length) await showDetail(state.channel);
}

// A flat layer (flatten, linear ...): its numbers. The last layer's are the logits, one per class.
function renderValues(box, layer, r) {
  const last = state.layers[state.layers.length - 1].name === layer;
  const v = r.values, names = state.model.class_names;
  if (last && v.length === names.length) {
    $("#maps-title").textContent = `${layer}: the logits, one per class (softmax turns them into the probabilities above)`;
    box.replaceChildren(valueBars(v, names, v.indexOf(Math.max(...v))));
    return;
  }
  const cols = Math.min(v.length, 32), rows = Math.ceil(v.length / cols);
  $("#maps-title").textContent = `${layer}: ${v.length} values, min ${fmt(r.min)}, max ${fmt(r.max)}` +
    (v.length > cols ? ` (drawn ${cols} to a row; hover for a value)` : "");
  const grid = [];
  for (let y = 0; y < rows; y++) grid.push(Array.from({ length: cols }, (_, x) => (y * cols + x < v.length ? v[y * cols + x] : 0)));
  const canvas = el("canvas", { class: "values-grid" });
  drawArray(canvas, grid, { signed: r.min < 0 });
  canvas.style.width = `${Math.min(12 * cols, 384)}px`;
  canvas.style.height = `${Math.min(12 * cols, 384) * rows / cols}px`;
  canvas.onmousemove = (ev) => {
    const b = canvas.getBoundingClientRect();
    const i = Math.floor((ev.clientY - b.top) / b.height * rows) * cols + Math.floor((ev.clientX - b.left) / b.width * cols);
    canvas.title = i < v.length ? `value ${i}: ${fmt(v[i])}` : "";
  };
  const order = [...v.keys()].sort((i, j) => v[j] - v[i]).slice(0, Math.min(10, v.length));
  const shown = v.length <= 64 ? [...v.keys()] : order;
  box.replaceChildren(el("div", { class: "map flat" }, canvas),
    el("div", {}, el("p", { class: "muted" }, v.length <= 64 ? "every value:" : "the largest values:"),
      valueBars(shown.map((i) => v[i]), shown.map((i) => `#${i}`), -1)));
}

function valueBars(values, names, best) {  // signed bars around a zero line
  const top = Math.max(...values.map(Math.abs)) || 1;
  const box = el("div", { class: "values" });
  values.forEach((x, i) => {
    const neg = x < 0, width = `${(50 * Math.abs(x) / top).toFixed(1)}%`;
    box.append(el("span", { class: `label${i === best ? " top" : ""}` }, names[i]),
      el("div", { class: "value-cell" }, el("div", { class: `value-bar${neg ? " neg" : ""}`,
        style: neg ? { width, right: "50%" } : { width, left: "50%" } })),
      el("span", { class: "num" }, fmt(x)));
  });
  return box;
}

async function showDetail(ch) {
  state.channel = ch;
  const token = state.token;
  document.querySelectorAll(".map").forEach((e) => e.classList.toggle("chosen", Number(e.dataset.channel) === ch));
  const layer = state.layers.find((l) => l.name === state.layer);
  const m = state.maps.maps[ch];
  const [lo, hi] = extent(m);
  $("#detail-box").hidden = false;
  $("#detail-title").textContent = `${state.layer} #${ch}: ${m.length}x${m[0].length}, values ${fmt(lo)} .. ${fmt(hi)}`;
  const canvas = $("#detail-map");
  drawArray(canvas, m);
  $("#marker").hidden = true;
  $("#arith-box").hidden = true;
  $("#kernel").replaceChildren();
  if (layer.kind !== "conv") {
    $("#kernel-box").hidden = true;
    $("#detail-hint").textContent = `a ${layer.kind} layer has no kernel of its own`;
    canvas.onclick = null;
    return;
  }
  $("#detail-hint").textContent = "click a position to see the arithmetic behind its value";
  const k = await api(modelUrl(state.model.id, `/layers/${encodeURIComponent(state.layer)}/kernels/${ch}`));
  if (token !== state.token || state.channel !== ch) return;
  $("#kernel-box").hidden = false;
  $("#kernel").replaceChildren(el("p", { class: "muted" },
    `${k.in_channels} input channel(s), ${k.k}x${k.k}, stride ${k.stride}, pad ${k.pad}, bias ${fmt(k.bias)}`),
  el("div", { class: "maps" }, ...k.weights.slice(0, 32).map((w, c) => {
    const kc = el("canvas", { title: `input channel ${c}` });
    drawArray(kc, w, { signed: true });
    return el("div", { class: "map" }, kc, `in ${c}`);
  })));
  canvas.onclick = (ev) => {
    const r = canvas.getBoundingClientRect();
    const x = Math.floor((ev.clientX - r.left) / r.width * m[0].length), y = Math.floor((ev.clientY - r.top) / r.height * m.length);
    markPosition(y, x, m.length, m[0].length);
    guarded(() => showArithmetic(ch, y, x));
  };
}

function markPosition(y, x, h, w) {  // a box over the clicked cell of the detail map
  const mark = $("#marker");
  Object.assign(mark.style, { top: `${100 * y / h}%`, left: `${100 * x / w}%`, width: `${100 / w}%`, height: `${100 / h}%` });
  mark.hidden = false;
}

function numTable(a, rows = null, cols = null, h = 0, w = 0) {  // padding cells greyed
  return el("table", { class: "nums" }, ...a.map((row, i) => el("tr", {}, ...row.map((v, j) => {
    const pad = rows && (rows[0] + i < 0 || rows[0] + i >= h || cols[0] + j < 0 || cols[0] + j >= w);
    return el("td", pad ? { class: "pad", title: "zero padding" } : {}, fmt(v));
  }))));
}

async function showArithmetic(ch, y, x) {
  const token = state.token;
  const a = await post(modelUrl(state.model.id, `/layers/${encodeURIComponent(state.layer)}/arithmetic`), { channel: ch, y, x });
  if (token !== state.token || state.channel !== ch) return;
  const idx = state.layers.findIndex((l) => l.name === state.layer);
  const inShape = idx > 0 ? state.layers[idx - 1].output_shape : [0, state.model.input_shape[0], state.model.input_shape[1]];
  const shown = Math.min(3, a.window.length);
  const rows = [];
  for (let c = 0; c < shown; c++) {
    const part = a.products[c].flat().reduce((s, v) => s + v, 0);
    rows.push(el("div", { class: "arith-row" }, el("span", { class: "muted" }, `in ${c}:`),
      numTable(a.window[c], a.rows, a.cols, inShape[1], inShape[2]), el("span", { class: "op" }, "\u00d7"),
      numTable(a.kernel[c]), el("span", { class: "op" }, "="), numTable(a.products[c]),
      el("span", { class: "op" }, `\u03a3 ${fmt(part)}`)));
  }
  if (a.window.length > shown) rows.push(el("p", { class: "muted" },
    `... and ${a.window.length - shown} more input channels, all in the sum`));
  $("#arith").replaceChildren(
    el("p", { class: "muted" }, `output (${y}, ${x}) reads input rows ${a.rows[0]}..${a.rows[1]}, ` +
      `columns ${a.cols[0]}..${a.cols[1]} (grey: zero padding)`),
    ...rows,
    el("div", { class: "arith-total", id: "arith-total" },
      `sum of products ${fmt(a.sum)} + bias ${fmt(a.bias)} = ${fmt(a.value)}   ` +
      `(PyTorch's feature map: ${fmt(a.torch_value)})`));
  $("#arith-box").hidden = false;
}

// ---------------------------------------------------------------- explanations
async function drawOverlay(canvas, png, r) {
  const base = new Image();
  base.src = png;
  await base.decode();
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(base, 0, 0, canvas.width, canvas.height);
  const heat = document.createElement("canvas");
  drawArray(heat, r.map, { signed: r.signed, colours: (t) => ramp(HEAT, t) });
  ctx.globalAlpha = 0.6;
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(heat, 0, 0, canvas.width, canvas.height);
  ctx.globalAlpha = 1;
}

async function explain() {
  const method = $("#method-select").value;
  if (!method) return;
  const info = state.methods.find((m) => m.name === method);
  $("#method-paper").textContent = info ? info.paper : "";
  const extra = state.target === null ? { method } : { method, target: state.target };
  const r = await post(modelUrl(state.model.id, "/explain"), extra);
  $("#explain-panel").hidden = false;
  await drawOverlay($("#explain-canvas"), state.inputPng, r);
  $("#explain-caption").textContent = `${r.method} for class ${r.class}` + (r.signed ? " (red: for, blue: against)" : "")
    + (r.constant ? ": the map is constant, so it shows nothing" : "");
  renderScores($("#faithfulness"), r.faithfulness);
}

function renderScores(box, f) {
  if (!f) { box.replaceChildren(); return; }
  const row = (name, a, b, better) => el("tr", {}, el("td", {}, name), el("td", {}, a.toFixed(3)),
    el("td", {}, b.toFixed(3)), el("td", { class: "muted" }, better));
  box.replaceChildren(el("table", { class: "scores" },
    el("tr", {}, el("th", {}, `faithfulness (removal: ${f.removal})`), el("th", {}, "this map"), el("th", {}, "random order"), el("th", {}, "")),
    row("deletion area", f.deletion_auc, f.random_deletion_auc, "lower is better"),
    row("insertion area", f.insertion_auc, f.random_insertion_auc, "higher is better")),
  el("p", { class: "muted" }, "randomization check (layers re-initialised top down): rank correlation of |map| " +
    "with every layer random " + (f.randomization_corr === null ? "n/a (constant map)" : f.randomization_corr.toFixed(3)) +
    `: ${f.verdict} (passes below ${f.threshold})`),
  curves(f));
}

function curves(f) {  // deletion and insertion: target probability as pixels go or come
  const W = 260, H = 110, ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H);
  const line = (ys, colour, label, dy) => {
    const pts = ys.map((v, i) => `${10 + f.fractions[i] * (W - 20)},${H - 15 - v * (H - 25)}`).join(" ");
    const p = document.createElementNS(ns, "polyline");
    p.setAttribute("points", pts); p.setAttribute("fill", "none"); p.setAttribute("stroke", colour);
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", W - 80); t.setAttribute("y", dy); t.setAttribute("fill", colour); t.setAttribute("font-size", "11");
    t.textContent = label;
    svg.append(p, t);
  };
  line(f.deletion, "#b2182b", "deletion", 12);
  line(f.insertion, "#2166ac", "insertion", 26);
  return svg;
}

// ---------------------------------------------------------------- comparing two runs
async function renderCompare() {
  const other = $("#compare-select").value;
  $("#compare-panel").hidden = !other;
  if (!other) return;
  const sides = [];
  for (const id of [state.model.id, other]) {
    const methods = (await api(modelUrl(id, "/explain"))).methods;
    const chosen = $("#method-select").value;  // the method chosen above, where this model has it
    const method = methods.some((m) => m.name === chosen) ? chosen : defaultMethod(methods);
    const p = await post(modelUrl(id, "/predict"), { top_k: 3 });
    const r = await post(modelUrl(id, "/explain"), { method, faithfulness: false });
    const canvas = el("canvas", { width: 160, height: 160 });
    await drawOverlay(canvas, p.input_png, r);
    const bars = el("div", { class: "bars" });
    renderBars(bars, p, true);
    sides.push(el("div", { class: "side", "data-model": id }, el("h3", {}, id),
      el("p", {}, "prediction: ", el("strong", { class: "compare-prediction" }, p.prediction)),
      bars, el("figure", {}, canvas, el("figcaption", { class: "compare-caption" }, `${method} for ${r.class}` +
        (method !== chosen ? ` (${chosen} does not apply to this model)` : "")))));
  }
  $("#compare").replaceChildren(...sides);
}

// ---------------------------------------------------------------- start
$("#model-select").addEventListener("change", (ev) => guarded(() => selectModel(ev.target.value)));
$("#compare-select").addEventListener("change", () => guarded(() => state.image && renderCompare()));
$("#method-select").addEventListener("change", () => guarded(async () => {
  if (state.image) { await explain(); await renderCompare(); }
}));
setupInputs();
const ready = guarded(loadModels);  // train.js waits for the model list
