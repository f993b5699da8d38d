"""Listing an archive lazily, and naming each file's outputs from its path alone.

:func:`iter_input_files` yields the same files, in the same order, as :func:`fetalhc.reader.iter_inputs`
but one folder at a time, so the driver never holds the whole archive's file list (only the
names in the folder being read). :func:`iter_items` adds what a worker needs: the absolute path
to read and a deterministic output name.

Output names (masks, overlays, reports) depend on the input path only, never on which worker
or in which order a file was measured:

* the folder of a file below the common root of all inputs is mirrored below ``--mask-dir``
  etc. (``scans/2024/a.png`` measured as ``measure scans/`` -> ``masks/2024/a_mask.png``);
* the stem is the file's stem; when two input files in one folder share a stem (``a.png`` and
  ``a.jpg``) both keep their suffix in it (``a_png``, ``a_jpg``);
* a DICOM cine frame adds ``_frameNNNN`` (as in the serial path).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fetalhc.pixel_size_csv import CsvEntry
from fetalhc.reader import is_input_file


@dataclass(frozen=True)
class ArchiveItem:
    """One input file as the driver sends it to a worker.

    Attributes:
        file: the path as given or found (the ``file`` column and the key ``--resume`` uses).
        abs_path: the absolute path a worker reads (workers may run in another folder).
        out_subdir: POSIX folder below the mask/overlay/report folders ("" for the top).
        stem: output file stem, unique among the inputs (see the module docstring).
        entry: this file's row of the pixel-size CSV, if any.
    """

    file: str
    abs_path: str
    out_subdir: str
    stem: str
    entry: CsvEntry | None = None


def _is_input(entry: os.DirEntry[str]) -> bool:
    try:
        is_file = entry.is_file()  # follows symlinks, as Path.is_file does
    except OSError:
        return False
    return is_file and is_input_file(Path(entry.path))  # the reader's rule: DICOM without a suffix too


def _walk(folder: Path) -> Iterator[tuple[Path, list[tuple[str, str]]]]:
    """(folder, [(input file name, output stem), ...]) for ``folder`` and its subfolders, depth
    first, in the order of sorted paths (a subfolder comes where its name sorts among the
    files). Symlinked folders are not followed (as ``Path.rglob`` in Python 3.11)."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    inputs = [e.name for e in entries if not e.is_dir(follow_symlinks=False) and _is_input(e)]
    stem = dict(zip(inputs, _stems(inputs), strict=True))
    group: list[tuple[str, str]] = []
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            if group:
                yield folder, group
                group = []
            yield from _walk(folder / e.name)
        elif e.name in stem:
            group.append((e.name, stem[e.name]))
    if group:
        yield folder, group


def _stems(names: list[str]) -> list[str]:
    """Output stems of sibling input files: the file stem, plus the suffix where stems clash."""
    stems = [os.path.splitext(n)[0] for n in names]
    count = Counter(stems)
    return [s if count[s] == 1 else f"{s}_{os.path.splitext(n)[1].lstrip('.')}" for s, n in zip(stems, names,
                                                                                                  strict=True)]


def common_root(inputs: Iterable[Path]) -> Path:
    """The deepest folder holding every input (a folder input counts as itself, a file as its parent)."""
    bases = [os.path.abspath(p if p.is_dir() else p.parent) for p in inputs]
    return Path(os.path.commonpath(bases)) if bases else Path.cwd()


def _subdir(folder: Path, root: Path) -> str:
    rel = os.path.relpath(os.path.abspath(folder), root)
    return "" if rel == "." else Path(rel).as_posix()


def iter_items(inputs: list[Path]) -> Iterator[ArchiveItem]:
    """Every input file as an :class:`ArchiveItem`, lazily, in ``cli.collect_inputs`` order.

    Folder names of a walk are mirrored with the clash rule applied to the files of each
    folder; files given directly are checked for clashes against the other files given in
    the same folder. A path given that does not exist is passed on (its row gets the error).
    """
    root = common_root(inputs)
    stem_of_given: dict[Path, str] = {}
    given = [p for p in inputs if not p.is_dir()]
    by_parent: dict[str, list[Path]] = {}
    for p in given:
        by_parent.setdefault(os.path.abspath(p.parent), []).append(p)
    for files in by_parent.values():
        unique = sorted({p.name for p in files})
        stem_of_given.update({p: dict(zip(unique, _stems(unique), strict=True))[p.name] for p in files})
    for p in inputs:
        if p.is_dir():
            for folder, group in _walk(p):
                sub = _subdir(folder, root)
                for name, stem in group:
                    f = folder / name
                    yield ArchiveItem(str(f), os.path.abspath(f), sub, stem)
        else:
            yield ArchiveItem(str(p), os.path.abspath(p), _subdir(p.parent, root), stem_of_given[p])


def iter_input_files(inputs: list[Path]) -> Iterator[Path]:
    """Lazy ``cli.collect_inputs``: the same paths in the same order, one folder in memory at a time."""
    for item in iter_items(inputs):
        yield Path(item.file)
