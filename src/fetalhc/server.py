"""HTTP API and a one-page web front end (FastAPI): ``fetalhc serve``.

* ``GET /`` — a page to drop an image on, enter the pixel size (and GA) and see the overlay.
* ``POST /api/measure`` — multipart ``image`` (+ form fields ``pixel_size_mm``, ``ga_weeks``,
  ``crop_mode``, ``flips``, ``overlay``) -> the result row as JSON (+ a PNG overlay, base64).
* ``GET /api/health`` — model name and checksum.

Uploads are processed in memory, never written to disk, and nothing about them is logged.
The model is loaded once per process.
"""

from __future__ import annotations

import base64
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import cv2
from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import HTMLResponse

from fetalhc.image import ImageLoadError
from fetalhc.overlay import draw_overlay
from fetalhc.pipeline import Pipeline, PipelineConfig
from fetalhc.reader import load_image

MAX_UPLOAD_BYTES = 50 * 2**20

app = FastAPI(title="fetalhc", description="Fetal head circumference from 2-D ultrasound (research use).")


@lru_cache(maxsize=8)
def _pipeline(config: PipelineConfig) -> Pipeline:
    return Pipeline(config=config)


@app.get("/api/health")
def health() -> dict[str, Any]:
    seg = _pipeline(PipelineConfig()).segmenter
    return {"status": "ok", "model": seg.info.path.name, "sha256": seg.info.sha256}


@app.post("/api/measure")
async def measure_upload(
    image: Annotated[UploadFile, File(description="PNG, JPEG, BMP, TIFF or DICOM")],
    pixel_size_mm: Annotated[float | None, Form(gt=0)] = None,
    ga_weeks: Annotated[float | None, Form()] = None,
    crop_mode: Annotated[str, Form()] = "corners",
    flips: Annotated[bool, Form()] = False,
    overlay: Annotated[bool, Form()] = True,
) -> dict[str, Any]:
    """Measure one uploaded image. 400 with a clear message for bad input."""
    from fetalhc.clinical import validate_ga_weeks

    data = await image.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, f"upload larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
    tmp_name = ""
    try:
        config = PipelineConfig(crop_mode=crop_mode, flips=flips)
        if ga_weeks is not None:
            ga_weeks = validate_ga_weeks(ga_weeks)
        suffix = Path(image.filename or "upload").suffix.lower()[:8]
        # decoders want a file; a private temporary one, deleted at once
        with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
            tmp_name = tmp.name
            tmp.write(data)
            tmp.flush()
            img = load_image(tmp.name, pixel_size_mm=pixel_size_mm)
    except (ImageLoadError, ValueError) as e:
        msg = str(e).replace(tmp_name, "upload") if tmp_name else str(e)
        raise HTTPException(400, msg) from None
    pipe = _pipeline(config)
    clean = pipe.prepare(img)
    res = pipe.run_prepared(clean, ga_weeks)
    res.file = "upload"
    out: dict[str, Any] = {"result": res.row()}
    if overlay:
        ok, buf = cv2.imencode(".png", draw_overlay(clean.pixels, res))
        out["overlay_png_base64"] = base64.b64encode(buf.tobytes()).decode() if ok else None
    return out


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fetalhc</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
form{display:flex;gap:1em;flex-wrap:wrap;align-items:end;background:#f4f6f8;padding:1em;border-radius:8px}
label{display:flex;flex-direction:column;font-size:.9em}
button{padding:.5em 1.2em;font-size:1em}
img{max-width:100%;margin-top:1em;border:1px solid #ccc}
table{border-collapse:collapse;margin-top:1em}td{padding:.2em .8em;border-bottom:1px solid #eee}
.review{color:#b45309;font-weight:bold}.ok{color:#15803d;font-weight:bold}.err{color:#b91c1c}
small{color:#666}
</style></head><body>
<h1>fetalhc</h1>
<p>Fetal head circumference from a trans-thalamic ultrasound image.
<small>Research software: not a medical device; a second reading, not a diagnosis.
Images are processed in memory and not stored.</small></p>
<form id="f">
<label>Image <input type="file" name="image" required accept=".png,.jpg,.jpeg,.bmp,.tif,.tiff,.dcm"></label>
<label>Pixel size (mm) <input name="pixel_size_mm" type="number" step="any" min="0"></label>
<label>GA (weeks, optional) <input name="ga_weeks" type="number" step="any"></label>
<label>Crops <select name="crop_mode"><option>corners</option><option>full</option>
<option>corners+full</option></select></label>
<button>Measure</button></form>
<div id="out"></div>
<script>
const f = document.getElementById('f'), out = document.getElementById('out');
const show = ['hc_mm','hc_px','contour_hc_mm','bpd_mm','ofd_mm','cephalic_index','ga_hadlock_weeks',
  'ga_intergrowth_weeks','hc_z','hc_centile','pixel_size_mm','pixel_size_source','status','flags'];
f.onsubmit = async (e) => {
  e.preventDefault(); out.textContent = 'measuring...';
  const fd = new FormData(f);
  for (const k of ['pixel_size_mm','ga_weeks']) if (!fd.get(k)) fd.delete(k);
  const r = await fetch('api/measure', {method: 'POST', body: fd});
  const j = await r.json();
  if (!r.ok) { out.innerHTML = '<p class="err"></p>'; out.firstChild.textContent = j.detail; return; }
  const t = document.createElement('table');
  for (const k of show) { const v = j.result[k]; if (v === null || v === '') continue;
    const tr = t.insertRow(); tr.insertCell().textContent = k; const c = tr.insertCell(); c.textContent = v;
    if (k === 'status') c.className = v; }
  out.replaceChildren(t);
  if (j.overlay_png_base64) { const im = new Image(); im.alt = 'overlay';
    im.src = 'data:image/png;base64,' + j.overlay_png_base64; out.appendChild(im); }
};
</script></body></html>
"""


@app.get("/", response_class=HTMLResponse)
def page() -> str:
    return PAGE
