"""The HTTP API (fetalhc.api) through FastAPI's test client and a real uvicorn on loopback:
results, the de-identified image, the read-out as one source of truth, bad input, size and type
limits, no disk and no logs for uploads, the bounded pool (503, 504) and a fast health check."""

from __future__ import annotations

import base64
import logging
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import cv2
import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="serving needs the serve extra")
from fastapi.testclient import TestClient  # noqa: E402

from fetalhc.api import create_app  # noqa: E402
from fetalhc.api.engine import Settings  # noqa: E402
from fetalhc.api.readout import normalized_ellipse, readout_for_ellipse  # noqa: E402
from fetalhc.ellipse import Ellipse  # noqa: E402
from fetalhc.image import UltrasoundImage  # noqa: E402
from fetalhc.phantom import make_phantom  # noqa: E402
from fetalhc.pipeline import Pipeline  # noqa: E402
from web_helpers import phantom_png, running_server  # noqa: E402

PATIENT_FILE = "Doe_Jane_19800101.png"


@pytest.fixture(scope="module")
def app(model_path):
    return create_app(Settings(workers=2, queue=4, timeout_s=60))


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


@pytest.fixture(scope="module")
def png_bytes():
    return phantom_png(seed=5)


def _post(client, data_bytes, name="head.png", **form):
    return client.post("/api/measure", files={"image": (name, data_bytes, "image/png")},
                       data={k: str(v) for k, v in form.items()})


def test_page_static_files_and_health(client):
    page = client.get("/").text
    for testid in ("image-input", "pixel-size-input", "ga-input", "measure-button", "hc-value", "status",
                   "ellipse-handle-center", "ellipse-handle-major", "ellipse-handle-minor", "edited",
                   "reset-button"):
        assert f'data-testid="{testid}"' in page
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    h = client.get("/api/health").json()
    assert h["status"] == "ok" and len(h["sha256"]) == 64 and h["workers"] == 2 and h["queue"] == 4


def test_measure_returns_reading_and_deidentified_image(client, png_bytes):
    img, _ = make_phantom(540, 800, seed=5)
    img[:50, :] = 0  # a screen's flat header band, with a name on it
    cv2.putText(img, "DOE JANE 1234567", (20, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 255, 2)
    raw = cv2.imencode(".png", img)[1].tobytes()
    r = _post(client, raw, pixel_size_mm=0.15, ga_weeks=22)
    assert r.status_code == 200, r.text
    j = r.json()
    res = j["result"]
    assert res["file"] == "upload" and res["hc_mm"] > 0 and res["ga_weeks"] == 22
    assert res["crop_mode"] == "full@0.5+zoomflip" and res["hc_low_mm"] <= res["hc_mm"] <= res["hc_high_mm"]
    assert j["display"]["hc_mm"] == f"{res['hc_mm']:.1f}"
    assert j["flag_list"] == [] and res["status"] == "ok" and j["sr_available"] is False
    back = cv2.imdecode(np.frombuffer(base64.b64decode(j["image"]["png_base64"]), np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.shape == (540, 800) and (j["image"]["width_px"], j["image"]["height_px"]) == (800, 540)
    # the returned picture is the de-identified one: the burned-in name is blanked, the rest is the upload
    clean = Pipeline().deidentify(UltrasoundImage(img))
    assert np.array_equal(back, clean.pixels) and not np.array_equal(back, img)
    assert not back[10:40, 15:260].any() and img[10:40, 15:260].any()


def test_readout_is_the_pipelines_arithmetic(client, png_bytes):
    """One source of truth: the read-out of the automatic ellipse equals the automatic reading."""
    j = _post(client, png_bytes, pixel_size_mm=0.15, ga_weeks=22).json()["result"]
    body = {k: j[k] for k in ("center_x_px", "center_y_px", "semi_axis_a_px", "semi_axis_b_px", "angle_deg",
                              "pixel_size_mm", "ga_weeks")}
    r = client.post("/api/readout", json={**body, "image_width_px": 800, "image_height_px": 540})
    assert r.status_code == 200, r.text
    got = r.json()["result"]
    for k in ("hc_mm", "bpd_mm", "ofd_mm", "cephalic_index", "ga_hadlock_weeks", "ga_intergrowth_weeks",
              "hc_z", "hc_centile", "status"):
        assert got[k] == pytest.approx(j[k], abs=2e-3), k
    # a longer major axis: a longer HC by Ramanujan's formula, and an earlier/later GA accordingly
    r2 = client.post("/api/readout", json={**body, "semi_axis_a_px": body["semi_axis_a_px"] + 30,
                                           "image_width_px": 800, "image_height_px": 540}).json()["result"]
    e = Ellipse(body["center_x_px"], body["center_y_px"], body["semi_axis_a_px"] + 30, body["semi_axis_b_px"],
                body["angle_deg"])
    assert r2["hc_mm"] == pytest.approx(e.perimeter_px * 0.15, abs=1e-3) and r2["hc_mm"] > got["hc_mm"]
    assert r2["ga_hadlock_weeks"] > got["ga_hadlock_weeks"]


def test_readout_swaps_axes_and_flags_geometry():
    e = normalized_ellipse(100, 100, 40, 60, 10)
    assert (e.semi_axis_a_px, e.semi_axis_b_px, e.angle_deg) == (60, 40, 100)
    res = readout_for_ellipse(Ellipse(100, 100, 300, 120, 0), 0.15, None, (540, 800))
    codes = {f.split(":")[0] for f in res.flags}
    assert "head_cut_by_border" in codes and "implausible_mask" in codes and res.status == "review"
    assert readout_for_ellipse(Ellipse(400, 270, 200, 160, 0), None, None, (540, 800)).hc_mm is None
    with pytest.raises(ValueError):
        normalized_ellipse(0, 0, 0, 10, 0)


@pytest.mark.parametrize(
    ("payload", "status", "needle"),
    [
        (b"", 400, "empty"),
        (b"plain text, no image", 415, "unsupported file type"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, 400, "not a readable image"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 40, 400, "upload:"),
        (b"\0" * 128 + b"DICM" + b"\0" * 40, 400, "DICOM"),
    ],
)
def test_bad_uploads_get_a_reason_without_paths_or_names(client, payload, status, needle):
    r = _post(client, payload, name=PATIENT_FILE)
    assert r.status_code == status and needle in r.json()["detail"]
    detail = r.json()["detail"]
    assert "/tmp" not in detail and tempfile.gettempdir() not in detail and "Doe_Jane" not in detail


def test_bad_values_are_refused(client, png_bytes):
    assert _post(client, png_bytes, ga_weeks=99).status_code == 400
    r = _post(client, png_bytes, pixel_size_mm=-1)
    assert r.status_code == 422 and isinstance(r.json()["detail"], list)
    assert _post(client, png_bytes, frame=2).status_code == 400  # a frame of a PNG
    r = client.post("/api/readout", json={"center_x_px": 1, "center_y_px": 1, "semi_axis_a_px": 10,
                                          "semi_axis_b_px": 5, "angle_deg": 0, "image_width_px": 40000,
                                          "image_height_px": 40000})
    assert r.status_code == 422


def test_upload_size_limit(model_path, png_bytes):
    small = TestClient(create_app(Settings(workers=1, queue=1, timeout_s=30, max_upload_bytes=2000)))
    r = _post(small, png_bytes)
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_uploads_touch_no_disk_and_no_log(client, monkeypatch, caplog):
    """A 2 MB upload stays in memory (no spooling, no temporary file) and nothing names it in the logs."""
    def refuse(*_a, **_k):
        raise AssertionError("an upload was written to disk")

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", refuse)
    for name in ("NamedTemporaryFile", "mkstemp", "TemporaryFile"):
        monkeypatch.setattr(tempfile, name, refuse)
    rng = np.random.default_rng(0)
    big = rng.integers(0, 255, (1200, 1600), np.uint8)  # noise: a PNG of ~2 MB
    payload = cv2.imencode(".png", big)[1].tobytes()
    assert len(payload) > 1.5 * 2**20
    with caplog.at_level(logging.DEBUG):
        r = _post(client, payload, name=PATIENT_FILE, pixel_size_mm=0.1)
        bad = _post(client, b"junk", name=PATIENT_FILE)
    assert r.status_code == 200 and bad.status_code == 415
    assert "Doe_Jane" not in caplog.text and "Doe_Jane" not in r.text


def test_dicom_upload_pixel_size_from_header(client, tmp_path):
    from dicom_builder import us_region, write_us_dicom

    img, _ = make_phantom(540, 800, seed=3)
    path = write_us_dicom(tmp_path / "x.dcm", img, SequenceOfUltrasoundRegions=[us_region((0, 0, 799, 539),
                                                                                           (0.015, 0.015))])
    r = client.post("/api/measure", files={"image": ("x.dcm", path.read_bytes(), "application/dicom")})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["result"]["pixel_size_mm"] == pytest.approx(0.15)
    assert j["result"]["pixel_size_source"] == "dicom:SequenceOfUltrasoundRegions" and j["image"]["kind"] == "dicom"
    r2 = client.post("/api/measure", files={"image": ("x.dcm", path.read_bytes(), "application/dicom")},
                     data={"pixel_size_mm": "0.2"})
    assert r2.json()["result"]["pixel_size_source"] == "user"


def test_export_needs_a_whole_ellipse(client, png_bytes):
    r = client.post("/api/export/csv", files={"image": ("h.png", png_bytes, "image/png")},
                    data={"pixel_size_mm": "0.15", "center_x_px": "400"})
    assert r.status_code == 400 and "semi_axis_a_px" in r.json()["detail"]


def _slow_app(monkeypatch, settings, seconds):
    app = create_app(settings)
    engine = app.state.engine

    def slow_read(*_a, **_k):
        time.sleep(seconds)
        raise ValueError("slow job done")

    monkeypatch.setattr(engine, "read", slow_read)
    return app


def test_full_pool_answers_503_with_retry_after(monkeypatch, png_bytes):
    app = _slow_app(monkeypatch, Settings(workers=1, queue=1, timeout_s=30), 1.5)
    with running_server(app) as url, ThreadPoolExecutor(4) as ex:
        futs = [ex.submit(httpx.post, f"{url}/api/measure", files={"image": ("h.png", png_bytes)}, timeout=30)
                for _ in range(4)]
        codes = sorted(f.result().status_code for f in futs)
        busy = [f.result() for f in futs if f.result().status_code == 503]
    assert codes.count(503) == 2 and codes.count(400) == 2  # one running, one waiting, two refused
    assert busy[0].headers["Retry-After"] == "5" and "busy" in busy[0].json()["detail"]


def test_slow_job_answers_504(monkeypatch, png_bytes):
    app = _slow_app(monkeypatch, Settings(workers=1, queue=0, timeout_s=0.3), 1.0)
    client = TestClient(app)
    r = _post(client, png_bytes)
    assert r.status_code == 504 and "limit" in r.json()["detail"]
    assert app.state.pool.stats().admitted == 1  # the overrunning job still holds its slot ...
    time.sleep(1.0)
    assert app.state.pool.stats().admitted == 0  # ... until it ends


def test_health_stays_fast_while_measuring(model_path, png_bytes):
    """Twelve real measurements on two workers; /api/health answers within 0.5 s meanwhile (p95)."""
    app = create_app(Settings(workers=2, queue=12, timeout_s=120))
    with running_server(app) as url:
        httpx.post(f"{url}/api/measure", files={"image": ("h.png", png_bytes)}, timeout=60)  # load the model
        with ThreadPoolExecutor(12) as ex:
            futs = [ex.submit(httpx.post, f"{url}/api/measure", files={"image": ("h.png", png_bytes)},
                              data={"pixel_size_mm": "0.15"}, timeout=120) for _ in range(12)]
            times, busy_seen = [], 0
            with httpx.Client(timeout=10) as h:
                while not all(f.done() for f in futs):
                    t0 = time.perf_counter()
                    j = h.get(f"{url}/api/health").json()
                    times.append(time.perf_counter() - t0)
                    busy_seen = max(busy_seen, j["busy"])
                    time.sleep(0.05)
            assert all(f.result().status_code == 200 for f in futs)
    assert busy_seen >= 2 and len(times) >= 5
    p95 = statistics.quantiles(times, n=20)[-1] if len(times) >= 20 else max(times)
    assert p95 < 0.5, f"health p95 {p95:.3f} s while measuring"


def test_pool_unit_limits():
    import asyncio

    from fetalhc.api.pool import PoolFull, PoolTimeout, WorkerPool

    pool = WorkerPool(1, 1, 5)
    gate = threading.Event()

    async def main():
        a = asyncio.ensure_future(pool.run(gate.wait))
        b = asyncio.ensure_future(pool.run(lambda: 7))
        await asyncio.sleep(0.05)
        with pytest.raises(PoolFull):
            await pool.run(lambda: 1)
        gate.set()
        assert await b == 7 and await a is True
        with pytest.raises(PoolTimeout):
            await pool.run(lambda: time.sleep(0.5), timeout_s=0.05)

    asyncio.run(main())
    assert pool.stats().refused == 1
    pool.shutdown()
    with pytest.raises(ValueError):
        WorkerPool(0, 1, 1)
    assert replace(Settings(workers=2), ort_threads=None).threads_per_inference() >= 1


def test_non_ultrasound_dicom_upload_is_refused(client):
    from dicom_builder import write_us_dicom
    from fetalhc.phantom import make_phantom

    img, _ = make_phantom(270, 400, seed=2)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        data = write_us_dicom(Path(d) / "ct.dcm", img, Modality="MR").read_bytes()
    r = client.post("/api/measure", files={"image": ("x.dcm", data, "application/dicom")})
    assert r.status_code == 400 and "modality is MR" in r.json()["detail"]
