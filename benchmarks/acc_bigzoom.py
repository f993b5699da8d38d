"""Does a larger zoom pass help without retraining? (issue 9; test-time only, validation split)

    python benchmarks/acc_bigzoom.py --mult 1.5 [--model M] [--out docs/results/coarse/bigzoom_1.5]

Runs ``fetalhc evaluate``'s default mode with the zoom pass (and its flip) fed at ``--mult`` x the
network's input size (1.5: 384 x 576, a multiple of 32 as the free-dim models need) and the
finding pass kept at 128 x 192, so each zoom box is shrunk less (at ``min_scale`` = 1 a small head
is shown at one network pixel per image pixel, as before). Writes ``fetalhc evaluate``'s files into
``--out``; compare with ``python benchmarks/paired.py docs/results/coarse/int8_default_cases.csv
OUT/default_cases.csv``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from fetalhc.segment import STRIDE_PX, default_model_path


class _Resized:
    """A segmenter that reports another input size (the model has free spatial dims)."""

    def __init__(self, seg: Any, hw: tuple[int, int]) -> None:
        self.input_hw, self.info, self.accepts, self.predict = hw, seg.info, seg.accepts, seg.predict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mult", type=float, default=1.5)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("docs/results/coarse/bigzoom_1.5"))
    args = ap.parse_args()

    import fetalhc.pipeline as pipeline
    import fetalhc.segmentation as segmentation
    from fetalhc.evaluate import run_evaluation
    from fetalhc.hc18 import default_data_dir

    original = segmentation.segment

    def segment(pixels: Any, segmenter: Any, crop_mode: str = "corners", q: float = 0.9, flips: bool = False,
                threshold: float = 0.5, zoom: Any = None) -> Any:
        h, w = segmenter.input_hw
        hw = (int(round(h * args.mult / STRIDE_PX)) * STRIDE_PX, int(round(w * args.mult / STRIDE_PX)) * STRIDE_PX)
        if zoom is not None and zoom.locate_scale < 1:
            zoom = replace(zoom, locate_scale=zoom.locate_scale * h / hw[0])  # the finding pass stays as it was
        return original(pixels, _Resized(segmenter, hw), crop_mode, q, flips, threshold, zoom)

    pipeline.segment = segment  # type: ignore[assignment]
    data = default_data_dir()
    if data is None:
        raise SystemExit("HC18 not found: set FETALHC_DATA or put it at ../shared/data/hc18")
    s = run_evaluation(data, Path("src/fetalhc/splits/hc18_seed0.json"), "val", args.out, ["default"],
                       model_path=args.model or default_model_path())
    m = s["modes"]["default"]
    print(f"zoom at {args.mult:g}x: ADF {m['ellipse']['adf_mm']:.3f} mm, Dice {m['dice_mean']:.4f}, "
          f"by size {m['adf_by_hc_mm']}")


if __name__ == "__main__":
    main()
