"""Command line: ``fetalhc measure | evaluate | train | export | deid``.

Each command is a thin wrapper around a function or class that does the work, so the same
work is reachable from Python.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from fetalhc.hc18 import DEFAULT_SPLIT

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="fetalhc: fetal head circumference from 2-D ultrasound images.")
err = Console(stderr=True)

INPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom")


def collect_inputs(inputs: list[Path]) -> list[Path]:
    """Files given directly, plus image files found (recursively, sorted) in given folders."""
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in INPUT_SUFFIXES
                                and not f.name.endswith(("_Annotation.png", "_mask.png", "_overlay.png"))))
        else:
            files.append(p)
    return files


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err, transient=False, disable=not err.is_terminal)


@app.command()
def measure(
    inputs: Annotated[list[Path], typer.Argument(help="Image files (PNG, JPEG, BMP, TIFF, DICOM) or folders.")],
    pixel_size: Annotated[float | None, typer.Option("--pixel-size", help="Pixel size in mm for every input.")] = None,
    pixel_size_csv: Annotated[Path | None, typer.Option(
        "--pixel-size-csv", help="CSV of file name, pixel size (mm) [, ga_weeks]; HC18's format works.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Results table, .csv or .json.")] = None,
    mask_dir: Annotated[Path | None, typer.Option(help="Write <stem>_mask.png (0/255) here.")] = None,
    overlay_dir: Annotated[Path | None, typer.Option(help="Write <stem>_overlay.png here.")] = None,
    report_dir: Annotated[Path | None, typer.Option(help="Write a one-page <stem>_report.pdf/.png here.")] = None,
    ga_weeks: Annotated[float | None, typer.Option(help="Gestational age in weeks, for HC z-score/centile.")] = None,
    crop_mode: Annotated[str, typer.Option(help="corners (the patent's), full, or corners+full.")] = "corners",
    q: Annotated[float, typer.Option(help="Corner crop scale Q (the patent's 0.9).")] = 0.9,
    flips: Annotated[bool, typer.Option(help="Also segment left-right flipped crops.")] = False,
    frame: Annotated[int | None, typer.Option(help="DICOM cine: measure only this frame (0-based).")] = None,
    deid: Annotated[bool, typer.Option(help="Blank burned-in text first (on by default).")] = True,
    ocr: Annotated[bool, typer.Option(help="De-identify with Tesseract OCR too (slower, more thorough).")] = False,
    model: Annotated[Path | None, typer.Option(help="Another ONNX model (metadata JSON beside it).")] = None,
    precision: Annotated[str | None, typer.Option(help="Shipped model precision: fp32 or int8 "
                                                  "(default: fp32).")] = None,
) -> None:
    """Measure head circumference on images; one result row per image (or DICOM frame)."""
    from fetalhc.batch import BatchOptions, run_batch
    from fetalhc.clinical import validate_ga_weeks
    from fetalhc.pipeline import PipelineConfig
    from fetalhc.pixel_size_csv import read_pixel_size_csv

    try:
        if model is None and precision is not None:
            from fetalhc.segment import default_model_path

            model = default_model_path(precision)
        cfg = PipelineConfig(crop_mode=crop_mode, q=q, flips=flips, deidentify=deid, deid_ocr=ocr)
        table = read_pixel_size_csv(pixel_size_csv) if pixel_size_csv else None
        if ga_weeks is not None:
            ga_weeks = validate_ga_weeks(ga_weeks)
        if pixel_size is not None:
            from fetalhc.image import validate_pixel_size

            pixel_size = validate_pixel_size(pixel_size, "--pixel-size")
        if out is not None and out.suffix.lower() not in (".csv", ".json"):
            raise ValueError(f"{out}: --out must end in .csv or .json")
    except ValueError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    files = collect_inputs(inputs)
    if not files:
        err.print("[red]error:[/red] no input images found")
        raise typer.Exit(2)
    opts = BatchOptions(pixel_size_mm=pixel_size, pixel_size_table=table, ga_weeks=ga_weeks, mask_dir=mask_dir,
                        overlay_dir=overlay_dir, report_dir=report_dir, frame=frame, out=out)
    with _progress() as progress:
        task = progress.add_task("measuring", total=len(files))
        rows = run_batch(files, cfg, opts, model_path=model, on_file_done=lambda: progress.advance(task))
    failed = [r for r in rows if r.get("error")]
    if out is None:
        _print_rows(rows)
    else:
        err.print(f"wrote {len(rows)} rows to {out}")
    if failed:
        err.print(f"[yellow]{len(failed)} of {len(rows)} failed[/yellow]; see the error column")
        raise typer.Exit(1)


def _print_rows(rows: list[dict[str, object]]) -> None:
    t = Table()
    cols = ("file", "hc_mm", "hc_px", "contour_hc_mm", "bpd_mm", "ofd_mm", "ga_hadlock_weeks", "status", "error")
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in cols))
    Console().print(t)


@app.command()
def evaluate(
    split: Annotated[Path, typer.Option(help="Split JSON (default: the committed patient-grouped split).")] = (
        DEFAULT_SPLIT),
    subset: Annotated[str, typer.Option(help="Which list of the split to score.")] = "val",
    data_dir: Annotated[Path | None, typer.Option(help="HC18 folder (default: $FETALHC_DATA or ../shared).")] = None,
    out_dir: Annotated[Path, typer.Option(help="Where per-image CSVs, summary.json and plots go.")] = Path(
        "eval"),
    modes: Annotated[str, typer.Option(help="Comma-separated: full, corners, corners+flips, corners+full.")] = (
        "full,corners,corners+flips"),
    limit: Annotated[int | None, typer.Option(help="Score only the first N images.")] = None,
    model: Annotated[Path | None, typer.Option(help="Another ONNX model.")] = None,
    deid: Annotated[bool, typer.Option(help="De-identify first, as measure does (on by default).")] = True,
) -> None:
    """Score the model on a labelled HC18 split: Dice, Jaccard, Hausdorff, HC differences."""
    from fetalhc.evaluate import run_evaluation
    from fetalhc.hc18 import default_data_dir

    d = data_dir or default_data_dir()
    if d is None:
        err.print("[red]error:[/red] HC18 not found; pass --data-dir or set FETALHC_DATA")
        raise typer.Exit(2)
    summary = run_evaluation(d, split, subset, out_dir, [m.strip() for m in modes.split(",")], limit=limit,
                             model_path=model, progress=_progress(), deidentify=deid)
    t = Table(title=f"HC18 {subset} ({split.name})")
    for c in ("mode", "n", "dice", "jaccard", "hausdorff_mm", "adf_mm", "d_mm", "s_mm", "contour_adf_mm"):
        t.add_column(c)
    for mode, s in summary["modes"].items():
        t.add_row(mode, str(s["n"]), f"{s['dice_mean']:.4f}", f"{s['jaccard_mean']:.4f}",
                  f"{s['hausdorff_mm_mean']:.2f}", f"{s['ellipse']['adf_mm']:.2f}", f"{s['ellipse']['d_mm']:+.2f}",
                  f"{s['ellipse']['s_mm']:.2f}", f"{s['contour_cross']['adf_mm']:.2f}")
    Console().print(t)
    err.print(f"wrote {out_dir / 'summary.json'}")


@app.command()
def train(
    out_dir: Annotated[Path, typer.Option(help="Run folder: checkpoints, train.log, metrics.jsonl.")] = Path(
        "runs/effl0_pre"),
    split: Annotated[Path, typer.Option(help="Split JSON.")] = DEFAULT_SPLIT,
    data_dir: Annotated[Path | None, typer.Option(help="HC18 folder.")] = None,
    arch: Annotated[str, typer.Option(help="deeplabv3plus-effl0 or deeplabv2-resnet101.")] = "deeplabv3plus-effl0",
    pretrained: Annotated[bool, typer.Option(help="Start from ImageNet weights (EfficientNet-Lite0).")] = True,
    epochs: Annotated[int, typer.Option()] = 30,
    batch_size: Annotated[int, typer.Option()] = 8,
    lr: Annotated[float, typer.Option()] = 1e-3,
    optimizer: Annotated[str, typer.Option(help="adamw or sgd (the patent's).")] = "adamw",
    loss: Annotated[str, typer.Option(help="ce (the patent's) or ce+dice.")] = "ce",
    max_minutes: Annotated[float | None, typer.Option(help="Stop after this many minutes.")] = None,
) -> None:
    """Train a segmentation network on HC18 (needs the train extra: pip install -e '.[train]')."""
    from fetalhc.hc18 import default_data_dir

    try:
        from fetalhc.train.loop import TrainConfig
        from fetalhc.train.loop import train as run_train
    except ImportError as e:
        err.print(f"[red]error:[/red] training needs the train extra (pip install -e '.[train]'): {e}")
        raise typer.Exit(2) from None
    d = data_dir or default_data_dir()
    if d is None:
        err.print("[red]error:[/red] HC18 not found; pass --data-dir or set FETALHC_DATA")
        raise typer.Exit(2)
    ckpt = run_train(TrainConfig(data_dir=str(d), split_file=str(split), out_dir=str(out_dir), arch=arch,
                                 pretrained=pretrained, epochs=epochs, batch_size=batch_size, lr=lr,
                                 optimizer=optimizer, loss=loss, max_minutes=max_minutes))
    err.print(f"checkpoint: {ckpt}")


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(
        help="A training checkpoint (last.pt), or an fp32 .onnx model to quantise with --int8.")],
    out: Annotated[Path, typer.Option(help="ONNX file to write; its metadata JSON goes beside it.")] = Path(
        "src/fetalhc/models/fetalhc_deeplabv3plus_effl0.onnx"),
    int8: Annotated[Path | None, typer.Option(help="Also write a static-int8 copy here (needs HC18 to calibrate).")
                    ] = None,
    split: Annotated[Path, typer.Option(help="Split JSON (calibration uses its training images).")] = DEFAULT_SPLIT,
    data_dir: Annotated[Path | None, typer.Option(help="HC18 folder.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing model files (the shipped model included).")] = False,
) -> None:
    """Export a checkpoint to ONNX with a metadata JSON (SHA-256, input size, recipe)."""
    from_onnx = checkpoint.suffix.lower() == ".onnx"
    try:
        if from_onnx:
            from fetalhc.quantize import quantize_model as _q
        else:
            from fetalhc.train.export import export_onnx, quantize_int8
    except ImportError as e:
        err.print(f"[red]error:[/red] export needs the train extra (pip install -e '.[train]'): {e}")
        raise typer.Exit(2) from None
    from fetalhc.segment import check_overwrite

    try:
        for target in (out if not from_onnx else None, int8):
            if target is not None:
                check_overwrite(target, force)
    except FileExistsError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    if from_onnx and int8 is None:
        err.print("[red]error:[/red] an .onnx input is only quantised: pass --int8 OUT.onnx")
        raise typer.Exit(2)
    path = checkpoint if from_onnx else export_onnx(checkpoint, out, force=force)
    if not from_onnx:
        err.print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    if int8 is not None:
        from fetalhc.hc18 import default_data_dir

        d = data_dir or default_data_dir()
        if d is None:
            err.print("[red]error:[/red] int8 calibration needs HC18; pass --data-dir or set FETALHC_DATA")
            raise typer.Exit(2)
        if from_onnx:
            from fetalhc.quantize import SHIPPED_RECIPE

            q = _q(path, int8, d, SHIPPED_RECIPE, split)
        else:
            q = quantize_int8(path, int8, d, split, force=force)
        err.print(f"wrote {q} ({q.stat().st_size / 2**20:.1f} MiB)")


@app.command()
def demo(out_dir: Annotated[Path, typer.Option(help="Where the demo writes its outputs.")] = Path("demo_out")) -> None:
    """Measure a synthetic phantom and, when HC18 is present, one real validation image."""
    from fetalhc.demo import run_demo

    raise typer.Exit(run_demo(out_dir))


@app.command()
def deid(
    inputs: Annotated[list[Path], typer.Argument(help="Image or DICOM files, or folders.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the de-identified copies.")],
    fmt: Annotated[str, typer.Option("--format", help="png, or dicom (DICOM inputs only; header de-identified too).")
                   ] = "png",
    ocr: Annotated[bool, typer.Option(help="Also read text with Tesseract and blank what it finds (slower).")] = False,
) -> None:
    """Write de-identified copies: burned-in text blanked (and, for DICOM, the PS3.15 basic profile)."""
    from fetalhc.deid import deidentify_file

    if fmt not in ("png", "dicom"):
        err.print(f"[red]error:[/red] --format must be png or dicom, got {fmt!r}")
        raise typer.Exit(2)
    files = collect_inputs(inputs)
    if not files:
        err.print("[red]error:[/red] no input files found")
        raise typer.Exit(2)
    failed = 0
    seen: set[str] = set()
    with _progress() as progress:
        task = progress.add_task("de-identifying", total=len(files))
        for f in files:
            stem, k = f.stem, 2
            while stem in seen:
                stem, k = f"{f.stem}_{k}", k + 1
            seen.add(stem)
            target = out / f"{stem}_deid.{'dcm' if fmt == 'dicom' else 'png'}"
            try:
                deidentify_file(f, target, ocr=ocr)
            except (ValueError, OSError) as e:
                failed += 1
                err.print(f"[red]failed:[/red] {e}")
            progress.advance(task)
    err.print(f"wrote {len(files) - failed} de-identified files to {out}")
    if failed:
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Serve the web page and the HTTP API (needs the serve extra: pip install -e '.[serve]')."""
    try:
        import uvicorn

        from fetalhc.server import app as web_app
    except ImportError as e:
        err.print(f"[red]error:[/red] serving needs the serve extra (pip install -e '.[serve]'): {e}")
        raise typer.Exit(2) from None
    uvicorn.run(web_app, host=host, port=port, access_log=False)


def main() -> None:  # pragma: no cover
    sys.exit(app())
