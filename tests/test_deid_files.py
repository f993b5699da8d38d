"""De-identified copies of files (fetalhc.deid.files): DICOM end to end, PNG, atomic writing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from deid_corpus import (  # noqa: E402
    Screen,
    check_boxes,
    head_pixels,
    header_secrets,
    make_dicom,
    make_screen,
    planted_tokens,
    read_tokens,
    readable,
)
from dicom_builder import ramp, write_dicom  # noqa: E402
from fetalhc.deid import deidentify_file, tesseract_available  # noqa: E402
from fetalhc.image import ImageLoadError  # noqa: E402
from fetalhc.reader import load_image  # noqa: E402


@pytest.fixture(scope="module")
def screens() -> list[Screen]:
    return [make_screen(i) for i in range(4)]


def test_deidentify_file_dicom_end_to_end(tmp_path, screens):
    s = screens[1]
    src = make_dicom(tmp_path / "in.dcm", s, pixel_size_mm=0.15)
    dst = deidentify_file(src, tmp_path / "out" / "clean.dcm")
    data = dst.read_bytes()
    for sec in header_secrets(s):
        assert sec not in data and sec.upper() not in data
    img = load_image(dst)
    assert img.pixel_size_mm == pytest.approx(0.15)
    assert np.array_equal(head_pixels(img.pixels, s), head_pixels(s.pixels, s))
    x0, y0, x1, y1 = s.sector_box
    outside = np.ones(s.pixels.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert not img.pixels[outside].any()  # the region blanks the text bands
    if tesseract_available():
        assert not readable(planted_tokens(s), read_tokens(img.pixels, check_boxes(s)))
    assert sorted(p.name for p in dst.parent.iterdir()) == ["clean.dcm"]  # no temporary left


def test_deidentify_file_png_and_atomic_failure(tmp_path, screens, monkeypatch):
    s = screens[2]
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), s.pixels)
    dst = deidentify_file(src, tmp_path / "out.png")
    img = load_image(dst)
    assert np.array_equal(head_pixels(img.pixels, s), head_pixels(s.pixels, s))
    for x0, y0, x1, y1 in s.boxes:
        assert (img.pixels[y0:y1, x0:x1] > 0).mean() < 0.02
    with pytest.raises(ValueError, match="must end in .png"):
        deidentify_file(src, tmp_path / "out.jpg")
    with pytest.raises(ValueError, match="needs DICOM input"):
        deidentify_file(src, tmp_path / "out.dcm")
    monkeypatch.setattr(cv2, "imencode", lambda *a, **k: (False, None))
    with pytest.raises(OSError):
        deidentify_file(src, tmp_path / "failed.png")
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["in.png", "out.png"]


def test_non_ultrasound_dicom_is_refused_unless_forced(tmp_path):
    src = write_dicom(tmp_path / "ct.dcm", ramp(), Modality="CT")
    for out in ("ct.png", "ct_out.dcm"):
        with pytest.raises(ImageLoadError, match="modality is CT"):
            deidentify_file(src, tmp_path / "out" / out)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    dst = deidentify_file(src, tmp_path / "out" / "ct_out.dcm", force=True)
    assert pydicom.dcmread(dst).Modality == "CT"
    assert np.array_equal(load_image(dst, force=True).pixels, ramp())  # nothing text-like to blank


def test_extensionless_dicom_input_and_cine(tmp_path):
    cine = np.stack([ramp() + k for k in range(3)])
    src = write_dicom(tmp_path / "IM_0001", cine)
    dst = deidentify_file(src, tmp_path / "c.dcm")
    out = pydicom.dcmread(dst)
    assert int(out.NumberOfFrames) == 3 and np.array_equal(out.pixel_array, cine)
    assert str(out.PatientName) == ""
