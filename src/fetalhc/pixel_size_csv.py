"""Reading pixel sizes (and optionally gestational ages) for many files from a CSV.

Accepted forms:

* HC18's ``filename,pixel size(mm),head circumference (mm)`` (extra columns ignored);
* a plain two-column ``filename,pixel_size_mm`` file, with or without a header;
* any header with a ``filename`` column, a pixel-size column (``pixel size(mm)``,
  ``pixel_size_mm`` or ``pixel_size``) and optionally a ``ga_weeks`` column.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from fetalhc.clinical import validate_ga_weeks
from fetalhc.image import validate_pixel_size

_PIXEL_COLS = ("pixel size(mm)", "pixel_size_mm", "pixel_size", "pixel size (mm)")
_GA_COLS = ("ga_weeks", "ga", "gestational_age_weeks")


@dataclass(frozen=True)
class CsvEntry:
    """One CSV row: pixel size in mm and, where given, gestational age in weeks."""

    pixel_size_mm: float | None
    ga_weeks: float | None = None


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def read_pixel_size_csv(path: str | Path) -> dict[str, CsvEntry]:
    """Map file name (and file stem) to :class:`CsvEntry`. Errors name the file and line."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: pixel-size CSV not found")
    with p.open(newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{p}: pixel-size CSV is empty")
    first = [c.strip() for c in rows[0]]
    file_col, px_col, ga_col = 0, 1, None
    body = rows
    if len(first) < 2:
        raise ValueError(f"{p}: line 1: expected at least two columns (file name, pixel size in mm)")
    if not _is_number(first[1]):  # a header
        lower = [c.lower() for c in first]
        body = rows[1:]
        file_col = lower.index("filename") if "filename" in lower else 0
        px = [i for i, c in enumerate(lower) if c in _PIXEL_COLS]
        if not px:
            raise ValueError(f"{p}: no pixel-size column; expected one of {', '.join(_PIXEL_COLS)}")
        px_col = px[0]
        ga = [i for i, c in enumerate(lower) if c in _GA_COLS]
        ga_col = ga[0] if ga else None
    out: dict[str, CsvEntry] = {}
    start = 2 if body is not rows else 1
    for n, r in enumerate(body, start=start):
        cells = [c.strip() for c in r]
        if len(cells) <= max(file_col, px_col):
            raise ValueError(f"{p}: line {n}: expected a file name and a pixel size")
        px_mm = validate_pixel_size(cells[px_col], f"{p}: line {n}") if cells[px_col] else None
        ga_w = None
        if ga_col is not None and ga_col < len(cells) and cells[ga_col]:
            try:
                ga_w = validate_ga_weeks(cells[ga_col])
            except ValueError as e:
                raise ValueError(f"{p}: line {n}: {e}") from None
        entry = CsvEntry(px_mm, ga_w)
        name = Path(cells[file_col]).name
        out[name] = entry
        out.setdefault(Path(name).stem, entry)
    return out


def lookup(table: dict[str, CsvEntry], file_name: str) -> CsvEntry | None:
    """Entry for a file by its name, else by its stem (``#frame N`` suffixes ignored)."""
    base = file_name.split("#", 1)[0]
    return table.get(base) or table.get(Path(base).stem)
