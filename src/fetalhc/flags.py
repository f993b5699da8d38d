"""Flags: ``"code: reason"`` strings that say why a reading needs a second look.

A flag's code is a stable identifier (``no_head_found``, ``hc_uncertain``, ...); its reason is
free text for people. Results keep flags as a tuple of strings; the CSV table writes them as one
JSON array (see :func:`encode_flags`), so a reason may contain any character.

>>> make_flag("hc_uncertain", "band 9.1 mm > 8 mm")
'hc_uncertain: band 9.1 mm > 8 mm'
>>> flag_code("hc_uncertain: band 9.1 mm > 8 mm")
'hc_uncertain'
>>> decode_flags(encode_flags(("a: x; y", "b: z")))
('a: x; y', 'b: z')
"""

from __future__ import annotations

import json


def make_flag(code: str, reason: str) -> str:
    """The flag text ``"code: reason"``."""
    return f"{code}: {reason}"


def flag_code(flag: str) -> str:
    """The code of a ``"code: reason"`` flag."""
    return flag.split(":", 1)[0].strip()


def encode_flags(flags: tuple[str, ...] | list[str]) -> str:
    """One table cell for a list of flags: a JSON array ("" when there are none)."""
    return json.dumps(list(flags), ensure_ascii=False) if flags else ""


def decode_flags(cell: object) -> tuple[str, ...]:
    """The flags of a table cell written by :func:`encode_flags` (or a list, as JSON output holds).

    A cell that is not a JSON array is read the old way (before 0.2: joined by ';').
    """
    if cell is None:
        return ()
    if isinstance(cell, (list, tuple)):
        return tuple(str(f) for f in cell)
    text = str(cell).strip()
    if not text:
        return ()
    if text.startswith("["):
        try:
            return tuple(str(f) for f in json.loads(text))
        except json.JSONDecodeError:
            pass
    return tuple(f for f in text.split(";") if f.strip())
