"""Result tables that grow batch by batch and survive SIGKILL at any moment.

**CSV** (``--out x.csv``): one file. Each batch's rows are encoded into one buffer and written
at the committed end of the file with one ``pwrite`` + ``fsync``; only then is the new
committed length appended to the journal ``x.csv.journal`` (16-byte records: length, CRC-32,
magic; ``fsync``). ``--resume`` truncates ``x.csv`` to the last valid journal record, so a
batch (or a line) that was being written when the process died is dropped whole and its files
are measured again. A clean finish deletes the journal; a CSV without a journal is complete
(a trailing line without its newline, which fetalhc never leaves, is dropped all the same).

**Parquet** (``--out x.parquet``): a dataset folder of part files ``part-NNNNNN.parquet``, each
written to a hidden temporary file and renamed into place (readers and ``--resume`` never see
a half part). Read it with ``pandas.read_parquet("x.parquet")`` or
``pyarrow.parquet.read_table("x.parquet")``. Rows are buffered into parts of at least
``rows_per_part`` rows; a kill loses at most the buffered rows, which ``--resume`` measures again.

Which files are done is kept as a sorted array of 64-bit hashes of the ``file`` column
(:class:`DoneSet`, 8 bytes per file), so resuming a million-file run needs about 8 MB.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from fetalhc.io_utils import atomic_write_bytes, csv_cell
from fetalhc.results import TABLE_COLUMNS

_MAGIC = b"FHCJ"
_RECORD = struct.Struct("<QI4s")  # committed length (bytes), CRC-32 of the length, magic


class OutputError(ValueError):
    """The output cannot be written or resumed; the message names the file and the problem."""


def _key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "little")


class DoneSet:
    """Files already in the output, as sorted 64-bit hashes of their ``file`` value."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._h: NDArray[np.uint64] = np.unique(np.fromiter((_key_hash(k) for k in keys), np.uint64))

    def __len__(self) -> int:
        return int(self._h.size)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or self._h.size == 0:
            return False
        h = np.uint64(_key_hash(key))
        i = int(np.searchsorted(self._h, h))
        return i < self._h.size and self._h[i] == h


class Sink(Protocol):
    """Where completed batches go."""

    done: DoneSet

    def write_batch(self, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def close(self) -> None: ...

    def abandon(self) -> None: ...


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _csv_bytes(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], header: bool = False) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(columns)
    for r in rows:
        w.writerow([csv_cell(r.get(c)) for c in columns])  # as fetalhc.io_utils writes tables
    return buf.getvalue().encode("utf-8")


class CsvSink:
    """Append-only CSV with a commit journal (see the module docstring)."""

    def __init__(self, path: Path, resume: bool, columns: Sequence[str] = TABLE_COLUMNS) -> None:
        self.path, self.columns = Path(path), list(columns)
        self.journal = self.path.with_name(self.path.name + ".journal")
        header = _csv_bytes([], self.columns, header=True)
        if resume and (self.path.exists() or self.journal.exists()):
            self.committed = self._recover(header)
        else:
            self._start(header)
            self.committed = len(header)
        self.done = DoneSet(self._keys())
        self._fd = os.open(self.path, os.O_WRONLY)
        self._jfd = os.open(self.journal, os.O_WRONLY | os.O_APPEND)

    def _start(self, header: bytes) -> None:
        # journal first: a kill between the two leaves "header only" committed, i.e. a fresh start
        atomic_write_bytes(self.journal, _record(len(header)))
        atomic_write_bytes(self.path, header)

    def _recover(self, header: bytes) -> int:
        size = self.path.stat().st_size if self.path.exists() else 0
        if self.journal.exists():
            committed = _last_record(self.journal.read_bytes())
            if committed is None or (size < committed and committed == len(header)):
                self._start(header)  # killed while starting: nothing was committed
                return len(header)
            if size < committed:
                raise OutputError(f"{self.path}: shorter ({size} bytes) than its journal says ({committed}); "
                                  f"cannot resume, start again without --resume")
        else:
            if size == 0:
                self._start(header)
                return len(header)
            committed = _complete_lines_length(self.path)
            if committed < len(header):
                self._start(header)  # not even a whole header: nothing was committed
                return len(header)
        with self.path.open("rb") as f:
            first = f.readline()
        if first.rstrip(b"\r\n") != header.rstrip(b"\n"):
            raise OutputError(f"{self.path}: its columns differ from fetalhc's; cannot resume into it")
        os.truncate(self.path, committed)
        atomic_write_bytes(self.journal, _record(committed))  # drops any torn journal record
        return committed

    def _keys(self) -> Iterator[str]:
        with self.path.open(newline="", encoding="utf-8") as f:
            r = csv.reader(f)
            i = next(r).index("file")
            for row in r:
                if row:
                    yield row[i]

    def write_batch(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append ``rows`` and commit them: after this returns they survive a kill (and a power cut)."""
        data = memoryview(_csv_bytes(rows, self.columns))
        pos = self.committed
        while data:
            n = os.pwrite(self._fd, data, pos)
            data, pos = data[n:], pos + n
        os.fsync(self._fd)
        os.write(self._jfd, _record(pos))
        os.fsync(self._jfd)
        self.committed = pos

    def close(self) -> None:
        """Finish: the CSV is complete, so the journal goes."""
        self.abandon()
        self.journal.unlink(missing_ok=True)
        _fsync_dir(self.path.parent)

    def abandon(self) -> None:
        """Stop after an error: close the files, keep the journal (``--resume`` goes on from it)."""
        os.close(self._fd)
        os.close(self._jfd)


def _record(length: int) -> bytes:
    b = struct.pack("<Q", length)
    return _RECORD.pack(length, zlib.crc32(b), _MAGIC)


def _last_record(data: bytes) -> int | None:
    """The committed length of the last whole, valid record of a journal (None if there is none)."""
    for end in range(len(data) - len(data) % _RECORD.size, 0, -_RECORD.size):
        length, crc, magic = _RECORD.unpack(data[end - _RECORD.size:end])
        if magic == _MAGIC and crc == zlib.crc32(struct.pack("<Q", length)):
            return int(length)
    return None


def _complete_lines_length(path: Path) -> int:
    """Bytes up to and including the last newline of ``path``."""
    size = path.stat().st_size
    with path.open("rb") as f:
        pos = size
        while pos > 0:
            start = max(0, pos - 65536)
            f.seek(start)
            chunk = f.read(pos - start)
            k = chunk.rfind(b"\n")
            if k >= 0:
                return start + k + 1
            pos = start
    return 0


def arrow_schema() -> Any:
    """The Parquet schema of the results table: lists as Arrow lists, numbers as float64
    (``frame`` int64), the rest as text (docs/columns.md)."""
    import pyarrow as pa

    text = {"file", "pixel_size_source", "status", "crop_mode", "error", "sr_file"}

    def arrow_type(name: str) -> Any:
        if name == "flags":
            return pa.list_(pa.string())
        if name == "crop_hc_px":
            return pa.list_(pa.float64())
        if name == "frame":
            return pa.int64()
        return pa.string() if name in text else pa.float64()

    return pa.schema([(c, arrow_type(c)) for c in TABLE_COLUMNS])


class ParquetSink:
    """A Parquet dataset folder of part files, each renamed into place whole."""

    def __init__(self, path: Path, resume: bool, rows_per_part: int = 2048) -> None:
        import pyarrow.parquet as pq

        self.path, self.rows_per_part = Path(path), rows_per_part
        self.schema = arrow_schema()
        self._buffer: list[Mapping[str, Any]] = []
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"{self.path}: exists and is not a Parquet dataset folder")
        self.path.mkdir(parents=True, exist_ok=True)
        for tmp in self.path.glob(".part-*.tmp"):
            tmp.unlink()  # a part being written when the last run died
        parts = sorted(self.path.glob("part-*.parquet"))
        others = [p for p in self.path.iterdir() if p not in parts]
        if others:
            raise OutputError(f"{self.path}: holds files that are not fetalhc part files (e.g. {others[0].name})")
        if not resume:
            for p in parts:
                p.unlink()
            parts = []
        self._next = 1 + max((int(p.stem.split("-")[1]) for p in parts), default=-1)
        self.done = DoneSet(k for p in parts for k in pq.read_table(p, columns=["file"]).column("file").to_pylist())

    def write_batch(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self._buffer.extend(rows)
        if len(self._buffer) >= self.rows_per_part:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as the next part file (atomically)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._buffer:
            return
        table = pa.Table.from_pylist([{c: r.get(c) for c in TABLE_COLUMNS} for r in self._buffer],
                                     schema=self.schema)
        final = self.path / f"part-{self._next:06d}.parquet"
        tmp = self.path / f".{final.name}.tmp"
        pq.write_table(table, tmp)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(self.path)
        self._next += 1
        self._buffer = []

    def close(self) -> None:
        self.flush()

    def abandon(self) -> None:
        """Stop after an error: the buffered rows are whole, so they are kept too."""
        self.flush()


def open_sink(path: Path, resume: bool) -> CsvSink | ParquetSink:
    """The sink for ``--out``: ``.csv`` or ``.parquet``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return CsvSink(path, resume)
    if suffix == ".parquet":
        return ParquetSink(path, resume)
    raise OutputError(f"{path}: --out must end in .csv or .parquet for archive runs (--workers/--scheduler/--resume)")
