"""End to end with the shipped model: the Python API, the batch runner and the CLI."""

import csv
import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import fetalhc
from fetalhc.cli import app
from fetalhc.ellipse import Ellipse
from fetalhc.phantom import make_phantom
from fetalhc.results import TABLE_COLUMNS

TRUTH = Ellipse(400.0, 270.0, 250.0, 195.0, 15.0)


@pytest.fixture(scope="module")
def phantom_png(tmp_path_factory):
    d = tmp_path_factory.mktemp("ph")
    img, _ = make_phantom(540, 800, TRUTH, seed=7)
    p = d / "phantom.png"
    cv2.imwrite(str(p), img)
    return p


def test_measure_api_returns_one_result_with_units(model_path, phantom_png):
    r = fetalhc.measure(phantom_png, pixel_size_mm=0.15)
    assert isinstance(r, fetalhc.MeasureResult)
    assert r.error is None and r.pixel_size_source == "user"
    assert r.hc_px == pytest.approx(TRUTH.perimeter_px, rel=0.05)
    assert r.hc_mm == pytest.approx(r.hc_px * 0.15)
    assert r.contour_hc_mm == pytest.approx(r.contour_hc_px * 0.15)
    # the patent's pixel count (cross element) reads about 0.90 of the ellipse
    assert 0.85 < r.contour_hc_px / r.hc_px < 0.97
    assert r.mask is not None and r.mask.shape == (540, 800)
    assert r.crop_mode == "corners" and len(r.crop_hc_px) == 4


def test_no_pixel_size_measures_in_pixels_and_says_so(model_path, phantom_png):
    r = fetalhc.measure(phantom_png)
    assert r.hc_mm is None and r.contour_hc_mm is None and r.hc_px is not None
    assert r.status == "review"
    assert any(f.startswith("pixel_size_missing") for f in r.flags)


def test_blank_image_finds_no_head(model_path):
    r = fetalhc.measure(np.zeros((540, 800), np.uint8), pixel_size_mm=0.1)
    assert r.hc_mm is None and r.status == "review"
    assert any(f.startswith("no_head_found") for f in r.flags)


def test_cli_batch_goes_on_past_bad_files(model_path, phantom_png, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "res.csv"
    masks, overlays = tmp_path / "masks", tmp_path / "overlays"
    res = CliRunner().invoke(app, ["measure", str(phantom_png), str(bad), "--pixel-size", "0.15", "--out", str(out),
                                   "--mask-dir", str(masks), "--overlay-dir", str(overlays)])
    assert res.exit_code == 1, res.output
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == list(TABLE_COLUMNS)
    assert [r["file"].endswith(n) for r, n in zip(rows, ["phantom.png", "broken.png"], strict=True)] == [True, True]
    assert rows[0]["error"] == "" and float(rows[0]["hc_mm"]) > 0
    assert "broken.png" in rows[1]["error"] and rows[1]["hc_mm"] == ""
    mask = cv2.imread(str(masks / "phantom_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (540, 800) and set(np.unique(mask)) <= {0, 255}
    assert (overlays / "phantom_overlay.png").is_file()
    leftovers = [p.name for d in (tmp_path, masks, overlays) for p in d.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_cli_json_and_csv_pixel_sizes(model_path, phantom_png, tmp_path):
    table = tmp_path / "px.csv"
    table.write_text("filename,pixel size(mm),head circumference (mm)\nphantom.png,0.2,0\n")
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["measure", str(phantom_png), "--pixel-size-csv", str(table), "--out", str(out)])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(out.read_text())
    assert row["pixel_size_mm"] == 0.2 and row["pixel_size_source"] == "csv"


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--pixel-size", "-1"], "positive"), (["--out", "x.txt"], ".csv or .json"), (["--crop-mode", "six"], "six")],
)
def test_cli_refuses_bad_options(phantom_png, args, message):
    res = CliRunner().invoke(app, ["measure", str(phantom_png), *args])
    assert res.exit_code == 2
    assert message in res.output


@pytest.mark.parametrize("mode", ["full", "corners+full"])
def test_crop_modes_agree_on_a_clear_phantom(model_path, phantom_png, mode):
    from fetalhc.pipeline import PipelineConfig

    a = fetalhc.measure(phantom_png, 0.15)
    b = fetalhc.measure(phantom_png, 0.15, config=PipelineConfig(crop_mode=mode, flips=True))
    assert b.hc_mm == pytest.approx(a.hc_mm, rel=0.03)


def test_dicom_cine_gives_one_row_per_frame_with_its_own_pixel_size(model_path, tmp_path):
    from dicom_builder import us_region
    from test_dicom import SECRET, write_dicom

    frames = np.stack([make_phantom(540, 800, TRUTH, seed=s)[0] for s in (1, 2)])
    p = write_dicom(tmp_path / "cine.dcm", frames, SequenceOfUltrasoundRegions=[us_region((0, 0, 799, 539),
                                                                                       (0.015, 0.015))])
    out = tmp_path / "r.csv"
    res = CliRunner().invoke(app, ["measure", str(p), "--out", str(out), "--overlay-dir", str(tmp_path / "ov")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    assert [r["frame"] for r in rows] == ["0", "1"]
    assert {r["pixel_size_source"] for r in rows} == {"dicom:SequenceOfUltrasoundRegions"}
    assert float(rows[0]["pixel_size_mm"]) == pytest.approx(0.15)
    assert sorted(x.name for x in (tmp_path / "ov").iterdir()) == ["cine_frame0000_overlay.png",
                                                                   "cine_frame0001_overlay.png"]
    assert SECRET not in out.read_text() and SECRET not in res.output
    one = CliRunner().invoke(app, ["measure", str(p), "--frame", "1", "--pixel-size", "0.2", "--out", str(out)])
    assert one.exit_code == 0, one.output
    (row,) = list(csv.DictReader(out.open()))
    assert row["frame"] == "1" and row["pixel_size_source"] == "user"


def test_deid_command_writes_clean_copies_and_reports_bad_files(tmp_path, phantom_png):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    res = CliRunner().invoke(app, ["deid", str(phantom_png), str(bad), "--out", str(tmp_path / "clean")])
    assert res.exit_code == 1
    assert [p.name for p in (tmp_path / "clean").iterdir()] == ["phantom_deid.png"]
    assert "bad.png" in res.output
