"""Atomic file output: write to a temporary file in the target folder, then rename.

A crash or a bad file never leaves a half-written result behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
from numpy.typing import NDArray


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write a file atomically: ``write(f)`` fills a temporary file in the target folder, which is
    flushed, fsynced and moved onto ``path`` with ``os.replace``; returns ``path``.

    The result has the mode of any new file (``0o666`` less the umask, so 0644 under the usual
    umask 022), whatever writes it. On any failure the temporary file is removed and an existing
    ``path`` is left as it was.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = atomic_write(Path(d) / "a.txt", lambda f: f.write(b"hello"))
    ...     p.read_bytes(), sorted(x.name for x in Path(d).iterdir())
    (b'hello', ['a.txt'])
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = p.parent / f".{p.name}.{secrets.token_hex(6)}.tmp"
        try:
            # os.open applies the umask to 0o666 as open() does for a normal file (mkstemp would give 0600)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(p.parent)
    return p


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable where the platform allows fsync on a folder (best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically (see :func:`atomic_write`)."""
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
