"""What runs inside a Dask worker (or in-process): measure a batch of files into table rows.

The model is loaded once per worker process: :func:`worker_pipeline` keeps a module-level
cache keyed by model path, pipeline settings and thread count, and :func:`model_load_count`
says how many times this process loaded a model (read it on every worker with
``client.run(model_load_count)``).

:func:`measure_item` is the one adapter between the archive runner and the measurement
(``Pipeline.prepare`` / ``Pipeline.run_prepared``); it does what ``batch.measure_file`` does
for the serial path, with output names taken from the :class:`ArchiveItem`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fetalhc.archive_inputs import ArchiveItem
from fetalhc.image import ImageLoadError, UltrasoundImage
from fetalhc.pipeline import Pipeline, PipelineConfig
from fetalhc.results import MeasureResult


@dataclass(frozen=True)
class ArchiveSettings:
    """Everything a worker needs besides the files; paths are absolute (workers may run elsewhere).

    Attributes:
        model_path: ONNX model (None: the shipped one).
        config: pipeline settings (crop mode, Q, flips, de-identification).
        pixel_size_mm: pixel size in mm for every file (overrides CSV and DICOM sizes).
        ga_weeks: gestational age in weeks for every file (a CSV ``ga_weeks`` fills the rest).
        frame: DICOM cine frame to measure (None: every frame).
        mask_dir, overlay_dir, report_dir: output folders (None: not written).
        ort_threads: ONNX Runtime threads per worker (1 when each worker has one core).
    """

    model_path: str | None = None
    config: PipelineConfig = PipelineConfig()
    pixel_size_mm: float | None = None
    ga_weeks: float | None = None
    frame: int | None = None
    mask_dir: str | None = None
    overlay_dir: str | None = None
    report_dir: str | None = None
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


def _sizes(img: UltrasoundImage, item: ArchiveItem, settings: ArchiveSettings) -> tuple[UltrasoundImage,
                                                                                       float | None]:
    """Pixel size precedence as in the serial path: the user's > the CSV's > the file's own."""
    ga = settings.ga_weeks
    if settings.pixel_size_mm is not None:
        img = img.with_pixel_size(settings.pixel_size_mm, "user")
    entry = item.entry
    if entry is not None:
        if settings.pixel_size_mm is None and entry.pixel_size_mm is not None:
            img = img.with_pixel_size(entry.pixel_size_mm, "csv")
        if ga is None and entry.ga_weeks is not None:
            from fetalhc.clinical import validate_ga_weeks

            ga = validate_ga_weeks(entry.ga_weeks)
    return img, ga


def _error_text(e: Exception, item: ArchiveItem) -> str:
    """The error as the serial path words it: with the path as given, not the worker's absolute one."""
    text = str(e).replace(item.abs_path, item.file)
    if isinstance(e, (ImageLoadError, ValueError, OSError)):
        return text
    return f"{item.file}: {type(e).__name__}: {text}"


def _write_outputs(res: MeasureResult, pixels: Any, item: ArchiveItem, settings: ArchiveSettings,
                   frame: int | None) -> None:
    from fetalhc.io_utils import write_png

    stem = item.stem if frame is None else f"{item.stem}_frame{frame:04d}"
    if settings.mask_dir is not None and res.mask is not None:
        write_png(Path(settings.mask_dir) / item.out_subdir / f"{stem}_mask.png", res.mask * 255)
    if settings.overlay_dir is not None:
        from fetalhc.overlay import draw_overlay

        write_png(Path(settings.overlay_dir) / item.out_subdir / f"{stem}_overlay.png", draw_overlay(pixels, res))
    if settings.report_dir is not None:
        from fetalhc.report import write_report

        write_report(res, pixels, Path(settings.report_dir) / item.out_subdir, stem)


def measure_item(pipe: Pipeline, item: ArchiveItem, settings: ArchiveSettings) -> list[MeasureResult]:
    """All results of one file (one per DICOM frame). Any error becomes a row with ``error`` set
    and ends the file (frames measured before it keep their rows), as in the serial path."""
    from fetalhc.batch import iter_images

    out: list[MeasureResult] = []
    try:
        for frame, img in iter_images(Path(item.abs_path), settings.frame):
            img, ga = _sizes(img, item, settings)
            clean = pipe.prepare(img)
            res = pipe.run_prepared(clean, ga)
            res.file, res.frame = item.file, frame
            _write_outputs(res, clean.pixels, item, settings, frame)
            res.mask = res.probability = None
            out.append(res)
    except Exception as e:  # noqa: BLE001 - whatever goes wrong with one file is that file's row
        out.append(MeasureResult(file=item.file, error=_error_text(e, item), status="failed"))
    return out


def measure_batch(items: list[ArchiveItem], settings: ArchiveSettings) -> list[dict[str, Any]]:
    """Table rows of a batch of files, in the batch's order (the Dask task)."""
    pipe = worker_pipeline(settings)
    return [r.row() for item in items for r in measure_item(pipe, item, settings)]
