"""DICOM SR out: build SRs from synthetic ultrasound DICOMs, re-read them with pydicom and
highdicom, validate them with dciodvfy (dicom3tools) and dsrdump (DCMTK), and run
``fetalhc measure --sr-dir`` end to end."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import ComprehensiveSRStorage, UltrasoundMultiFrameImageStorage
from typer.testing import CliRunner

from conftest import require_tool
from dicom_builder import us_region, write_us_dicom
from fetalhc import __version__
from fetalhc.cli import app
from fetalhc.ellipse import Ellipse
from fetalhc.phantom import make_phantom
from fetalhc.quality import FLAG_SR_NOT_WRITTEN
from fetalhc.results import MeasureResult
from fetalhc.segment import default_model_path, read_model_info
from fetalhc.sr import (
    AlgorithmIdentity,
    SrContent,
    build_sr,
    default_algorithm_identity,
    sr_bytes,
    sr_content_from_result,
    write_sr,
)

PATIENT = dict(PatientName="Doe^Jane", PatientID="P123", PatientBirthDate="19900101", PatientSex="F",
               StudyDate="20260101", StudyTime="101010", StudyID="S1", AccessionNumber="A1",
               ReferringPhysicianName="Ref^Doc")
CONTENT = SrContent(hc_mm=180.123, bpd_mm=50.0, ofd_mm=60.0, cephalic_index=83.3333, ga_hadlock_weeks=20.5,
                    center_x_px=40.0, center_y_px=30.0, semi_axis_a_px=20.0, semi_axis_b_px=15.0, angle_deg=30.0,
                    status="review", flags=("hc_uncertain: band 9.1 mm > 8 mm",))
ALGO = AlgorithmIdentity(version="9.9.9", model_name="test_model 1", model_sha256="ab" * 32)


def _source(tmp_path: Path, name: str = "us.dcm", frames: int = 1, **tags: object) -> Path:
    shape = (64, 96) if frames == 1 else (frames, 64, 96)
    extra: dict[str, object] = dict(PATIENT) | tags
    if frames > 1:
        extra |= dict(SOPClassUID=UltrasoundMultiFrameImageStorage, NumberOfFrames=frames)
    return write_us_dicom(tmp_path / name, np.zeros(shape, np.uint8), **extra)


def _reread(sr: pydicom.Dataset) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(sr_bytes(sr)))


def _group(ds: pydicom.Dataset) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    doc = hd.sr.ComprehensiveSR.from_dataset(ds)
    groups = doc.content.get_planar_roi_measurement_groups()
    assert len(groups) == 1
    return groups[0]


def _nums(ds: pydicom.Dataset) -> dict[tuple[str, str], tuple[float, tuple[str, str]]]:
    return {(m.name.value, m.name.scheme_designator): (float(m.value), (m.unit.value, m.unit.scheme_designator))
            for m in _group(ds).get_measurements()}


def _items(ds: pydicom.Dataset, value_type: str) -> list[pydicom.Dataset]:
    """Every content item of ``value_type`` anywhere in the tree."""
    out: list[pydicom.Dataset] = []

    def walk(items: pydicom.Sequence) -> None:
        for it in items:
            if it.ValueType == value_type:
                out.append(it)
            if "ContentSequence" in it:
                walk(it.ContentSequence)

    walk(ds.ContentSequence)
    return out


def _texts(ds: pydicom.Dataset) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for it in _items(ds, "TEXT"):
        out.setdefault(it.ConceptNameCodeSequence[0].CodeMeaning, []).append(str(it.TextValue))
    return out


def _codes(ds: pydicom.Dataset) -> dict[str, tuple[str, str]]:
    return {it.ConceptNameCodeSequence[0].CodeMeaning: (it.ConceptCodeSequence[0].CodeValue,
                                                         it.ConceptCodeSequence[0].CodingSchemeDesignator)
            for it in _items(ds, "CODE")}


def _dciodvfy(path: Path) -> list[str]:
    """dciodvfy's output lines; the test is skipped where dicom3tools is not installed."""
    exe = require_tool("dciodvfy", "Debian package dicom3tools; `make setup-dev` installs it")
    p = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60)
    return (p.stdout + p.stderr).splitlines()


def _errors(lines: list[str]) -> list[str]:
    return [ln for ln in lines if ln.startswith("Error")]


# ------------------------------------------------------------------ content


def test_numbers_codes_and_units(tmp_path):
    ds = _reread(build_sr(pydicom.dcmread(_source(tmp_path)), CONTENT, algorithm=ALGO))
    assert ds.SOPClassUID == ComprehensiveSRStorage and ds.Modality == "SR"
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    nums = _nums(ds)
    assert nums == {
        ("11984-2", "LN"): (180.12, ("mm", "UCUM")),
        ("11820-8", "LN"): (50.0, ("mm", "UCUM")),
        ("11851-3", "LN"): (60.0, ("mm", "UCUM")),
        ("11823-2", "LN"): (83.33, ("%", "UCUM")),
        ("18185-9", "LN"): (20.5, ("wk", "UCUM")),
    }
    ga = next(m for m in _group(ds).get_measurements() if m.name.value == "18185-9")
    assert (ga.method.value, ga.method.scheme_designator) == ("11932-1", "LN")


def test_undefined_values_are_left_out(tmp_path):
    content = SrContent(**{**CONTENT.__dict__, "hc_mm": None, "bpd_mm": None, "ga_hadlock_weeks": None,
                           "cephalic_index": float("nan")})
    ds = _reread(build_sr(pydicom.dcmread(_source(tmp_path)), content, algorithm=ALGO))
    assert set(_nums(ds)) == {("11851-3", "LN")}


def test_scoord_ellipse_points_and_source_reference(tmp_path):
    src = pydicom.dcmread(_source(tmp_path))
    ds = _reread(build_sr(src, CONTENT, algorithm=ALGO))
    (sc,) = _items(ds, "SCOORD")
    assert sc.GraphicType == "ELLIPSE"
    pts = np.asarray(sc.GraphicData, float).reshape(-1, 2)
    # (column, row), pixel centres at +0.5: major axis ends, then minor axis ends
    cx, cy, c, s = 40.5, 30.5, math.cos(math.radians(30)), math.sin(math.radians(30))
    want = [(cx + 20 * c, cy + 20 * s), (cx - 20 * c, cy - 20 * s),
            (cx - 15 * s, cy + 15 * c), (cx + 15 * s, cy - 15 * c)]
    np.testing.assert_allclose(pts, want, atol=1e-4)
    (img,) = sc.ContentSequence
    assert img.ValueType == "IMAGE" and img.RelationshipType == "SELECTED FROM"
    ref = img.ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert ref.ReferencedSOPClassUID == src.SOPClassUID
    assert "ReferencedFrameNumber" not in ref
    # highdicom reads the same region back
    region = _group(ds).roi
    assert region.graphic_type == hd.sr.GraphicTypeValues.ELLIPSE
    np.testing.assert_allclose(region.value, want, atol=1e-4)
    # and the SR's evidence lists the source
    assert (src.SOPInstanceUID in {u[2] for u in hd.sr.ComprehensiveSR.from_dataset(ds).get_evidence()})


def test_cine_frame_is_referenced_one_based(tmp_path):
    src = pydicom.dcmread(_source(tmp_path, frames=3))
    ds = _reread(build_sr(src, CONTENT, frame=2, algorithm=ALGO))
    (sc,) = _items(ds, "SCOORD")
    ref = sc.ContentSequence[0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert int(ref.ReferencedFrameNumber) == 3
    assert ds.InstanceNumber == 3
    with pytest.raises(ValueError, match="say which"):
        build_sr(src, CONTENT, algorithm=ALGO)
    with pytest.raises(ValueError, match="out of range"):
        build_sr(src, CONTENT, frame=3, algorithm=ALGO)
    with pytest.raises(ValueError, match="single frame"):
        build_sr(pydicom.dcmread(_source(tmp_path, "one.dcm")), CONTENT, frame=1, algorithm=ALGO)


def test_same_study_new_series_patient_copied(tmp_path):
    src = pydicom.dcmread(_source(tmp_path))
    ds = _reread(build_sr(src, CONTENT, algorithm=ALGO))
    assert ds.StudyInstanceUID == src.StudyInstanceUID
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID
    assert ds.SOPInstanceUID != src.SOPInstanceUID
    assert "not for diagnostic use" in ds.SeriesDescription
    for kw, v in PATIENT.items():
        assert str(ds[kw].value) == v, kw
    assert ds.CompletionFlag == "COMPLETE" and ds.VerificationFlag == "UNVERIFIED"


def test_algorithm_identity(tmp_path):
    ds = _reread(build_sr(pydicom.dcmread(_source(tmp_path)), CONTENT, algorithm=ALGO))
    t = _texts(ds)
    assert t["Algorithm Name"] == ["fetalhc"] and t["Algorithm Version"] == ["9.9.9"]
    assert set(t["Algorithm Parameters"]) == {"model=test_model 1", f"model_sha256={'ab' * 32}"}
    evaluations = {(e.name.value, e.value.value) for e in _group(ds).get_qualitative_evaluations()}
    assert evaluations == {("status", "review"), ("ellipse-source", "algorithm")}
    # the default identity: this fetalhc and the shipped model's checked SHA-256
    info = read_model_info(default_model_path())
    d = default_algorithm_identity()
    assert (d.name, d.version, d.model_sha256) == ("fetalhc", __version__, info.sha256)
    assert d.model_name.startswith(default_model_path().stem)
    ds = _reread(build_sr(pydicom.dcmread(_source(tmp_path)), CONTENT))
    assert f"model_sha256={info.sha256}" in _texts(ds)["Algorithm Parameters"]


def test_status_flags_and_edited_mark(tmp_path):
    src = pydicom.dcmread(_source(tmp_path))
    auto = _reread(build_sr(src, CONTENT, algorithm=ALGO))
    c = _codes(auto)
    assert c["fetalhc quality status"] == ("review", "99FETALHC")
    assert c["Source of the ellipse"] == ("algorithm", "99FETALHC")
    assert _texts(auto)["Comment"] == ["quality flag: hc_uncertain: band 9.1 mm > 8 mm"]
    assert auto.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99FETALHC"
    edited = SrContent(**{**CONTENT.__dict__, "status": "ok", "flags": (), "edited": True})
    ed = _reread(build_sr(src, edited, algorithm=ALGO))
    c = _codes(ed)
    assert c["fetalhc quality status"] == ("ok", "99FETALHC")
    assert c["Source of the ellipse"] == ("person", "99FETALHC")
    assert any("corrected by a person" in t for t in _texts(ed)["Comment"])
    assert "corrected by a person" in ed.SeriesDescription and "not for diagnostic use" in ed.SeriesDescription
    assert ed.SeriesInstanceUID != auto.SeriesInstanceUID  # corrected readings go to their own series
    with pytest.raises(ValueError, match="status"):
        build_sr(src, SrContent(**{**CONTENT.__dict__, "status": "failed"}), algorithm=ALGO)
    with pytest.raises(ValueError, match="semi-axes"):
        build_sr(src, SrContent(**{**CONTENT.__dict__, "semi_axis_b_px": 0.0}), algorithm=ALGO)


def test_source_without_type2_attributes(tmp_path):
    bare = write_us_dicom(tmp_path / "bare.dcm", np.zeros((64, 96), np.uint8))
    src = pydicom.dcmread(bare)
    for kw in ("PatientName", "PatientID", "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDate"):
        assert kw not in src
    ds = _reread(build_sr(src, CONTENT, algorithm=ALGO))
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyID", "AccessionNumber",
               "ReferringPhysicianName", "StudyDate", "StudyTime"):
        assert kw in ds and ds[kw].value in (None, ""), kw
    path = write_sr(bare, CONTENT, tmp_path / "sr", algorithm=ALGO)
    assert _errors(_dciodvfy(path)) == []


def test_source_without_uids_is_refused(tmp_path):
    src = pydicom.dcmread(_source(tmp_path))
    del src.SOPInstanceUID
    with pytest.raises(ValueError, match="SOPInstanceUID"):
        build_sr(src, CONTENT, algorithm=ALGO)
    png = tmp_path / "x.dcm"
    png.write_bytes(b"not dicom")
    with pytest.raises(ValueError, match="x.dcm"):
        write_sr(png, CONTENT, tmp_path / "sr", algorithm=ALGO)


def test_sr_content_from_result():
    r = MeasureResult(file="a", hc_mm=170.0, ellipse=Ellipse(1.0, 2.0, 30.0, 20.0, 10.0), status="ok",
                      flags=("x: y",))
    c = sr_content_from_result(r, edited=True)
    got = (c.hc_mm, c.center_y_px, c.angle_deg, c.flags, c.edited, c.bpd_mm)
    assert got == (170.0, 2.0, 10.0, ("x: y",), True, None)
    with pytest.raises(ValueError, match="no ellipse"):
        sr_content_from_result(MeasureResult(file="a", status="review"))


# ------------------------------------------------------------------ validators


@pytest.mark.parametrize("case", ["single", "cine", "edited"])
def test_dciodvfy_and_dsrdump_accept_the_sr(tmp_path, case):
    frames = 3 if case == "cine" else 1
    src = _source(tmp_path, frames=frames)
    content = SrContent(**{**CONTENT.__dict__, "edited": case == "edited"})
    path = write_sr(src, content, tmp_path / "sr", frame=1 if case == "cine" else None, algorithm=ALGO)
    assert path.name == ("us_frame0001_sr.dcm" if case == "cine" else "us_sr.dcm")
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left behind
    lines = _dciodvfy(path)
    assert _errors(lines) == [], "\n".join(lines)
    assert any("ComprehensiveSR" in ln for ln in lines)
    dsrdump = require_tool("dsrdump", "Debian package dcmtk; `make setup-dev` installs it")
    if dsrdump:  # DCMTK's SR reader parses the tree too
        p = subprocess.run([dsrdump, str(path)], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert "Head Circumference" in p.stdout and "ELLIPSE" in p.stdout


def test_dciodvfy_check_can_fail(tmp_path):
    """The validator test is not vacuous: an SR missing a Type 1 attribute gives an Error line."""
    path = write_sr(_source(tmp_path), CONTENT, tmp_path / "sr", algorithm=ALGO)
    ds = pydicom.dcmread(path)
    del ds.CompletionFlag
    ds.save_as(tmp_path / "broken.dcm")
    assert any("CompletionFlag" in e for e in _errors(_dciodvfy(tmp_path / "broken.dcm")))


# ------------------------------------------------------------------ command line


def test_cli_sr_dir_writes_sr_for_dicom_and_says_why_not_for_png(tmp_path):
    img, _ = make_phantom(270, 400, Ellipse(200, 135, 120, 95, 20.0))
    dcm = write_us_dicom(tmp_path / "head.dcm", img, SequenceOfUltrasoundRegions=[us_region((0, 0, 399, 269))],
                         **PATIENT)
    png = tmp_path / "head_png.png"
    Image.fromarray(img).save(png)
    out, sr_dir = tmp_path / "out.json", tmp_path / "sr"
    r = CliRunner().invoke(app, ["measure", str(dcm), str(png), "--pixel-size", "0.2", "--sr-dir", str(sr_dir),
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = {Path(x["file"]).name: x for x in json.loads(out.read_text())}
    d, p = rows["head.dcm"], rows["head_png.png"]
    assert d["sr_file"] == str(sr_dir / "head_sr.dcm") and Path(d["sr_file"]).is_file()
    assert FLAG_SR_NOT_WRITTEN not in (d["flags"] or "")
    assert p["sr_file"] is None
    assert f"{FLAG_SR_NOT_WRITTEN}: input is not DICOM" in p["flags"]
    assert p["status"] == d["status"] == "ok"  # the informative flag leaves the status alone
    assert sorted(x.name for x in sr_dir.iterdir()) == ["head_sr.dcm"]
    ds = pydicom.dcmread(d["sr_file"])
    assert ds.StudyInstanceUID == pydicom.dcmread(dcm).StudyInstanceUID
    nums = _nums(ds)
    assert nums[("11984-2", "LN")][0] == pytest.approx(d["hc_mm"], abs=0.006)
    assert nums[("11820-8", "LN")][0] == pytest.approx(d["bpd_mm"], abs=0.006)
    (sc,) = _items(ds, "SCOORD")
    centre = np.asarray(sc.GraphicData, float).reshape(-1, 2)[:2].mean(axis=0)
    np.testing.assert_allclose(centre, [d["center_x_px"] + 0.5, d["center_y_px"] + 0.5], atol=1e-3)
    assert _errors(_dciodvfy(Path(d["sr_file"]))) == []


def test_cli_csv_has_sr_file_column(tmp_path):
    png = tmp_path / "h.png"
    Image.fromarray(make_phantom(270, 400, Ellipse(200, 135, 120, 95, 20.0))[0]).save(png)
    out = tmp_path / "o.csv"
    r = CliRunner().invoke(app, ["measure", str(png), "--out", str(out)])
    assert r.exit_code == 0, r.output
    (row,) = list(csv.DictReader(out.open()))
    assert row["sr_file"] == "" and FLAG_SR_NOT_WRITTEN not in row["flags"]  # no --sr-dir: no note


def test_batch_cine_writes_one_sr_per_frame(tmp_path):
    from fetalhc.batch import BatchOptions, run_batch
    from fetalhc.pipeline import PipelineConfig

    frames = np.stack([make_phantom(270, 400, Ellipse(200, 135, 120 - 10 * k, 95 - 8 * k, 20.0), seed=k)[0]
                       for k in range(2)])
    cine = write_us_dicom(tmp_path / "cine.dcm", frames, SOPClassUID=UltrasoundMultiFrameImageStorage,
                          SequenceOfUltrasoundRegions=[us_region((0, 0, 399, 269))])
    rows = run_batch([cine], PipelineConfig(), BatchOptions(sr_dir=tmp_path / "sr"))
    assert [r["frame"] for r in rows] == [0, 1]
    src = pydicom.dcmread(cine, stop_before_pixels=True)
    for r in rows:
        ds = pydicom.dcmread(r["sr_file"])
        assert Path(r["sr_file"]).name == f"cine_frame{r['frame']:04d}_sr.dcm"
        ref = _items(ds, "SCOORD")[0].ContentSequence[0].ReferencedSOPSequence[0]
        assert ref.ReferencedSOPInstanceUID == src.SOPInstanceUID
        assert int(ref.ReferencedFrameNumber) == r["frame"] + 1
        assert _nums(ds)[("11984-2", "LN")][0] == pytest.approx(r["hc_mm"], abs=0.006)
    # both frames' SRs share one new series of the source's study
    series = {pydicom.dcmread(r["sr_file"]).SeriesInstanceUID for r in rows}
    assert len(series) == 1 and src.SeriesInstanceUID not in series


def test_sr_from_a_vendor_ultrasound_header(tmp_path):
    """pydicom-data's US1_UNCR.dcm: a real scanner's header (patient, study and equipment modules)."""
    from pydicom.data import get_testdata_file

    try:
        path = get_testdata_file("US1_UNCR.dcm", download=False)
    except Exception:  # noqa: BLE001 - pydicom-data absent or not cached
        path = None
    if path is None:
        pytest.skip("pydicom-data's US1_UNCR.dcm not available")
    src = pydicom.dcmread(path, stop_before_pixels=True)
    out = write_sr(Path(path), CONTENT, tmp_path, algorithm=ALGO)
    ds = pydicom.dcmread(out)
    assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.PatientID == src.PatientID
    assert _errors(_dciodvfy(out)) == []
