"""What runs inside a Dask worker (or in-process): measure a batch of files into table rows.

The model is loaded once per worker process: :func:`worker_pipeline` keeps a module-level
cache keyed by model path, pipeline settings and thread count, and :func:`model_load_count`
says how many times this process loaded a model (read it on every worker with
``client.run(model_load_count)``).

:func:`measure_item` runs the serial path's :func:`fetalhc.batch.measure_file` on one file,
with output names taken from the :class:`ArchiveItem`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fetalhc.archive_inputs import ArchiveItem
from fetalhc.batch import BatchOptions, measure_file
from fetalhc.image import ImageLoadError
from fetalhc.pipeline import Pipeline, PipelineConfig
from fetalhc.results import MeasureResult, failure


@dataclass(frozen=True)
class ArchiveSettings:
    """Everything a worker needs besides the files; paths are absolute (workers may run elsewhere).

    Attributes:
        model_path: ONNX model (None: the shipped one).
        config: pipeline settings (crop mode, Q, flips, de-identification).
        pixel_size_mm: pixel size in mm for every file (overrides CSV and DICOM sizes).
        ga_weeks: gestational age in weeks for every file (a CSV ``ga_weeks`` fills the rest).
        frame: DICOM cine frame to measure (None: every frame).
        mask_dir, overlay_dir, report_dir, sr_dir: output folders (None: not written).
        csv_given: a pixel-size CSV was given (files missing from it are flagged).
        force: read DICOM of another modality than ultrasound.
        ort_threads: ONNX Runtime threads per worker (1 when each worker has one core).
    """

    model_path: str | None = None
    config: PipelineConfig = field(default_factory=PipelineConfig)
    pixel_size_mm: float | None = None
    ga_weeks: float | None = None
    frame: int | None = None
    mask_dir: str | None = None
    overlay_dir: str | None = None
    report_dir: str | None = None
    sr_dir: str | None = None
    csv_given: bool = False
    force: bool = False
    ort_threads: int = 1


_CACHE: dict[tuple[str | None, PipelineConfig, int], Pipeline] = {}
_LOCK = threading.Lock()
_LOADS = 0


def worker_pipeline(settings: ArchiveSettings) -> Pipeline:
    """This process's pipeline for ``settings``, loading the model on first use only."""
    global _LOADS
    key = (settings.model_path, settings.config, settings.ort_threads)
    with _LOCK:
        pipe = _CACHE.get(key)
        if pipe is None:
            if settings.ort_threads == 1:
                import cv2

                cv2.setNumThreads(1)  # one core per worker: no OpenCV thread pool either
            pipe = Pipeline(settings.model_path, settings.config, threads=settings.ort_threads)
            _CACHE[key] = pipe
            _LOADS += 1
        return pipe


def model_load_count() -> int:
    """How many models this process has loaded (for tests: one per worker process)."""
    return _LOADS


def _error_text(e: Exception, item: ArchiveItem) -> str:
    """The error as the serial path words it: with the path as given, not the worker's absolute one."""
    text = str(e).replace(item.abs_path, item.file)
    if isinstance(e, (ImageLoadError, ValueError, OSError)):
        return text
    return f"{item.file}: {type(e).__name__}: {text}"


def item_options(item: ArchiveItem, settings: ArchiveSettings) -> BatchOptions:
    """The serial path's options for one file: its CSV row (looked up on the driver) as a
    one-row table, and the output folders below ``item.out_subdir``."""
    table = None
    if settings.csv_given:
        table = {Path(item.file).name: item.entry} if item.entry is not None else {}

    def sub(d: str | None) -> Path | None:
        return None if d is None else Path(d) / item.out_subdir

    return BatchOptions(pixel_size_mm=settings.pixel_size_mm, pixel_size_table=table, ga_weeks=settings.ga_weeks,
                        mask_dir=sub(settings.mask_dir), overlay_dir=sub(settings.overlay_dir),
                        report_dir=sub(settings.report_dir), sr_dir=sub(settings.sr_dir), frame=settings.frame,
                        force=settings.force)


def measure_item(pipe: Pipeline, item: ArchiveItem, settings: ArchiveSettings) -> list[MeasureResult]:
    """All results of one file (one per DICOM frame): :func:`fetalhc.batch.measure_file` with
    output names from the :class:`ArchiveItem`. Any error, of whatever kind, becomes a row with
    ``error`` set and ends the file (frames measured before it keep their rows)."""
    try:
        rows = measure_file(pipe, Path(item.abs_path), item_options(item, settings), file=item.file, stem=item.stem)
    except Exception as e:  # noqa: BLE001 - whatever goes wrong with one file is that file's row
        return [failure(item.file, _error_text(e, item))]
    return [r if r.error is None else replace(r, error=r.error.replace(item.abs_path, item.file)) for r in rows]


def measure_batch(items: list[ArchiveItem], settings: ArchiveSettings) -> list[dict[str, Any]]:
    """Table rows of a batch of files, in the batch's order (the Dask task)."""
    pipe = worker_pipeline(settings)
    return [r.row() for item in items for r in measure_item(pipe, item, settings)]
