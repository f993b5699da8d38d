"""``fetalhc measure`` for archives: the options checked, the cluster started, progress shown.

``cli.measure`` hands over here when ``--workers``, ``--scheduler`` or ``--resume`` is given
or ``--out`` ends in ``.parquet``; everything else stays on the serial path.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from fetalhc.archive import dask_client, run_archive
from fetalhc.archive_io import OutputError
from fetalhc.archive_worker import ArchiveSettings
from fetalhc.pipeline import PipelineConfig
from fetalhc.segment import ModelError, read_model_info


def wants_archive(out: Path | None, workers: int | None, scheduler: str | None, resume: bool) -> bool:
    """Whether ``measure`` should run through :mod:`fetalhc.archive`."""
    return workers is not None or scheduler is not None or resume or (
        out is not None and out.suffix.lower() == ".parquet")


def _abs(p: Path | None) -> str | None:
    return None if p is None else os.path.abspath(p)


def measure_archive(inputs: list[Path], *, out: Path | None, workers: int | None, scheduler: str | None,
                    resume: bool, pixel_size: float | None, pixel_size_csv: Path | None, mask_dir: Path | None,
                    overlay_dir: Path | None, report_dir: Path | None, sr_dir: Path | None, ga_weeks: float | None,
                    crop_mode: str,
                    q: float, flips: bool, frame: int | None, deid: bool, ocr: bool, model: Path | None, force: bool,
                    err: Console) -> int:
    """Run an archive measurement from the command line's options; returns the exit status
    (0 all measured, 1 some files failed, 2 bad options)."""
    from fetalhc.clinical import validate_ga_weeks
    from fetalhc.image import validate_pixel_size
    from fetalhc.pixel_size_csv import read_pixel_size_csv

    try:
        if out is None or out.suffix.lower() not in (".csv", ".parquet"):
            raise ValueError("--workers/--scheduler/--resume need --out ending in .csv or .parquet")
        if workers is not None and scheduler is not None:
            raise ValueError("give --workers (a local cluster) or --scheduler (an existing one), not both")
        if workers is not None and workers < 1:
            raise ValueError(f"--workers must be at least 1, got {workers}")
        cfg = PipelineConfig(crop_mode=crop_mode, q=q, flips=flips, deidentify=deid, deid_ocr=ocr)
        table = read_pixel_size_csv(pixel_size_csv) if pixel_size_csv else None
        ga = validate_ga_weeks(ga_weeks) if ga_weeks is not None else None
        px = validate_pixel_size(pixel_size, "--pixel-size") if pixel_size is not None else None
        if not inputs:
            raise ValueError("no inputs given")
        if model is not None:
            read_model_info(model)  # fail here, not on every worker
    except (ValueError, ModelError) as e:
        err.print(f"[red]error:[/red] {e}")
        return 2
    distributed = workers is not None or scheduler is not None
    settings = ArchiveSettings(model_path=_abs(model), config=cfg, pixel_size_mm=px, ga_weeks=ga, frame=frame,
                               mask_dir=_abs(mask_dir), overlay_dir=_abs(overlay_dir), report_dir=_abs(report_dir),
                               sr_dir=_abs(sr_dir), csv_given=table is not None, force=force,
                               ort_threads=1 if distributed else 2)
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err, disable=not err.is_terminal)
    try:
        with progress:
            task = progress.add_task("measuring", total=None)

            def advance(n: int) -> None:
                progress.advance(task, n)

            if distributed:
                with dask_client(workers, scheduler) as client:
                    summary = run_archive(inputs, out, settings, client=client, resume=resume,
                                          pixel_size_table=table, on_batch=advance)
            else:
                summary = run_archive(inputs, out, settings, resume=resume, pixel_size_table=table, on_batch=advance)
    except (OutputError, ModelError) as e:
        err.print(f"[red]error:[/red] {e}")
        return 2
    skipped = f"; {summary.skipped} already in {out} skipped" if summary.skipped else ""
    err.print(f"measured {summary.files} files ({summary.rows} rows) into {out}{skipped}")
    if summary.files == 0 and summary.skipped == 0:
        err.print("[red]error:[/red] no input images found")
        return 2
    if summary.failed:
        err.print(f"[yellow]{summary.failed} of {summary.rows} rows failed[/yellow]; see the error column")
        return 1
    return 0
