"""Atomic file output: write to a temporary file in the target folder, then rename.

A crash or a bad file never leaves a half-written result behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + ``os.replace``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_png(path: str | Path, image: NDArray[np.generic]) -> Path:
    """Encode ``image`` (grey or BGR) as PNG and write it atomically."""
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    return atomic_write_bytes(path, buf.tobytes())


def csv_cell(value: Any) -> Any:
    """One CSV cell: ``None`` -> "", a list or tuple -> a JSON array (unambiguous whatever its
    items contain), anything else unchanged."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), ensure_ascii=False) if value else ""
    return value


def table_text(rows: Iterable[Mapping[str, Any]], columns: Iterable[str], fmt: str) -> str:
    """Rows as CSV text (``fmt="csv"``; list cells as JSON arrays) or a JSON list (``"json"``)."""
    cols = list(columns)
    table = [{c: r.get(c) for c in cols} for r in rows]
    if fmt == "json":
        return json.dumps(table, indent=2, allow_nan=False, default=str) + "\n"
    if fmt != "csv":
        raise ValueError(f"table format must be csv or json, got {fmt!r}")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in table:
        w.writerow({k: csv_cell(v) for k, v in r.items()})
    return buf.getvalue()


def write_table(path: str | Path, rows: Iterable[Mapping[str, Any]], columns: Iterable[str]) -> Path:
    """Write rows as CSV (``.csv``) or a JSON list (``.json``), atomically."""
    p = Path(path)
    if p.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"{p}: results file must end in .csv or .json")
    return atomic_write_text(p, table_text(rows, columns, p.suffix.lower()[1:]))


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it (so logs and summaries
    carry no machine-specific prefix), else as given."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
