"""The command line: measure, its table and outputs, options, help text and exit codes."""

import csv
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fetalhc.cli import app, print_rows, summary_line
from fetalhc.results import TABLE_COLUMNS


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
    assert rows[0]["crop_mode"] == "full@0.5+zoomflip" and float(rows[0]["hc_low_mm"]) <= float(rows[0]["hc_mm"])
    assert "broken.png" in rows[1]["error"] and rows[1]["hc_mm"] == "" and rows[1]["status"] == "failed"
    mask = cv2.imread(str(masks / "phantom_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (540, 800) and set(np.unique(mask)) <= {0, 255}
    assert (overlays / "phantom_overlay.png").is_file()
    leftovers = [p.name for d in (tmp_path, masks, overlays) for p in d.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    assert "measured 2 files, 2 rows: 1 ok, 0 to review, 1 failed" in res.output


def test_cli_json_and_csv_pixel_sizes(model_path, phantom_png, tmp_path):
    table = tmp_path / "px.csv"
    table.write_text("filename,pixel size(mm),head circumference (mm)\nphantom.png,0.2,0\n")
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["measure", str(phantom_png), "--pixel-size-csv", str(table), "--out", str(out)])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(out.read_text())
    assert row["pixel_size_mm"] == 0.2 and row["pixel_size_source"] == "csv"
    assert isinstance(row["flags"], list) and isinstance(row["crop_hc_px"], list)


def test_out_dash_writes_the_table_to_stdout(model_path, phantom_png):
    res = CliRunner().invoke(app, ["measure", str(phantom_png), "--pixel-size", "0.15", "--out", "-"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(line for line in res.stdout.splitlines() if not line.startswith("measured ")))
    assert len(rows) == 1 and float(rows[0]["hc_mm"]) > 0
    js = CliRunner().invoke(app, ["measure", str(phantom_png), "--pixel-size", "0.15", "--out", "-",
                                  "--format", "json"])
    assert json.loads(js.stdout[:js.stdout.rindex("]") + 1])[0]["hc_mm"] == float(rows[0]["hc_mm"])


def test_screen_table_shows_hc_with_one_decimal_status_and_reasons():
    rows = [{"file": "/x/a_long_file_name_of_a_scan.png", "hc_mm": 220.91234, "bpd_mm": 55.0, "ofd_mm": 70.0,
             "status": "review", "flags": ["hc_uncertain: band 9 mm > 8 mm", "cephalic_index_out_of_range: CI 90"]},
            {"file": "b.png", "hc_mm": None, "hc_px": 812.4, "status": "review", "flags": []},
            {"file": "c.png", "status": "failed", "error": "c.png: file is empty", "flags": []}]
    from rich.console import Console

    con = Console(record=True, width=160)
    print_rows(rows, con)
    text = con.export_text()
    assert "220.9 mm" in text and "…" not in text
    assert "hc_uncertain" in text and "cephalic_index" not in text  # review reasons only
    assert "812 px" in text and "file is empty" in text
    assert "a_long_file_name_of" in text


def test_summary_line():
    rows = [{"status": "ok"}, {"status": "review"}, {"status": "review"}, {"status": "failed"}]
    assert summary_line(3, rows) == "measured 3 files, 4 rows: 1 ok, 2 to review, 1 failed"


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--pixel-size", "-1"], "positive"), (["--out", "x.txt"], ".csv or .json"), (["--crop-mode", "six"], "six"),
     (["--ga-weeks", "99"], "between"), (["--format", "xml", "--out", "-"], "csv or json")],
)
def test_cli_refuses_bad_options(phantom_png, args, message):
    res = CliRunner().invoke(app, ["measure", str(phantom_png), *args])
    assert res.exit_code == 2
    assert message in res.output


def test_version_and_python_dash_m():
    from fetalhc import __version__

    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"fetalhc {__version__}"
    p = subprocess.run([sys.executable, "-m", "fetalhc", "--version"], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == f"fetalhc {__version__}"


@pytest.mark.parametrize(("command", "extra"), [("train", "[train]"), ("serve", "[serve]")])
def test_help_shows_install_extras_verbatim(command, extra):
    res = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert f"pip install -e '.{extra}'" in res.output


def test_deid_command_writes_clean_copies_and_reports_bad_files(tmp_path, phantom_png):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    res = CliRunner().invoke(app, ["deid", str(phantom_png), str(bad), "--out", str(tmp_path / "clean")])
    assert res.exit_code == 1
    assert [p.name for p in (tmp_path / "clean").iterdir()] == ["phantom_deid.png"]
    assert "bad.png" in res.output


def test_citation_file_is_valid_and_matches_the_version():
    from pathlib import Path

    yaml = pytest.importorskip("yaml")
    import tomllib

    from fetalhc import __version__

    root = Path(__file__).resolve().parents[1]
    cff = yaml.safe_load((root / "CITATION.cff").read_text())
    assert cff["cff-version"].startswith("1.2") and cff["version"] == __version__
    assert any("10.5281/zenodo.1327317" == r.get("doi") for r in cff["references"])  # HC18 cited
    assert tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"] == __version__


def test_non_ultrasound_dicom_is_refused_unless_forced(model_path, tmp_path):
    from dicom_builder import write_us_dicom
    from fetalhc.phantom import make_phantom

    img, _ = make_phantom(270, 400, seed=2)
    (tmp_path / "scans").mkdir()
    ct = write_us_dicom(tmp_path / "scans" / "noext", img, Modality="CT")  # no suffix: found by its preamble
    out = tmp_path / "r.csv"
    res = CliRunner().invoke(app, ["measure", str(tmp_path / "scans"), "--pixel-size", "0.2", "--out", str(out)])
    assert res.exit_code == 1
    (row,) = list(csv.DictReader(out.open()))
    assert row["file"] == str(ct) and "modality is CT" in row["error"] and row["status"] == "failed"
    forced = CliRunner().invoke(app, ["measure", str(ct), "--pixel-size", "0.2", "--force", "--out", str(out)])
    assert forced.exit_code == 0, forced.output
    (row,) = list(csv.DictReader(out.open()))
    assert float(row["hc_mm"]) > 0 and row["error"] == ""


def test_progress_bar_on_a_terminal_summary_line_always(model_path, phantom_png, monkeypatch):
    import io

    from rich.console import Console

    from fetalhc import cli

    buf = io.StringIO()
    monkeypatch.setattr(cli, "err", Console(file=buf, force_terminal=True, width=100))
    res = CliRunner().invoke(app, ["measure", str(phantom_png), "--pixel-size", "0.15", "--out", "-"])
    assert res.exit_code == 0, res.output
    import re

    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue())  # without the terminal's colour codes
    assert "measuring" in text and "━" in text and "/1" in text  # the bar, with its count
    assert "measured 1 file, 1 row" in text
    buf.truncate(0)
    monkeypatch.setattr(cli, "err", Console(file=buf, force_terminal=False, width=100))
    CliRunner().invoke(app, ["measure", str(phantom_png), "--pixel-size", "0.15", "--out", "-"])
    assert "━" not in buf.getvalue() and "measured 1 file, 1 row" in buf.getvalue()


def test_train_passes_its_options_to_the_training_loop(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import fetalhc.train.loop as loop

    seen = []
    monkeypatch.setattr(loop, "train", lambda cfg: seen.append(cfg) or tmp_path / "last.pt")
    res = CliRunner().invoke(app, ["train", "--out-dir", str(tmp_path), "--data-dir", str(tmp_path),
                                   "--arch", "unet-effl2", "--seed", "3", "--epochs", "2"])
    assert res.exit_code == 0, res.output
    (cfg,) = seen
    assert (cfg.arch, cfg.seed, cfg.epochs, cfg.out_dir) == ("unet-effl2", 3, 2, str(tmp_path))
