"""One-page report: renders with every field, and with fields missing; writes PDF and PNG."""

import re
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fetalhc.clinical import readout
from fetalhc.ellipse import Ellipse
from fetalhc.quality import QualityThresholds
from fetalhc.report import format_centile, write_report
from fetalhc.results import MeasureResult

SHAPE = (540, 800)
HEAD = Ellipse(410.0, 265.0, 230.0, 180.0, 25.0)


def picture() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.normal(60, 20, SHAPE).clip(0, 255)
    ring = HEAD.rasterize(SHAPE).astype(bool) & ~Ellipse(410, 265, 218, 168, 25).rasterize(SHAPE).astype(bool)
    img[ring] = 220
    return img.astype(np.uint8)


def full_result(pixel_mm: float | None = 0.12, ga: float | None = 19.0,
                thresholds: QualityThresholds | None = None) -> MeasureResult:
    p = HEAD.perimeter_px
    mm = (lambda v: None) if pixel_mm is None else (lambda v: v * pixel_mm)
    ro = readout(mm(p), mm(2 * HEAD.semi_axis_b_px), mm(2 * HEAD.semi_axis_a_px), ga)
    return MeasureResult(file="/data/PATIENT_NAME_123.png", ellipse=HEAD, hc_px=p, patent_pixel_count_hc_px=0.9 * p,
                         hc_mm=mm(p), patent_pixel_count_hc_mm=mm(0.9 * p), pixel_size_mm=pixel_mm,
                         pixel_size_source="csv" if pixel_mm else "none", crop_hc_px=(p, p), bpd_mm=ro.bpd_mm,
                         ofd_mm=ro.ofd_mm, cephalic_index=ro.cephalic_index, ga_weeks=ro.ga_weeks,
                         ga_hadlock_weeks=ro.ga_hadlock_weeks, ga_intergrowth_weeks=ro.ga_intergrowth_weeks,
                         hc_z=ro.hc_z, hc_centile=ro.hc_centile, status="review", thresholds=thresholds,
                         flags=(*ro.flags, "crops_disagree: a long reason " + "word " * 40))


def pdf_text(path: Path) -> str:
    """The strings drawn on the page (matplotlib writes kerned TJ arrays in Flate streams)."""
    raw = path.read_bytes()
    out = []
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", raw, re.S):
        try:
            data = zlib.decompress(m.group(1))
        except zlib.error:
            continue
        for arr in re.findall(rb"\[(.*?)\]\s*TJ", data, re.S):
            out.append(b"".join(re.findall(rb"\(((?:\\.|[^\\)])*)\)", arr)).decode("latin-1"))
    return "\n".join(out)


def check_files(paths: list[Path], out: Path, stem: str) -> None:
    assert [p.name for p in paths] == [f"{stem}_report.pdf", f"{stem}_report.png"]
    assert paths[0].read_bytes().startswith(b"%PDF")
    with Image.open(paths[1]) as im:
        im.load()
        w, h = im.size
    assert h / w == pytest.approx(11.69 / 8.27, rel=0.01)  # A4 portrait
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temp files left


def test_report_with_every_field(tmp_path):
    r = full_result()
    assert r.hc_centile is not None and r.ga_hadlock_weeks is not None and r.ga_intergrowth_weeks is not None
    paths = write_report(r, picture(), tmp_path, "case_001")
    check_files(paths, tmp_path, "case_001")
    text = pdf_text(paths[0])
    for needle in ("case_001", "Research software", "Hadlock", "INTERGROWTH", "outer", "50th", "97th", "REVIEW"):
        assert needle in text
    assert "PATIENT" not in text and "/data" not in text


def test_report_without_ga_or_pixel_size(tmp_path):
    r = full_result(pixel_mm=None, ga=None)
    paths = write_report(r, picture(), tmp_path, "nopix")
    check_files(paths, tmp_path, "nopix")
    assert "No gestational age given" in pdf_text(paths[0])


def test_report_without_a_head(tmp_path):
    r = MeasureResult(file="blank.png", flags=("no_head_found: the segmentation mask is empty",), ga_weeks=22.0)
    paths = write_report(r, np.zeros(SHAPE, np.uint8), tmp_path, "blank")
    check_files(paths, tmp_path, "blank")
    assert "no head found" in pdf_text(paths[0])


def test_report_refuses_a_path_as_stem(tmp_path):
    with pytest.raises(ValueError, match="stem"):
        write_report(MeasureResult(file="x"), np.zeros(SHAPE, np.uint8), tmp_path, "../x")


def test_format_centile():
    assert (format_centile(0.01), format_centile(50.04), format_centile(99.95)) == ("<0.1", "50.0", ">99.9")


def test_report_prints_the_band_limit_that_was_used(tmp_path):
    default = pdf_text(write_report(full_result(), picture(), tmp_path / "a", "a")[0])
    custom = pdf_text(write_report(full_result(thresholds=QualityThresholds(max_hc_band_mm=6.5)), picture(),
                                   tmp_path / "b", "b")[0])
    assert "> 8: review" in default and "> 6.5: review" in custom and "> 8: review" not in custom
