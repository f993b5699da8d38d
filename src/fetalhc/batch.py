"""Measuring many files: streams one image at a time, goes on past bad files (their row
carries the error), writes every output file atomically and the table once at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from fetalhc.flags import make_flag
from fetalhc.image import ImageLoadError, UltrasoundImage
from fetalhc.io_utils import write_png, write_table
from fetalhc.overlay import draw_overlay
from fetalhc.pipeline import Pipeline, PipelineConfig
from fetalhc.pixel_size_csv import CsvEntry, lookup
from fetalhc.quality import FLAG_PIXEL_SIZE_NOT_IN_CSV, FLAG_PIXEL_SIZE_OVERRIDDEN
from fetalhc.reader import iter_frames
from fetalhc.results import TABLE_COLUMNS, MeasureResult, assemble, failure

if TYPE_CHECKING:
    from fetalhc.sr import AlgorithmIdentity


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
    force: bool = False  # read DICOM of another modality than ultrasound
    sr_dir: Path | None = None


def iter_images(path: Path, frame: int | None = None, force: bool = False
                ) -> Iterator[tuple[int | None, UltrasoundImage]]:
    """Yield (frame index or None, image) for one file; a DICOM cine yields each frame in turn."""
    for f in iter_frames(path, frame, force=force):
        yield f.index, f.image


def _unique_stem(path: Path, frame: int | None, seen: set[str]) -> str:
    stem = path.stem if frame is None else f"{path.stem}_frame{frame:04d}"
    base, k = stem, 2
    while stem in seen:
        stem = f"{base}_{k}"
        k += 1
    seen.add(stem)
    return stem


def resolve_inputs(img: UltrasoundImage, opts: BatchOptions) -> tuple[UltrasoundImage, float | None, tuple[str, ...]]:
    """The image with the pixel size that applies, the GA (weeks) and flags about that choice.

    Precedence: the user's ``--pixel-size`` > the CSV > the file's own. A user size that differs
    from the CSV's or the file's is flagged (``pixel_size_overridden``); a CSV without a row for
    the image says so (``pixel_size_not_in_csv``)."""
    flags: list[str] = []
    entry = lookup(opts.pixel_size_table, img.name) if opts.pixel_size_table is not None else None
    if opts.pixel_size_table is not None and entry is None:
        flags.append(make_flag(FLAG_PIXEL_SIZE_NOT_IN_CSV, f"the pixel-size CSV has no row for {img.name}"))
    csv_mm = entry.pixel_size_mm if entry is not None else None
    if opts.pixel_size_mm is not None:
        for other, source in ((csv_mm, "the CSV"), (img.pixel_size_mm, f"the file ({img.pixel_size_source})")):
            if other is not None and abs(other - opts.pixel_size_mm) > 1e-9 * max(other, 1.0):
                flags.append(make_flag(FLAG_PIXEL_SIZE_OVERRIDDEN, f"--pixel-size {opts.pixel_size_mm:g} mm used "
                                       f"instead of {other:g} mm from {source}"))
        img = img.with_pixel_size(opts.pixel_size_mm, "user")
    elif csv_mm is not None:
        img = img.with_pixel_size(csv_mm, "csv")
    ga = opts.ga_weeks if opts.ga_weeks is not None else (entry.ga_weeks if entry is not None else None)
    return img, ga, tuple(flags)


def write_outputs(res: MeasureResult, pixels: NDArray[np.uint8], source: Path, stem: str, opts: BatchOptions,
                  algorithm: AlgorithmIdentity | None = None) -> MeasureResult:
    """Write what ``opts`` asks for (mask, overlay, report, DICOM SR) for one measured image,
    each file atomically, named ``<stem>_mask.png`` and so on. Returns the result with the SR's
    path, or with an informative flag saying why no SR was written."""
    if opts.mask_dir is not None and res.mask is not None:
        write_png(opts.mask_dir / f"{stem}_mask.png", res.mask * 255)
    if opts.overlay_dir is not None:
        write_png(opts.overlay_dir / f"{stem}_overlay.png", draw_overlay(pixels, res))
    if opts.report_dir is not None:
        from fetalhc.report import write_report

        write_report(res, pixels, opts.report_dir, stem)
    if opts.sr_dir is not None:
        from fetalhc.sr import write_sr_for_result

        sr_path, sr_flag = write_sr_for_result(res, source, opts.sr_dir, frame=res.frame, stem=stem,
                                               algorithm=algorithm)
        res = replace(res, sr_file=None if sr_path is None else str(sr_path),
                      flags=res.flags + (() if sr_flag is None else (sr_flag,)))
    return res


def measure_file(pipe: Pipeline, path: Path, opts: BatchOptions, seen: set[str] | None = None, *,
                 file: str | None = None, stem: str | None = None) -> list[MeasureResult]:
    """All results of one file (one per frame). Errors become a result with ``error`` set.
    The results carry no image-sized arrays (streaming).

    ``file`` is the name the rows carry (default: ``path`` as given); output files are named
    after ``stem`` (``<stem>_frame0003`` for frames) or, without it, after the file's stem made
    unique among the names already in ``seen``."""
    label = str(path) if file is None else file
    algorithm = None
    if opts.sr_dir is not None:
        from fetalhc.sr import algorithm_identity_from_info

        algorithm = algorithm_identity_from_info(pipe.segmenter.info)
    out: list[MeasureResult] = []
    frames = iter_images(path, opts.frame, opts.force)
    while True:
        try:
            item = next(frames, None)
            if item is None:
                break
            frame, img = item
            img, ga, input_flags = resolve_inputs(img, opts)
            outcome = pipe.run(img, ga, input_flags=input_flags)
            res = assemble(outcome, file=label, frame=frame)
            if stem is None:
                out_stem = _unique_stem(path, frame, set() if seen is None else seen)
            else:
                out_stem = stem if frame is None else f"{stem}_frame{frame:04d}"
            res = write_outputs(res, outcome.image.pixels, path, out_stem, opts, algorithm)
        except (ImageLoadError, ValueError, OSError) as e:
            out.append(failure(label, str(e)))
            break
        out.append(replace(res, mask=None, probability=None))
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
