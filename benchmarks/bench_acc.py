"""Milliseconds per image before and after issue 9, side by side in one run (same images, the
configurations interleaved image by image so that load from other work hits them alike).

    python benchmarks/bench_acc.py [--n 40] [--json benchmarks/results_acc.json]

Times load + de-identification + crops + network + fusion + zoom + ellipse + band + flags +
interval of ``Pipeline.run`` on 800x540 HC18 test images, model loaded once per configuration.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from fetalhc.pipeline import Pipeline, PipelineConfig
from fetalhc.reader import load_image
from fetalhc.segmentation import ZoomSettings

CONFIGS = {
    "before: corners (4 passes)": PipelineConfig(crop_mode="corners", zoom=None, outline="mask", robust_fit=False,
                                                 interval=False),
    "0.2: corners + zoom (5 passes)": PipelineConfig(crop_mode="corners"),
    "0.3 default: full + zoom + zoom flip (3 passes)": PipelineConfig(crop_mode="full",
                                                                      zoom=ZoomSettings(weight=1.0, flip=True)),
}


def main() -> None:
    import tempfile

    from bench_measure import image_paths  # the script's folder is on sys.path

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    paths = image_paths(a.n, Path(tempfile.mkdtemp()))
    base = Pipeline()
    pipes = {k: base.with_config(c) for k, c in CONFIGS.items()}
    for p in pipes.values():
        p.run(load_image(paths[0], pixel_size_mm=0.1))  # warm-up
    times: dict[str, list[float]] = {k: [] for k in pipes}
    for path in paths:
        for k, p in pipes.items():
            t0 = time.perf_counter()
            p.run(load_image(path, pixel_size_mm=0.1))
            times[k].append(time.perf_counter() - t0)
    out = {k: {"median_ms": 1000 * statistics.median(v), "p90_ms": 1000 * sorted(v)[int(0.9 * (len(v) - 1))]}
           for k, v in times.items()}
    out["_meta"] = {"n_images": len(paths), "cpu": platform.processor() or platform.machine(),
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for k, v in out.items():
        print(k, v)
    if a.json:
        a.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
