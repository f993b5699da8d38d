import json

import numpy as np
import pytest

from fetalhc import io_utils


def test_table_csv_and_json(tmp_path):
    rows = [{"file": "a", "hc_mm": 1.5, "error": None}]
    io_utils.write_table(tmp_path / "r.csv", rows, ["file", "hc_mm", "error"])
    assert (tmp_path / "r.csv").read_text() == "file,hc_mm,error\na,1.5,\n"
    io_utils.write_table(tmp_path / "r.json", rows, ["file", "hc_mm", "error"])
    assert json.loads((tmp_path / "r.json").read_text()) == rows
    with pytest.raises(ValueError, match=".csv or .json"):
        io_utils.write_table(tmp_path / "r.txt", rows, ["file"])


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(io_utils.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        io_utils.write_png(target, np.zeros((4, 4), np.uint8))
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
