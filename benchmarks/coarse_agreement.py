"""How far 0.4's half-size finding pass moves the HC from 0.3's full-size one, on unlabelled images.

    python benchmarks/coarse_agreement.py [--n 335] [--json docs/results/coarse/agreement_test_set.json]

Measures the first ``--n`` HC18 test images (no reference there; pixel size 0.1 mm for all, so
differences are in units of 0.1 mm-pixels) with three settings of the shipped default model,
sharing one de-identification per image: ``full+zoomflip`` (0.3's default: full-size finding
pass), ``default`` (0.4: half-size finding pass, full-size second look where it finds nothing,
zoom redone where it disagrees with itself) and ``full@0.5+zoomflip-unchecked`` (0.4 without the
self-check). Reports, against 0.3's default, the median / 95th percentile / largest |HC difference|
(mm), how many images differ by more than 2 mm, and how many images took each number of network
calls.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=335)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_vs_old import hc18_test_images

    from fetalhc.evaluate import MODES
    from fetalhc.pipeline import Pipeline
    from fetalhc.reader import load_image

    base_mode, modes = "full+zoomflip", ("default", "full@0.5+zoomflip-unchecked")
    first = Pipeline(config=MODES[base_mode])
    pipes = {base_mode: first, **{m: first.with_config(MODES[m]) for m in modes}}
    hc: dict[str, list[float | None]] = {m: [] for m in pipes}
    calls: dict[str, Counter[int]] = {m: Counter() for m in pipes}
    paths = hc18_test_images(args.n)
    names = []
    for p in paths:
        clean = first.deidentify(load_image(p, pixel_size_mm=0.1))
        names.append(Path(p).name)
        for m, pipe in pipes.items():
            o = pipe.analyse(clean)
            hc[m].append(o.measurement.hc_mm)
            calls[m][o.segmentation.passes] += 1
    out: dict[str, Any] = {"n_images": len(paths), "base": base_mode, "model": first.segmenter.info.path.name,
                           "network_calls": {m: dict(sorted(c.items())) for m, c in calls.items()}}
    for m in modes:
        pairs = list(zip(names, hc[base_mode], hc[m], strict=True))
        both = [(n, a, b) for n, a, b in pairs if a is not None and b is not None]
        d = np.array([abs(b - a) for _, a, b in both])
        worst = sorted(both, key=lambda t: -abs(t[2] - t[1]))[:5]
        out[m] = {"n_both_measured": len(both),
                  "only_one_measured": sum((a is None) != (b is None) for _, a, b in pairs),
                  "median_abs_diff_mm": float(np.median(d)), "p95_abs_diff_mm": float(np.percentile(d, 95)),
                  "max_abs_diff_mm": float(d.max()), "n_over_2mm": int((d > 2).sum()),
                  "largest": [{"file": n, "hc_base_mm": a, "hc_mm": b} for n, a, b in worst]}
        print(f"{m:30s} vs {base_mode}: median |dHC| {out[m]['median_abs_diff_mm']:.2f} mm, "
              f"p95 {out[m]['p95_abs_diff_mm']:.2f}, max {out[m]['max_abs_diff_mm']:.2f}, "
              f"> 2 mm: {out[m]['n_over_2mm']} of {len(both)}")
    print("network calls per image:", out["network_calls"])
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
