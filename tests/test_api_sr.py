"""The SR download of the HTTP API. Its real test needs fetalhc.sr (written on another branch);
without it the endpoint answers 501 and that is tested instead."""

from __future__ import annotations

import io

import pytest

pytest.importorskip("fastapi", reason="serving needs the serve extra")
from fastapi.testclient import TestClient  # noqa: E402

from fetalhc.api import create_app, exports  # noqa: E402
from fetalhc.api.engine import Settings  # noqa: E402
from fetalhc.phantom import make_phantom  # noqa: E402


@pytest.fixture(scope="module")
def client(model_path):
    return TestClient(create_app(Settings(workers=1, queue=2, timeout_s=120)))


@pytest.fixture(scope="module")
def dicom_bytes(tmp_path_factory):
    from dicom_builder import us_region, write_us_dicom

    img, _ = make_phantom(540, 800, seed=3)
    path = write_us_dicom(tmp_path_factory.mktemp("sr") / "x.dcm", img, PatientName="Doe^Jane",
                          SequenceOfUltrasoundRegions=[us_region((0, 0, 799, 539), (0.015, 0.015))])
    return path.read_bytes()


def test_sr_endpoint_says_501_when_sr_is_missing(client, dicom_bytes, monkeypatch):
    monkeypatch.setattr(exports, "sr_available", lambda: False)
    r = client.post("/api/export/sr", files={"image": ("x.dcm", dicom_bytes, "application/dicom")})
    assert r.status_code == 501 and "SR support not installed" in r.json()["detail"]


def test_sr_download_of_an_edited_dicom_reading(client, dicom_bytes):
    import pydicom

    src = pydicom.dcmread(io.BytesIO(dicom_bytes))
    m = client.post("/api/measure", files={"image": ("x.dcm", dicom_bytes, "application/dicom")})
    assert m.status_code == 200 and m.json()["sr_available"] is True
    edit = {"center_x_px": "400", "center_y_px": "270", "semi_axis_a_px": "245", "semi_axis_b_px": "190",
            "angle_deg": "20"}
    r = client.post("/api/export/sr", files={"image": ("x.dcm", dicom_bytes, "application/dicom")}, data=edit)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/dicom"
    sr = pydicom.dcmread(io.BytesIO(r.content))
    assert sr.Modality == "SR" and sr.StudyInstanceUID == src.StudyInstanceUID
    assert sr.SeriesInstanceUID != src.SeriesInstanceUID


def test_sr_needs_a_dicom_upload(client):
    import cv2

    img, _ = make_phantom(540, 800, seed=3)
    png = cv2.imencode(".png", img)[1].tobytes()
    r = client.post("/api/export/sr", files={"image": ("h.png", png, "image/png")}, data={"pixel_size_mm": "0.15"})
    assert r.status_code == 400 and "DICOM" in r.json()["detail"]
