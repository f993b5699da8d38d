"""Measuring many files: streams one image at a time, goes on past bad files (their row
carries the error), writes every output file atomically and the table once at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fetalhc.image import ImageLoadError, UltrasoundImage
from fetalhc.io_utils import write_png, write_table
from fetalhc.overlay import draw_overlay
from fetalhc.pipeline import Pipeline, PipelineConfig
from fetalhc.pixel_size_csv import CsvEntry, lookup
from fetalhc.reader import iter_frames
from fetalhc.results import TABLE_COLUMNS, MeasureResult


@dataclass
class BatchOptions:
    """Where pixel sizes come from and what to write. Precedence of the pixel size:
    ``pixel_size_mm`` (the user's) > the CSV table > the file's own (DICOM) > none."""

    pixel_size_mm: float | None = None
    pixel_size_table: dict[str, CsvEntry] | None = None
    ga_weeks: float | None = None
    mask_dir: Path | None = None
    overlay_dir: Path | None = None
    report_dir: Path | None = None
    frame: int | None = None
    out: Path | None = None


def iter_images(path: Path, frame: int | None = None) -> Iterator[tuple[int | None, UltrasoundImage]]:
    """Yield (frame index or None, image) for one file; a DICOM cine yields each frame in turn."""
    for f in iter_frames(path, frame):
        yield f.index, f.image


def _unique_stem(path: Path, frame: int | None, seen: set[str]) -> str:
    stem = path.stem if frame is None else f"{path.stem}_frame{frame:04d}"
    base, k = stem, 2
    while stem in seen:
        stem = f"{base}_{k}"
        k += 1
    seen.add(stem)
    return stem


def _apply_sizes(img: UltrasoundImage, opts: BatchOptions) -> tuple[UltrasoundImage, float | None]:
    ga = opts.ga_weeks
    if opts.pixel_size_mm is not None:
        img = img.with_pixel_size(opts.pixel_size_mm, "user")
    entry = lookup(opts.pixel_size_table, img.name) if opts.pixel_size_table is not None else None
    if entry is not None:
        if opts.pixel_size_mm is None and entry.pixel_size_mm is not None:
            img = img.with_pixel_size(entry.pixel_size_mm, "csv")
        if ga is None and entry.ga_weeks is not None:
            from fetalhc.clinical import validate_ga_weeks

            ga = validate_ga_weeks(entry.ga_weeks)
    return img, ga


def measure_file(pipe: Pipeline, path: Path, opts: BatchOptions, seen: set[str]) -> list[MeasureResult]:
    """All results of one file (one per frame). Errors become a result with ``error`` set."""
    out: list[MeasureResult] = []
    frames = iter_images(path, opts.frame)
    while True:
        try:
            item = next(frames, None)
            if item is None:
                break
            frame, img = item
            img, ga = _apply_sizes(img, opts)
            clean = pipe.prepare(img)
            res = pipe.run_prepared(clean, ga)
            res.file, res.frame = str(path), frame
            stem = _unique_stem(path, frame, seen)
            if opts.mask_dir is not None and res.mask is not None:
                write_png(opts.mask_dir / f"{stem}_mask.png", res.mask * 255)
            if opts.overlay_dir is not None:
                write_png(opts.overlay_dir / f"{stem}_overlay.png", draw_overlay(clean.pixels, res))
            if opts.report_dir is not None:
                from fetalhc.report import write_report

                write_report(res, clean.pixels, opts.report_dir, stem)
        except (ImageLoadError, ValueError, OSError) as e:
            res = MeasureResult(file=str(path), error=str(e), status="failed")
            out.append(res)
            break
        res.mask = None  # stream: keep no image-sized arrays
        res.probability = None
        out.append(res)
    return out


def run_batch(files: list[Path], config: PipelineConfig, opts: BatchOptions, model_path: Path | None = None,
              on_file_done: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """Measure ``files`` one by one; write ``opts.out`` at the end (atomically). Returns the rows."""
    pipe = Pipeline(model_path, config)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for f in files:
        rows.extend(r.row() for r in measure_file(pipe, f, opts, seen))
        if on_file_done is not None:
            on_file_done()
    if opts.out is not None:
        write_table(opts.out, rows, TABLE_COLUMNS)
    return rows
