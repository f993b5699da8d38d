"""Many files: pixel sizes and their precedence, flags about that choice, DICOM cine frames."""

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

import fetalhc
from conftest import PHANTOM_TRUTH
from fetalhc.batch import BatchOptions, resolve_inputs
from fetalhc.cli import app
from fetalhc.flags import flag_code
from fetalhc.image import UltrasoundImage
from fetalhc.phantom import make_phantom
from fetalhc.pixel_size_csv import CsvEntry

IMG = UltrasoundImage(np.zeros((4, 4), np.uint8), name="a.png")
DICOM_IMG = UltrasoundImage(np.zeros((4, 4), np.uint8), 0.15, "dicom:PixelSpacing", name="b.dcm")

RESOLVE_CASES = [
    # (image, options, expected pixel size, expected source, expected GA, expected flag codes)
    (IMG, BatchOptions(), None, "none", None, []),
    (IMG, BatchOptions(pixel_size_mm=0.2), 0.2, "user", None, []),
    (IMG, BatchOptions(pixel_size_table={"a.png": CsvEntry(0.1, 21.0)}), 0.1, "csv", 21.0, []),
    (IMG, BatchOptions(pixel_size_table={"other.png": CsvEntry(0.1)}), None, "none", None,
     ["pixel_size_not_in_csv"]),
    (IMG, BatchOptions(pixel_size_mm=0.2, pixel_size_table={"a.png": CsvEntry(0.1)}), 0.2, "user", None,
     ["pixel_size_overridden"]),
    (IMG, BatchOptions(pixel_size_mm=0.1, pixel_size_table={"a.png": CsvEntry(0.1)}), 0.1, "user", None, []),
    (DICOM_IMG, BatchOptions(), 0.15, "dicom:PixelSpacing", None, []),
    (DICOM_IMG, BatchOptions(pixel_size_mm=0.2), 0.2, "user", None, ["pixel_size_overridden"]),
    (DICOM_IMG, BatchOptions(ga_weeks=30.0, pixel_size_table={"b.dcm": CsvEntry(None, 21.0)}), 0.15,
     "dicom:PixelSpacing", 30.0, []),
]


@pytest.mark.parametrize(("img", "opts", "size", "source", "ga", "codes"), RESOLVE_CASES)
def test_pixel_size_precedence_and_its_flags(img, opts, size, source, ga, codes):
    out, ga_out, flags = resolve_inputs(img, opts)
    assert out.pixel_size_mm == size and out.pixel_size_source == source
    assert ga_out == ga
    assert [flag_code(f) for f in flags] == codes


def test_override_flag_is_informative_and_says_what_was_replaced(model_path, phantom_png):
    table = {"phantom.png": CsvEntry(0.1)}
    from fetalhc.batch import measure_file
    from fetalhc.pipeline import Pipeline

    (r,) = measure_file(Pipeline(model_path), phantom_png, BatchOptions(pixel_size_mm=0.15, pixel_size_table=table),
                        set())
    (flag,) = [f for f in r.flags if f.startswith("pixel_size_overridden")]
    assert "0.1 mm from the CSV" in flag
    assert r.status == "ok"  # informative: the user chose it


@pytest.fixture
def cine(tmp_path):
    from dicom_builder import us_region
    from test_dicom import write_dicom

    frames = np.stack([make_phantom(540, 800, PHANTOM_TRUTH, seed=s)[0] for s in (1, 2)])
    return write_dicom(tmp_path / "cine.dcm", frames,
                       SequenceOfUltrasoundRegions=[us_region((0, 0, 799, 539), (0.015, 0.015))])


def test_dicom_cine_gives_one_row_per_frame_with_its_own_pixel_size(model_path, cine, tmp_path):
    from test_dicom import SECRET

    out = tmp_path / "r.csv"
    res = CliRunner().invoke(app, ["measure", str(cine), "--out", str(out), "--overlay-dir", str(tmp_path / "ov")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    assert [r["frame"] for r in rows] == ["0", "1"]
    assert {r["pixel_size_source"] for r in rows} == {"dicom:SequenceOfUltrasoundRegions"}
    assert float(rows[0]["pixel_size_mm"]) == pytest.approx(0.15)
    assert sorted(x.name for x in (tmp_path / "ov").iterdir()) == ["cine_frame0000_overlay.png",
                                                                   "cine_frame0001_overlay.png"]
    assert SECRET not in out.read_text() and SECRET not in res.output
    one = CliRunner().invoke(app, ["measure", str(cine), "--frame", "1", "--pixel-size", "0.2", "--out", str(out)])
    assert one.exit_code == 0, one.output
    (row,) = list(csv.DictReader(out.open()))
    assert row["frame"] == "1" and row["pixel_size_source"] == "user"


def test_python_api_and_cli_agree_on_cine_files(model_path, cine, tmp_path):
    out = tmp_path / "r.csv"
    assert CliRunner().invoke(app, ["measure", str(cine), "--out", str(out)]).exit_code == 0
    cli_hcs = [float(r["hc_mm"]) for r in csv.DictReader(out.open())]
    api = fetalhc.measure_file(cine)
    assert [r.frame for r in api] == [0, 1]
    assert [round(r.hc_mm, 4) for r in api] == cli_hcs
    with pytest.raises(ValueError, match="frame="):
        fetalhc.measure(cine)
    assert round(fetalhc.measure(cine, frame=1).hc_mm, 4) == cli_hcs[1]
