"""Downloads of one reading, built in memory: CSV, JSON, the one-page PDF report and the DICOM SR.

Nothing is written to disk: the report page is :func:`fetalhc.report.render_report` (the page
``write_report`` saves) saved into a byte buffer; the SR comes from :mod:`fetalhc.sr` when that
module is installed.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fetalhc.io_utils import table_text
from fetalhc.results import TABLE_COLUMNS, MeasureResult

#: Columns of the CSV download: the results table's plus whether a person corrected the ellipse.
EXPORT_COLUMNS = (*TABLE_COLUMNS, "edited")
REPORT_STEM = "upload"


class SrUnavailable(RuntimeError):
    """fetalhc.sr (DICOM SR output) is not installed in this build."""


def export_row(res: MeasureResult, edited: bool) -> dict[str, Any]:
    """The results-table row of ``res`` plus ``edited`` (and any extra columns the row carries)."""
    row = res.row()
    row["edited"] = edited
    return row


def csv_bytes(row: dict[str, Any]) -> bytes:
    """One header line and one row (UTF-8), written as ``fetalhc measure`` writes its table
    (:func:`fetalhc.io_utils.table_text`: lists as JSON arrays)."""
    cols = list(EXPORT_COLUMNS) + [k for k in row if k not in EXPORT_COLUMNS]
    return table_text([row], cols, "csv").encode("utf-8")


def json_bytes(row: dict[str, Any], flags: list[str], automatic: dict[str, Any] | None, model: dict[str, str]) -> bytes:
    """The reading as JSON: ``result`` (the row), ``flags`` (a list), ``edited``, the automatic
    row when edited, and the model's name and SHA-256."""
    doc = {"result": row, "flags": flags, "edited": bool(row.get("edited")), "automatic_result": automatic,
           "model": model}
    return (json.dumps(doc, indent=2, allow_nan=False, default=str) + "\n").encode("utf-8")


def pdf_bytes(res: MeasureResult, pixels: NDArray[np.generic]) -> bytes:
    """The one-page PDF report of ``res`` over the de-identified ``pixels`` (no file names, no
    creation date)."""
    from fetalhc.report import render_report

    fig = render_report(res, pixels, REPORT_STEM)
    buf = io.BytesIO()
    fig.savefig(buf, format="pdf", metadata={"Title": "fetalhc report", "Author": None, "Creator": "fetalhc",
                                             "CreationDate": None})
    return buf.getvalue()


def sr_available() -> bool:
    try:
        import fetalhc.sr  # noqa: F401
    except ImportError:
        return False
    return True


def sr_bytes(res: MeasureResult, source: Any, edited: bool, frame: int | None) -> bytes:
    """A DICOM Comprehensive SR of ``res`` for the DICOM dataset ``source`` (:mod:`fetalhc.sr`).

    Raises :class:`SrUnavailable` when fetalhc.sr is missing and ``ValueError`` when the result
    has no ellipse in millimetres to report.
    """
    try:
        from fetalhc.sr import build_sr, sr_content_from_result
    except ImportError:
        raise SrUnavailable("SR support not installed: this build of fetalhc has no fetalhc.sr module") from None
    if res.hc_mm is None or res.ellipse is None:
        raise ValueError("no head circumference in millimetres to report (no head found or no pixel size)")
    content = sr_content_from_result(res, edited=edited)
    sr = build_sr(source, content, frame=frame)
    buf = io.BytesIO()
    sr.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
