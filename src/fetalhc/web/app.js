// fetalhc web page: upload, show the automatic ellipse over the de-identified image, let a person
// correct it, and download the result. Every number shown comes from the API (/api/measure for the
// automatic reading, /api/readout for a corrected ellipse): the page does no clinical arithmetic.
// Nothing is stored on the server; the page keeps the chosen file to re-send it for downloads.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";
const DEBOUNCE_MS = 120;
const HANDLE_PX = 9;       // handle radius on screen
const MIN_SEMI_AXIS = 2;   // pixels

const state = {
  file: null, settings: null, imgW: 0, imgH: 0,
  auto: null, autoEllipse: null, ellipse: null, edited: false,
  pixelSizeMm: null, pixelSizeSource: "none", gaWeeks: null,
  seq: 0, timer: null, drag: null,
};

// ---------- errors ----------
function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => {
      if (d && typeof d === "object") {
        const loc = (d.loc || []).filter((x) => x !== "body" && x !== "query" && x !== "path").join(".");
        return (loc ? loc + ": " : "") + (d.msg || JSON.stringify(d));
      }
      return String(d);
    }).join("\n");
  }
  if (detail && typeof detail === "object") return JSON.stringify(detail);
  return "";
}

async function errorMessage(resp) {
  let text = "";
  try {
    const body = await resp.json();
    text = describeDetail(body.detail !== undefined ? body.detail : body);
  } catch (e) {
    text = "";
  }
  const prefix = {413: "Upload too large", 415: "Unsupported file", 422: "Invalid input",
                  501: "Not available", 503: "Server busy", 504: "Timed out"}[resp.status];
  const head = prefix ? `${prefix} (HTTP ${resp.status})` : `Error (HTTP ${resp.status})`;
  return text ? `${head}: ${text}` : head;
}

function showError(msg) {
  const box = $("error");
  box.textContent = msg;
  box.hidden = !msg;
}

// ---------- measuring ----------
function formSettings() {
  const f = $("measure-form");
  const get = (n) => f.elements[n].value.trim();
  return {pixel_size_mm: get("pixel_size_mm"), ga_weeks: get("ga_weeks"), frame: get("frame"),
          crop_mode: get("crop_mode")};
}

function uploadForm(withEllipse) {
  const fd = new FormData();
  fd.append("image", state.file, "upload");
  for (const [k, v] of Object.entries(state.settings)) if (v !== "") fd.append(k, v);
  if (withEllipse && state.edited) {
    const e = state.ellipse;
    fd.append("center_x_px", e.cx); fd.append("center_y_px", e.cy);
    fd.append("semi_axis_a_px", e.a); fd.append("semi_axis_b_px", e.b); fd.append("angle_deg", e.angle);
  }
  return fd;
}

async function measure(ev) {
  ev.preventDefault();
  showError("");
  const file = $("measure-form").elements.image.files[0];
  if (!file) { showError("Choose an image file first (PNG, JPEG, TIFF, BMP or DICOM)."); return; }
  state.file = file;
  state.settings = formSettings();
  $("busy").hidden = false;
  $("measure-button").disabled = true;
  try {
    const resp = await fetch("api/measure", {method: "POST", body: uploadForm(false)});
    if (!resp.ok) { showError(await errorMessage(resp)); $("result").hidden = true; return; }
    const j = await resp.json();
    state.auto = j;
    state.imgW = j.image.width_px; state.imgH = j.image.height_px;
    state.pixelSizeMm = j.result.pixel_size_mm; state.pixelSizeSource = j.result.pixel_size_source;
    state.gaWeeks = j.result.ga_weeks;
    const r = j.result;
    state.autoEllipse = r.semi_axis_a_px == null ? null :
      {cx: r.center_x_px, cy: r.center_y_px, a: r.semi_axis_a_px, b: r.semi_axis_b_px, angle: r.angle_deg};
    state.ellipse = state.autoEllipse && {...state.autoEllipse};
    setEdited(false);
    $("result").hidden = false;
    const img = $("image");
    img.src = "data:image/png;base64," + j.image.png_base64;
    const svg = $("overlay");
    svg.setAttribute("viewBox", `0 0 ${state.imgW} ${state.imgH}`);
    svg.setAttribute("preserveAspectRatio", "none");
    showSource(j);
    $("download-sr").hidden = !j.sr_available;
    $("sr-note").hidden = j.image.kind !== "dicom" || j.sr_available;
    $("sr-note").textContent = "DICOM SR download: SR support is not installed on this server.";
    render(j);
    drawEllipse();
  } catch (e) {
    showError("Could not reach the fetalhc server: " + e.message);
  } finally {
    $("busy").hidden = true;
    $("measure-button").disabled = false;
  }
}

function showSource(j) {
  const src = j.result.pixel_size_source || "none";
  const words = src.startsWith("dicom:") ? "from the DICOM file (" + src.slice(6) + ")"
    : src === "user" ? "entered by you" : "unknown: lengths in pixels only";
  $("pixel-size-source").textContent = j.display.pixel_size_mm ? `${j.display.pixel_size_mm} mm, ${words}` : words;
}

// ---------- values ----------
function setText(id, v, unit) {
  $(id).textContent = v == null ? "n/a" : (unit ? `${v} ${unit}` : v);
}

function render(j) {
  const d = j.display, r = j.result;
  $("hc-value").textContent = d.hc_mm == null ? "" : d.hc_mm;
  $("hc-px").textContent = d.hc_px == null ? "" : `(${d.hc_px} px)`;
  setText("hc-band", d.hc_band_mm, "mm (outline at probability 0.2 minus 0.8)");
  if (d.hc_band_mm == null) $("hc-band").textContent = state.edited ? "n/a for a corrected ellipse" : "n/a";
  $("row-interval").hidden = d.hc_interval_mm == null;
  $("hc-interval").textContent = d.hc_interval_mm || "";
  setText("bpd", d.bpd_mm, "mm");
  setText("ofd", d.ofd_mm, "mm");
  setText("ci", d.cephalic_index);
  setText("ga-hadlock", d.ga_hadlock);
  setText("ga-intergrowth", d.ga_intergrowth);
  $("row-centile").hidden = d.ga_given == null;
  $("ga-given").textContent = d.ga_given || "";
  $("centile").textContent = d.hc_centile == null ? "n/a" : `${d.hc_centile} (z ${d.hc_z})`;
  const src = r.pixel_size_source || "none";
  $("pixel-size").textContent = d.pixel_size_mm == null ? "unknown (lengths in pixels only)"
    : `${d.pixel_size_mm} mm (source: ${src})`;
  const st = $("status");
  st.textContent = r.status || "";
  st.className = r.status || "";
  const ul = $("flags");
  ul.replaceChildren();
  for (const f of j.flag_list) {
    const li = document.createElement("li");
    li.textContent = f;
    ul.appendChild(li);
  }
  if (!j.flag_list.length) {
    const li = document.createElement("li");
    li.textContent = "none";
    ul.appendChild(li);
  }
}

// ---------- ellipse drawing ----------
function handlePositions(e) {
  const t = e.angle * Math.PI / 180;
  return {
    center: [e.cx, e.cy],
    major: [e.cx + e.a * Math.cos(t), e.cy + e.a * Math.sin(t)],
    minor: [e.cx - e.b * Math.sin(t), e.cy + e.b * Math.cos(t)],
  };
}

function screenScale() {
  const rect = $("overlay").getBoundingClientRect();
  return rect.width > 0 ? state.imgW / rect.width : 1;
}

function drawEllipse() {
  const e = state.ellipse;
  const show = !!e;
  for (const id of ["ellipse", "axis-major", "axis-minor", "h-center", "h-major", "h-minor"]) {
    $(id).style.display = show ? "" : "none";
  }
  if (!show) return;
  // pixel (i, j) covers [i, i+1] in the SVG's view box: its centre is at i + 0.5
  const o = 0.5, s = screenScale();
  const el = $("ellipse");
  el.setAttribute("cx", e.cx + o); el.setAttribute("cy", e.cy + o);
  el.setAttribute("rx", e.a); el.setAttribute("ry", e.b);
  el.setAttribute("transform", `rotate(${e.angle} ${e.cx + o} ${e.cy + o})`);
  el.setAttribute("stroke-width", 2 * s);
  const p = handlePositions(e);
  const line = (id, q) => {
    const l = $(id);
    l.setAttribute("x1", 2 * e.cx - q[0] + o); l.setAttribute("y1", 2 * e.cy - q[1] + o);
    l.setAttribute("x2", q[0] + o); l.setAttribute("y2", q[1] + o);
    l.setAttribute("stroke-width", 1.5 * s);
  };
  line("axis-major", p.major);
  line("axis-minor", p.minor);
  for (const [role, id] of [["center", "h-center"], ["major", "h-major"], ["minor", "h-minor"]]) {
    const c = $(id);
    c.setAttribute("cx", p[role][0] + o); c.setAttribute("cy", p[role][1] + o);
    c.setAttribute("r", HANDLE_PX * s); c.setAttribute("stroke-width", 1.5 * s);
  }
}

function toImage(ev) {
  const rect = $("overlay").getBoundingClientRect();
  return [(ev.clientX - rect.left) * state.imgW / rect.width - 0.5,
          (ev.clientY - rect.top) * state.imgH / rect.height - 0.5];
}

function moveHandle(role, x, y) {
  const e = state.ellipse;
  if (role === "center") { e.cx = x; e.cy = y; return; }
  const dx = x - e.cx, dy = y - e.cy;
  const r = Math.max(MIN_SEMI_AXIS, Math.hypot(dx, dy));
  const ang = Math.atan2(dy, dx) * 180 / Math.PI;
  if (role === "major") { e.a = r; e.angle = ang; } else { e.b = r; e.angle = ang - 90; }
}

function onPointerDown(ev) {
  const role = ev.target.dataset.role;
  if (!role || !state.ellipse) return;
  ev.preventDefault();
  ev.target.setPointerCapture(ev.pointerId);
  const [x, y] = toImage(ev);
  state.drag = {role, dx: role === "center" ? state.ellipse.cx - x : 0, dy: role === "center" ? state.ellipse.cy - y : 0};
}

function onPointerMove(ev) {
  if (!state.drag) return;
  const [x, y] = toImage(ev);
  moveHandle(state.drag.role, x + state.drag.dx, y + state.drag.dy);
  changed();
}

function onPointerUp() {
  if (!state.drag) return;
  state.drag = null;
  flushReadout();
}

function onKey(ev) {
  const role = ev.target.dataset.role;
  const step = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]}[ev.key];
  if (!role || !step || !state.ellipse) return;
  ev.preventDefault();
  const p = handlePositions(state.ellipse)[role];
  moveHandle(role, p[0] + step[0], p[1] + step[1]);
  changed();
}

function changed() {
  setEdited(true);
  drawEllipse();
  clearTimeout(state.timer);
  state.timer = setTimeout(requestReadout, DEBOUNCE_MS);
}

function flushReadout() {
  if (state.timer) { clearTimeout(state.timer); requestReadout(); }
}

async function requestReadout() {
  state.timer = null;
  const e = state.ellipse;
  const seq = ++state.seq;
  const body = {center_x_px: e.cx, center_y_px: e.cy, semi_axis_a_px: e.a, semi_axis_b_px: e.b, angle_deg: e.angle,
                pixel_size_mm: state.pixelSizeMm, ga_weeks: state.gaWeeks,
                pixel_size_source: state.pixelSizeSource || "user",
                image_width_px: state.imgW, image_height_px: state.imgH};
  try {
    const resp = await fetch("api/readout", {method: "POST", headers: {"Content-Type": "application/json"},
                                              body: JSON.stringify(body)});
    if (seq !== state.seq || !state.edited) return;   // a newer request (or a reset) superseded this one
    if (!resp.ok) { showError(await errorMessage(resp)); return; }
    showError("");
    render(await resp.json());
  } catch (err) {
    if (seq === state.seq) showError("Could not reach the fetalhc server: " + err.message);
  }
}

function setEdited(on) {
  state.edited = on;
  $("edited").hidden = !on;
  $("reset-button").disabled = !on;
}

function reset() {
  clearTimeout(state.timer);
  state.timer = null;
  state.seq++;
  state.ellipse = state.autoEllipse && {...state.autoEllipse};
  setEdited(false);
  showError("");
  render(state.auto);
  drawEllipse();
}

// ---------- downloads ----------
async function download(ev) {
  const fmt = ev.currentTarget.dataset.format;
  if (!state.file) return;
  flushReadout();
  const btn = ev.currentTarget;
  btn.disabled = true;
  showError("");
  try {
    const resp = await fetch(`api/export/${fmt}`, {method: "POST", body: uploadForm(true)});
    if (!resp.ok) { showError(await errorMessage(resp)); return; }
    const blob = await resp.blob();
    const m = /filename="([^"]+)"/.exec(resp.headers.get("Content-Disposition") || "");
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = m ? m[1] : `fetalhc_result.${fmt}`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (err) {
    showError("Download failed: " + err.message);
  } finally {
    btn.disabled = false;
  }
}

// ---------- wiring ----------
$("measure-form").addEventListener("submit", measure);
$("reset-button").addEventListener("click", reset);
for (const b of document.querySelectorAll(".downloads button")) b.addEventListener("click", download);
for (const id of ["h-center", "h-major", "h-minor"]) {
  const h = $(id);
  h.setAttribute("tabindex", "0");
  h.addEventListener("pointerdown", onPointerDown);
  h.addEventListener("pointermove", onPointerMove);
  h.addEventListener("pointerup", onPointerUp);
  h.addEventListener("pointercancel", onPointerUp);
  h.addEventListener("keydown", onKey);
  h.addEventListener("keyup", flushReadout);
}
new ResizeObserver(drawEllipse).observe($("stage"));
