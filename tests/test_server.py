"""The HTTP API and web page, through FastAPI's test client (no network)."""

import cv2
import pytest

pytest.importorskip("fastapi", reason="serving needs the serve extra")
from fastapi.testclient import TestClient  # noqa: E402

from fetalhc.phantom import make_phantom  # noqa: E402
from fetalhc.server import app  # noqa: E402


@pytest.fixture(scope="module")
def client():
    return TestClient(app)


@pytest.fixture(scope="module")
def png_bytes():
    img, _ = make_phantom(540, 800, seed=5)
    return cv2.imencode(".png", img)[1].tobytes()


def test_page_and_health(client, model_path):
    assert "fetalhc" in client.get("/").text
    h = client.get("/api/health").json()
    assert h["status"] == "ok" and len(h["sha256"]) == 64


def test_measure_upload(client, png_bytes, model_path):
    r = client.post("/api/measure", files={"image": ("head.png", png_bytes, "image/png")},
                    data={"pixel_size_mm": "0.15", "ga_weeks": "30"})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["result"]["hc_mm"] > 0 and j["result"]["file"] == "upload"
    assert j["result"]["ga_weeks"] == 30 and j["overlay_png_base64"]


@pytest.mark.parametrize(
    ("files", "data", "needle"),
    [
        ({"image": ("x.png", b"not an image", "image/png")}, {}, "not a readable image"),
        ({"image": ("x.png", b"", "image/png")}, {}, "empty"),
    ],
)
def test_bad_uploads_get_400_with_reason(client, files, data, needle, model_path):
    r = client.post("/api/measure", files=files, data=data)
    assert r.status_code == 400 and needle in r.json()["detail"]
    assert "/tmp" not in r.json()["detail"]


def test_bad_ga_is_refused(client, png_bytes, model_path):
    r = client.post("/api/measure", files={"image": ("h.png", png_bytes, "image/png")}, data={"ga_weeks": "99"})
    assert r.status_code == 400
