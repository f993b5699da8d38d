"""Atomic output (fetalhc.io_utils): tables, PNGs, failures, one file mode for every output."""

import json
import os
import stat

import cv2
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


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_deid_copies_and_masks_get_the_same_mode_as_a_normal_file(tmp_path, umask):
    from dicom_builder import ramp, write_dicom
    from fetalhc.deid import deidentify_file

    old = os.umask(umask)
    try:
        normal = tmp_path / "normal.txt"
        normal.write_text("x")
        src = tmp_path / "in.png"
        cv2.imwrite(str(src), ramp())
        outputs = [
            io_utils.write_png(tmp_path / "out" / "a_mask.png", np.zeros((4, 4), np.uint8)),
            io_utils.write_table(tmp_path / "out" / "r.csv", [{"a": 1}], ["a"]),
            deidentify_file(src, tmp_path / "out" / "a_deid.png"),
            deidentify_file(write_dicom(tmp_path / "in.dcm", ramp()), tmp_path / "out" / "a_deid.dcm"),
        ]
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in outputs}
    assert set(modes.values()) == {0o666 & ~umask} == {stat.S_IMODE(normal.stat().st_mode)}, modes


def test_atomic_write_streams_and_syncs(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(io_utils.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    p = io_utils.atomic_write(tmp_path / "sub" / "x.bin", lambda f: (f.write(b"ab"), f.write(b"cd")))
    assert p.read_bytes() == b"abcd" and synced  # the file (and the folder) were fsynced
    with pytest.raises(ZeroDivisionError):
        io_utils.atomic_write(p, lambda f: (f.write(b"half"), 1 / 0))
    assert p.read_bytes() == b"abcd" and [q.name for q in p.parent.iterdir()] == ["x.bin"]
