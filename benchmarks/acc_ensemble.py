"""A second model and a two-model ensemble on the validation split (issue 9).

    python benchmarks/acc_ensemble.py --second /tmp/ft.onnx --out docs/results/acc_ft
    python benchmarks/acc_ensemble.py --second B.onnx --first src/fetalhc/models/fetalhc_deeplabv3plus_effl0.onnx \
        --views default --out D          # 0.4's default views only

``--second`` is another exported model (e.g. the shipped model fine-tuned on zoom boxes:
``fetalhc train --init-from src/fetalhc/models/fetalhc_deeplabv3plus_effl0.onnx --p-zoom 0.35 ...``
then ``fetalhc export``). Every image is read and de-identified once and measured by:

* ``A <mode>``: the shipped model, ``B <mode>``: the second model,
* ``A+B <mode>``: both models on every crop, probabilities averaged (twice the passes),

for the four corners + zoom and the 3-pass ``full+zoomflip`` mode, plus ``A+B full+zoom``
(4 passes, within the 5-pass budget), or for the ``--views`` named (``default`` = 0.4's default
views). ``--first`` is model A (default: the shipped model of the default precision). The
interval is off in every mode (its calibration belongs to one model), so the scores are ADF, Dice
and Hausdorff. Writes ``<mode>_cases.csv`` per mode and ``summary.json`` (each mode's summary,
including the patient-level bootstrap CI, plus paired differences against the first mode, ``A
corners`` or ``A <first view>``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fetalhc.evalstats import bootstrap_ci
from fetalhc.evaluate import CASE_COLUMNS, MODES, evaluate_modes, summarize
from fetalhc.hc18 import DEFAULT_SPLIT, default_data_dir, load_split
from fetalhc.io_utils import write_table
from fetalhc.pipeline import Pipeline
from fetalhc.segment import Segmenter
from fetalhc.segmentation import ZoomSettings


class MeanOfModels:
    """Mean head probability of several segmenters (same input size) on the same crops."""

    def __init__(self, members: list[Segmenter]) -> None:
        if len({m.input_hw for m in members}) != 1:
            raise ValueError("ensemble members must share the input size")
        self.members = members
        self.info = members[0].info

    @property
    def input_hw(self) -> tuple[int, int]:
        return self.members[0].input_hw

    def accepts(self, hw: tuple[int, int]) -> bool:
        return all(m.accepts(hw) for m in self.members)

    def predict(self, crops: NDArray[np.uint8]) -> NDArray[np.float32]:
        out = self.members[0].predict(crops)
        for m in self.members[1:]:
            out += m.predict(crops)
        out /= np.float32(len(self.members))
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--second", type=Path, required=True, help="the second exported ONNX model")
    ap.add_argument("--out", type=Path, default=Path("docs/results/acc_ft"))
    ap.add_argument("--limit", type=int)
    ap.add_argument("--first", type=Path, default=None, help="model A (default: the shipped default)")
    ap.add_argument("--views", default=None, help="comma-separated evaluate modes measured with A, B and A+B "
                                                  "(default: corners, full+zoomflip and A+B full+zoom)")
    args = ap.parse_args()

    data = default_data_dir()
    if data is None:
        raise SystemExit("HC18 not found: set FETALHC_DATA or put it at ../shared/data/hc18")
    files = load_split(DEFAULT_SPLIT)["val"][: args.limit]
    views = args.views.split(",") if args.views else ["corners"]
    a = Pipeline(args.first, config=replace(MODES[views[0]], interval=False))
    b_seg = Segmenter(args.second)
    ens = MeanOfModels([a.segmenter, b_seg])

    def with_seg(seg: Any, cfg_name: str, **over: Any) -> Pipeline:
        p = a.with_config(replace(MODES[cfg_name], interval=False, **over))
        p.segmenter = seg
        return p

    if args.views:
        pipes = {f"{who} {v}": with_seg(seg, v) for v in views
                 for who, seg in (("A", a.segmenter), ("B", b_seg), ("A+B", ens))}
    else:
        pipes = {
            "A corners": a,
            "B corners": with_seg(b_seg, "corners"),
            "A+B corners": with_seg(ens, "corners"),
            "A full+zoomflip": with_seg(a.segmenter, "full+zoomflip"),
            "B full+zoomflip": with_seg(b_seg, "full+zoomflip"),
            "A+B full+zoomflip": with_seg(ens, "full+zoomflip"),
            "A+B full+zoom": with_seg(ens, "full", zoom=ZoomSettings(weight=1.0, flip=False)),
        }
    first = next(iter(pipes))
    rows = evaluate_modes(pipes, data, files)
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"second_model_sha256": b_seg.info.sha256, "n_images": len(files), "modes": {}}
    base = np.array([r["abs_err_mm"] for r in rows[first]], dtype=float)
    patients = [r["patient"] for r in rows[first]]
    for mode, rs in rows.items():
        write_table(args.out / (mode.replace(" ", "_").replace("+", "_") + "_cases.csv"), rs, CASE_COLUMNS)
        s = summarize(rs)
        err = np.array([r["abs_err_mm"] for r in rs], dtype=float)
        diff = err - base
        s[f"paired_adf_diff_vs_{first.replace(' ', '_')}_mm"] = {"mean": float(np.nanmean(diff)),
                                                                 "ci95": list(bootstrap_ci(diff, patients))}
        summary["modes"][mode] = s
        st = s["stats"]["adf"]
        ci = s[f"paired_adf_diff_vs_{first.replace(' ', '_')}_mm"]["ci95"]
        print(f"{mode:22s} ADF {st['adf_mm']:.3f} ({st['ci95_mm'][0]:.2f}-{st['ci95_mm'][1]:.2f})  "
              f"Dice {s['dice_mean']:.4f}  HD {s['hausdorff_mm_mean']:.3f}  "
              f"paired diff {np.nanmean(diff):+.3f} ({ci[0]:+.3f} to {ci[1]:+.3f})", flush=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
