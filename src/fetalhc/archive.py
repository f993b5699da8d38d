"""Measuring whole archives on Dask distributed: ``fetalhc measure IN... --out x.csv --workers N``
(a local cluster), ``--scheduler tcp://host:8786`` (an existing one) and ``--resume``.

The driver lists the inputs lazily (:func:`fetalhc.archive_inputs.iter_items`), skips files
already in the output, groups the rest into batches of ``batch_size`` files and keeps at most
``max_in_flight`` batches submitted (``distributed.as_completed``), so its memory does not grow
with the archive. Each completed batch is committed to the output at once
(:mod:`fetalhc.archive_io`). Workers load the model once per process
(:mod:`fetalhc.archive_worker`). A worker that dies is replaced by Dask's nanny and its tasks
run again; a batch whose workers keep dying (``KilledWorker``) is split into single files, and a
file that still kills its worker gets a row with that error.

Without a client (``--resume`` or ``.parquet`` alone) the same batches run in this process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any

from fetalhc.archive_inputs import ArchiveItem, iter_items
from fetalhc.archive_io import DoneSet, OutputError, Sink, open_sink
from fetalhc.archive_worker import ArchiveSettings, measure_batch
from fetalhc.pixel_size_csv import CsvEntry, lookup
from fetalhc.results import MeasureResult


@dataclass
class ArchiveSummary:
    """What one run did: files measured now, rows written, rows with an error, files skipped
    because the output already held them (``--resume``)."""

    files: int = 0
    rows: int = 0
    failed: int = 0
    skipped: int = 0


def _batches(items: Iterator[ArchiveItem], done: DoneSet, table: dict[str, CsvEntry] | None, size: int,
             summary: ArchiveSummary) -> Iterator[list[ArchiveItem]]:
    batch: list[ArchiveItem] = []
    for item in items:
        if item.file in done:
            summary.skipped += 1
            continue
        if table is not None:
            item = replace(item, entry=lookup(table, Path(item.file).name))
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _died_rows(item: ArchiveItem, reason: str) -> list[dict[str, Any]]:
    return [MeasureResult(file=item.file, status="failed",
                          error=f"{item.file}: the worker process died while measuring this file ({reason})").row()]


def run_archive(inputs: list[Path], out: Path, settings: ArchiveSettings, *, client: Any = None,
                resume: bool = False, pixel_size_table: dict[str, CsvEntry] | None = None, batch_size: int = 8,
                max_in_flight: int | None = None,
                on_batch: Callable[[int], None] | None = None) -> ArchiveSummary:
    """Measure every input file into ``out`` (.csv or .parquet), on ``client``'s cluster or here.

    Args:
        inputs: files and folders (folders are walked recursively, as ``measure`` does).
        out: the results table; with ``resume`` the files it already holds are skipped.
        settings: what each worker needs (model, pipeline settings, pixel size, output folders).
        client: a ``distributed.Client``; None measures in this process.
        batch_size: files per task.
        max_in_flight: batches submitted at once (default: twice the cluster's threads, at least 4).
        on_batch: called with the number of files of each committed batch (progress).
    """
    sink: Sink = open_sink(out, resume)
    summary = ArchiveSummary()
    batches = _batches(iter_items(inputs), sink.done, pixel_size_table, batch_size, summary)

    def commit(n_files: int, rows: list[dict[str, Any]]) -> None:
        sink.write_batch(rows)
        summary.files += n_files
        summary.rows += len(rows)
        summary.failed += sum(1 for r in rows if r.get("error"))
        if on_batch is not None:
            on_batch(n_files)

    try:
        if client is None:
            for batch in batches:
                commit(len(batch), measure_batch(batch, settings))
        else:
            _run_on_dask(client, batches, settings, commit, max_in_flight)
    except BaseException:
        sink.abandon()
        raise
    sink.close()
    return summary


def _run_on_dask(client: Any, batches: Iterator[list[ArchiveItem]], settings: ArchiveSettings,
                 commit: Callable[[int, list[dict[str, Any]]], None], max_in_flight: int | None) -> None:
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    if max_in_flight is None:
        max_in_flight = max(4, 2 * sum(client.nthreads().values()))
    pending: dict[str, list[ArchiveItem]] = {}
    ac = as_completed()

    def submit(batch: list[ArchiveItem]) -> None:
        fut = client.submit(measure_batch, batch, settings, pure=False)
        pending[fut.key] = batch
        ac.add(fut)

    for batch in islice(batches, max_in_flight):
        submit(batch)
    try:
        for fut in ac:
            batch = pending.pop(fut.key)
            try:
                rows = fut.result()
            except KilledWorker as e:
                if len(batch) > 1:  # find the file that kills workers: one task per file
                    for item in batch:
                        submit([item])
                    continue
                rows = _died_rows(batch[0], type(e).__name__)
            fut.release()
            commit(len(batch), rows)
            nxt = next(batches, None)
            if nxt is not None:
                submit(nxt)
    finally:
        for f in list(ac.futures):
            f.cancel()


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: of an existing cluster (``scheduler`` address) or of a local
    cluster of ``workers`` processes with one thread each."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:
        raise OutputError(f"--workers/--scheduler need the dask extra (pip install 'fetalhc[dask]'): {e}") from None
    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client
