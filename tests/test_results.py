"""The result record and the table: one assembly, units in names, unambiguous list cells."""

import csv
import io

import numpy as np

from fetalhc.ellipse import Ellipse
from fetalhc.flags import decode_flags
from fetalhc.io_utils import table_text
from fetalhc.results import RENAMED_COLUMNS, TABLE_COLUMNS, MeasureResult, failure

FLAGS = ("source_note: spacing 0.1; regions 0.2", "hc_uncertain: band 9.0 mm > 8 mm")


def test_row_has_every_column_in_order_and_flattens_the_ellipse():
    r = MeasureResult(file="a.png", ellipse=Ellipse(1.0, 2.0, 30.123456, 20.0, 15.0), hc_mm=123.456789,
                      flags=FLAGS, crop_hc_px=(800.123, 801.0))
    row = r.row()
    assert tuple(row) == TABLE_COLUMNS
    assert row["center_x_px"] == 1.0 and row["semi_axis_a_px"] == 30.1235 and row["angle_deg"] == 15.0
    assert row["hc_mm"] == 123.4568
    assert row["flags"] == list(FLAGS) and row["crop_hc_px"] == [800.12, 801.0]
    assert "probability" not in row and "mask" not in row and "thresholds" not in row


def test_flags_with_semicolons_survive_the_csv_round_trip():
    text = table_text([MeasureResult(file="a.png", flags=FLAGS).row()], TABLE_COLUMNS, "csv")
    (row,) = csv.DictReader(io.StringIO(text))
    assert decode_flags(row["flags"]) == FLAGS
    assert decode_flags(row["crop_hc_px"]) == ()


def test_old_semicolon_cells_still_decode():
    assert decode_flags("a: x;b: y") == ("a: x", "b: y")


def test_failure_record():
    r = failure("x.png", "x.png: file is empty", frame=3)
    assert r.status == "failed" and not r.ok and r.frame == 3 and r.ellipse is None and r.semi_axis_a_px is None


def test_renamed_columns_are_gone_and_their_new_names_present():
    for old, new in RENAMED_COLUMNS.items():
        assert old not in TABLE_COLUMNS and new in TABLE_COLUMNS


def test_arrays_stay_out_of_equality():
    a = MeasureResult(file="a", mask=np.zeros((2, 2), np.uint8))
    assert a == MeasureResult(file="a")
