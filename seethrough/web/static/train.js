// The page's data set and trainings, over /api/workspace and /api/trainings (see /docs).
// Uses app.js's helpers ($, el, api, guarded, loadModels). No build step, no inline code: CSP-safe.
"use strict";

// Trainings this tab started (mine) and those of them whose finish it has not yet shown (awaiting)
// outlive a reload in sessionStorage, so a reloaded page still opens its training's run when it ends.
const kept = (key) => new Set(JSON.parse(sessionStorage.getItem(key) || "[]"));
const keep = (key, set) => sessionStorage.setItem(key, JSON.stringify([...set]));
const train = { workspace: null, jobs: [], seen: new Set(), mine: kept("seethrough.mine"),
  awaiting: kept("seethrough.awaiting"), camera: null };
const BATCH_FILES = 40;  // images per upload request; requests also stay under the byte limit

// ---------------------------------------------------------------- the data set
async function loadWorkspace() {
  train.workspace = await api("/api/workspace");
  renderWorkspace();
}

function renderWorkspace() {
  const ws = train.workspace, lim = ws.limits;
  $("#workspace-info").textContent = `(${ws.folder}: ${(ws.bytes / 1048576).toFixed(1)} of ` +
    `${(lim.workspace_bytes / 1048576).toFixed(0)} MB, up to ${lim.images_per_class} images a class)`;
  $("#demo-offer").hidden = !(state.models.length === 0 && ws.classes.length === 0);
  $("#classes").replaceChildren(...ws.classes.map(classCard));
  const pick = $("#train-model"), names = ws.models.map((m) => m.name).join("|");
  if (pick.dataset.names !== names) {  // new runs to start from: the list again, the choice kept
    const chosen = pick.value || "smallcnn";
    pick.replaceChildren(...ws.models.map((m) => el("option", { value: m.name }, `${m.name} (${m.label})`)));
    pick.value = ws.models.some((m) => m.name === chosen) ? chosen : "smallcnn";
    pick.dataset.names = names;
  }
  if (!$("#train-size").options.length) {
    $("#train-size").replaceChildren(...ws.sizes.map((s) => el("option", { value: s }, `${s}x${s}`)));
    $("#train-size").value = "64";
  }
}

const classUrl = (name, rest = "") => `/api/workspace/classes/${encodeURIComponent(name)}${rest}`;
const SHOWN = 30;  // thumbnails shown per class, the newest

function classCard(c) {
  const input = (attrs, onFiles) => el("label", { class: "button" }, attrs.label,
    el("input", { type: "file", hidden: "", ...attrs.input, onchange: (ev) => {
      const files = [...ev.target.files]; ev.target.value = "";
      guarded(() => onFiles(files));
    } }));
  const rec = el("button", { type: "button", class: "rec", title: "hold to capture camera frames" }, "hold to record");
  holdToRecord(rec, c.name);
  const card = el("div", { class: "class-card", "data-class": c.name },
    el("div", { class: "class-head" }, el("b", {}, c.name), el("span", { class: "muted count" }, `${c.count} images`),
      el("button", { type: "button", class: "remove-class", title: `remove ${c.name} and its images`,
        onclick: () => guarded(() => removeClass(c.name)) }, "remove")),
    el("div", { class: "class-thumbs" }, ...c.images.slice(-SHOWN).reverse().map((id) =>
      el("img", { src: classUrl(c.name, `/images/${id}`), alt: "", title: "click to remove", "data-id": id,
        onclick: () => guarded(() => removeImage(c.name, id)) })),
    c.count > SHOWN ? el("span", { class: "muted" }, `+${c.count - SHOWN} more`) : ""),
    el("div", { class: "class-actions" },
      input({ label: "files", input: { multiple: "", accept: "image/*", class: "add-files" } }, (f) => addFiles(c.name, f)),
      input({ label: "folder", input: { webkitdirectory: "", class: "add-folder" } }, (f) => addFiles(c.name, f)),
      input({ label: "zip", input: { accept: ".zip,application/zip", class: "add-zip" } }, (f) => addFiles(c.name, f)),
      el("button", { type: "button", class: "add-drawing", onclick: () => guarded(() => addDrawing(c.name)) }, "+ drawing"),
      rec));
  card.addEventListener("dragover", (ev) => { ev.preventDefault(); card.classList.add("over"); });
  card.addEventListener("dragleave", () => card.classList.remove("over"));
  card.addEventListener("drop", (ev) => {
    ev.preventDefault(); card.classList.remove("over");
    guarded(() => addFiles(c.name, [...ev.dataTransfer.files]));
  });
  return card;
}

async function addClass(name) {
  await api("/api/workspace/classes", { method: "POST", body: form({ name }) });
  $("#class-name").value = "";
  await loadWorkspace();
}

async function removeClass(name) {
  await api(classUrl(name), { method: "DELETE" });
  await loadWorkspace();
}

async function removeImage(name, id) {
  await api(classUrl(name, `/images/${id}`), { method: "DELETE" });
  await loadWorkspace();
}

function form(fields, files = []) {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.append(k, String(v));
  for (const [k, blob, name] of files) f.append(k, blob, name);
  return f;
}

// Zips go one by one; images in batches below the server's byte limit. Skipped files are reported.
async function addFiles(name, files) {
  const limit = train.workspace.limits.upload_bytes * 0.9;
  const zips = files.filter((f) => /\.zip$/i.test(f.name) || f.type === "application/zip");
  const images = files.filter((f) => !zips.includes(f));
  const skipped = [];
  for (const z of zips) {
    const r = await api(classUrl(name, "/zip"), { method: "POST", body: form({}, [["archive", z, "upload.zip"]]) });
    skipped.push(...r.skipped);
  }
  let batch = [], bytes = 0;
  const flush = async () => {
    if (!batch.length) return;
    const r = await api(classUrl(name, "/images"), { method: "POST", body: form({}, batch.map((b, i) => ["images", b, `image${i}`])) });
    skipped.push(...r.skipped);
    batch = []; bytes = 0;
  };
  for (const f of images) {
    if (batch.length >= BATCH_FILES || (batch.length && bytes + f.size > limit)) await flush();
    batch.push(f); bytes += f.size;
  }
  await flush();
  await loadWorkspace();
  if (skipped.length) showError(`some files were skipped: ${skipped.slice(0, 3).join("; ")}${skipped.length > 3 ? " ..." : ""}`);
}

// ---------------------------------------------------------------- drawing and the camera
function setupDatasetDrawing() {
  train.clearDrawing = drawingPad($("#ds-draw"), 12);
  $("#ds-draw-clear").onclick = train.clearDrawing;
}

async function addDrawing(name) {
  const blob = await new Promise((ok) => $("#ds-draw").toBlob(ok, "image/png"));
  await addFiles(name, [new File([blob], "drawing.png", { type: "image/png" })]);
  train.clearDrawing();
}

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia)
    throw new Error("this browser gives the page no camera (it needs https or localhost)");
  train.camera = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: false });
  const video = $("#cam");
  video.srcObject = train.camera;
  await video.play();
  video.hidden = false; $("#cam-stop").hidden = false; $("#cam-start").hidden = true;
}

function stopCamera() {
  if (train.camera) train.camera.getTracks().forEach((t) => t.stop());
  train.camera = null;
  $("#cam").hidden = true; $("#cam-stop").hidden = true; $("#cam-start").hidden = false;
}

function grabFrame() {  // the centre square of the video, 128x128, as a PNG blob
  const video = $("#cam"), side = Math.min(video.videoWidth, video.videoHeight);
  const c = document.createElement("canvas");
  c.width = c.height = 128;
  c.getContext("2d").drawImage(video, (video.videoWidth - side) / 2, (video.videoHeight - side) / 2, side, side, 0, 0, 128, 128);
  return new Promise((ok) => c.toBlob(ok, "image/png"));
}

// Hold the button: a frame every 150 ms; let go: they are uploaded to the class.
function holdToRecord(button, name) {
  let timer = null, frames = [];
  const start = (ev) => {
    ev.preventDefault();
    if (!train.camera) { showError("start the camera first"); return; }
    frames = [];
    button.classList.add("recording");
    const grab = async () => { frames.push(await grabFrame()); button.textContent = `recording: ${frames.length}`; };
    grab();
    timer = setInterval(grab, 150);
  };
  const stop = () => {
    if (timer === null) return;
    clearInterval(timer); timer = null;
    button.classList.remove("recording");
    button.textContent = "hold to record";
    const files = frames.filter(Boolean).map((b, i) => new File([b], `frame${i}.png`, { type: "image/png" }));
    if (files.length) guarded(() => addFiles(name, files));
  };
  button.addEventListener("pointerdown", start);
  for (const kind of ["pointerup", "pointerleave", "pointercancel"]) button.addEventListener(kind, stop);
}

// ---------------------------------------------------------------- trainings
async function startTraining(fields) {
  const job = await api("/api/trainings", { method: "POST", body: form(fields) });
  train.mine.add(job.id);
  train.awaiting.add(job.id);
  keep("seethrough.mine", train.mine);
  keep("seethrough.awaiting", train.awaiting);
  mergeJobs([job]);
}

function mergeJobs(list) {
  const byId = new Map(train.jobs.map((j) => [j.id, j]));
  for (const j of list) byId.set(j.id, j);
  train.jobs = [...byId.values()].sort((a, b) => a.created - b.created);
  renderJobs();
}

// The event stream sends every training at each change; a reloaded page finds its trainings there.
function listenToTrainings() {
  const source = new EventSource("/api/trainings/events");
  source.addEventListener("trainings", (ev) => {
    const list = JSON.parse(ev.data);
    const finished = list.filter((j) => j.status === "done" && !train.seen.has(j.id));
    train.jobs = list.sort((a, b) => a.created - b.created);
    renderJobs();
    for (const j of list) if (j.status !== "queued" && j.status !== "running") train.seen.add(j.id);
    if (finished.length) {
      const fresh = finished[finished.length - 1];
      const select = train.awaiting.has(fresh.id) && fresh.runs.length ? fresh.runs[fresh.runs.length - 1] : null;
      for (const j of list) if (j.status !== "queued" && j.status !== "running") train.awaiting.delete(j.id);
      keep("seethrough.awaiting", train.awaiting);
      guarded(async () => { await loadModels(select); await loadWorkspace(); });
    }
  });
}

const STATUS = { queued: "waiting", running: "training", done: "done", failed: "failed", cancelled: "cancelled" };

function renderJobs() {
  const box = $("#trainings");
  const shown = train.jobs.filter((j) => j.status === "queued" || j.status === "running" || train.mine.has(j.id) ||
    j.finished > Date.now() / 1000 - 3600).slice(-6).reverse();
  box.replaceChildren(...shown.map(jobCard));
}

function jobCard(j) {
  const req = j.kind === "demo" ? "the demo's digit models" : `${j.request.model}, ${j.request.epochs} epochs, ${j.request.size}x${j.request.size}`;
  const where = j.status === "queued" ? ` (place ${j.position} in line)` : j.phase ? `: ${j.phase}` : "";
  const last = j.history[j.history.length - 1];
  const pct = (x) => (x === undefined ? "-" : `${(100 * x).toFixed(1)}%`);
  const line = last ? `epoch ${j.history.length}/${j.epochs}, loss ${last.train_loss.toFixed(4)}, accuracy ${pct(last.train_acc)}` +
    (last.val_acc !== undefined ? ` (validation ${pct(last.val_acc)})` : "") +
    `, ${Math.round(last.images_per_s).toLocaleString()} images/s` : "";
  const active = j.status === "queued" || j.status === "running";
  const actions = [];
  if (active) actions.push(el("button", { type: "button", class: "cancel", onclick: () => guarded(() => cancelJob(j.id)) }, "cancel"));
  for (const id of j.status === "done" ? j.runs : []) {
    actions.push(el("button", { type: "button", class: "open-run", "data-run": id, onclick: () => guarded(() => openRun(id)) }, `look inside ${id}`),
      el("a", { href: `/api/models/${encodeURIComponent(id)}/zip`, class: "zip", download: "" }, "run folder (zip)"));
  }
  const progress = el("progress", { max: j.epochs || 1, value: j.history.length });
  return el("div", { class: `job ${j.status}`, "data-job": j.id },
    el("div", {}, el("b", {}, `${j.id}: ${req}`), " ", el("span", { class: "job-status" }, `${STATUS[j.status]}${where}`)),
    el("div", { class: "row" }, progress, el("span", { class: "job-line" }, line)),
    j.message ? el("div", { class: j.status === "failed" ? "error-line" : "muted" }, j.message) : "",
    j.history.length ? curvesSvg(j.history) : "",
    el("div", { class: "row" }, ...actions));
}

async function cancelJob(id) {
  mergeJobs([await api(`/api/trainings/${encodeURIComponent(id)}/cancel`, { method: "POST" })]);
}

async function openRun(id) {
  await loadModels(id);
  $("#explorer").scrollIntoView();
}

// Loss (left axis) and accuracy (right, 0..1) per epoch, train solid and validation dashed.
function curvesSvg(history) {
  const W = 320, H = 120, ns = "http://www.w3.org/2000/svg", pad = 24;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("class", "curves");
  const n = history.length, maxLoss = Math.max(...history.flatMap((r) => [r.train_loss, r.val_loss ?? 0])) || 1;
  const x = (i) => pad + (n > 1 ? i / (n - 1) : 0.5) * (W - 2 * pad);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text) e.textContent = text;
    svg.append(e);
  };
  add("rect", { x: pad, y: 6, width: W - 2 * pad, height: H - 24, class: "frame" });
  const line = (key, scale, cls) => {
    const pts = history.map((r, i) => (r[key] === undefined ? null : `${x(i).toFixed(1)},${(H - 18 - scale(r[key]) * (H - 24)).toFixed(1)}`)).filter(Boolean);
    if (pts.length) add("polyline", { points: pts.join(" "), class: cls });
  };
  line("train_loss", (v) => v / maxLoss, "loss");
  line("val_loss", (v) => v / maxLoss, "loss val");
  line("train_acc", (v) => v, "acc");
  line("val_acc", (v) => v, "acc val");
  add("text", { x: 2, y: 14, class: "loss-label" }, maxLoss.toFixed(2));
  add("text", { x: W - pad + 2, y: 14, class: "acc-label" }, "1.0");
  add("text", { x: pad, y: H - 4, class: "axis" }, "loss (red), accuracy (blue); dashed: validation");
  return svg;
}

// ---------------------------------------------------------------- start
function setupTraining() {
  $("#class-form").addEventListener("submit", (ev) => { ev.preventDefault(); guarded(() => addClass($("#class-name").value)); });
  $("#train-start").onclick = () => guarded(() => startTraining({
    model: $("#train-model").value, epochs: $("#train-epochs").value, size: $("#train-size").value }));
  $("#demo-start").onclick = () => guarded(() => startTraining({ demo: true }));
  $("#cam-start").onclick = () => guarded(startCamera);
  $("#cam-stop").onclick = stopCamera;
  setupDatasetDrawing();
  listenToTrainings();
}

setupTraining();
ready.then(() => guarded(loadWorkspace));
