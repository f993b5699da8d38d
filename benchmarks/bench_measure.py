"""Speed and memory of ``measure`` on 800x540 HC18 images (phantoms when HC18 is absent).

    python benchmarks/bench_measure.py [--n 60] [--stream 1000] [--json benchmarks/results.json]

* speed: median and 90th-percentile seconds per image for each crop mode, model loaded once,
  timing load + de-identify + crops + ONNX Runtime + fuse + measure + flags (no file output);
* memory: peak resident memory (MB) of a child process that measures ``--stream`` images in
  one batch (cycling over the available images), writing masks and a CSV as a user would.

Goals (issue 2): corners <= 0.2 s per image median on 2 cores; streaming 1,000 images < 500 MB.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2


def image_paths(n: int, tmp: Path) -> list[Path]:
    from fetalhc.hc18 import default_data_dir

    d = default_data_dir()
    if d is not None:
        paths = sorted((d / "test_set").glob("*_HC.png"))
        return [p for p in paths if cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).shape == (540, 800)][:n]
    from fetalhc.phantom import make_phantom

    out = []
    for i in range(min(n, 20)):
        img, _ = make_phantom(540, 800, seed=i)
        p = tmp / f"phantom_{i:03d}.png"
        cv2.imwrite(str(p), img)
        out.append(p)
    return out


def bench_speed(paths: list[Path], modes: list[str], model: Path | None = None) -> dict[str, dict[str, float]]:
    from fetalhc.pipeline import Pipeline, PipelineConfig
    from fetalhc.reader import load_image

    out = {}
    for mode in modes:
        crop_mode = mode.removesuffix("+flips")
        pipe = Pipeline(model, config=PipelineConfig(crop_mode=crop_mode, flips=mode.endswith("+flips")))
        pipe.run(load_image(paths[0], pixel_size_mm=0.1))  # warm-up
        times, ort_times = [], []
        for p in paths:
            t0 = time.perf_counter()
            img = load_image(p, pixel_size_mm=0.1)
            pipe.run(img)
            times.append(time.perf_counter() - t0)
        # the network alone, on the same number of crops
        import numpy as np

        n_crops = {"full": 1, "corners": 4, "corners+flips": 8}[mode]
        x = np.zeros((n_crops, *pipe.segmenter.input_hw), np.uint8)
        for _ in range(10):
            t0 = time.perf_counter()
            pipe.segmenter.predict(x)
            ort_times.append(time.perf_counter() - t0)
        times.sort()
        out[mode] = {
            "median_s": statistics.median(times),
            "p90_s": times[int(0.9 * (len(times) - 1))],
            "network_only_median_s": statistics.median(ort_times),
            "n_images": len(times),
        }
        print(f"{mode:15s} median {out[mode]['median_s']*1000:6.0f} ms  p90 {out[mode]['p90_s']*1000:6.0f} ms  "
              f"(network alone {out[mode]['network_only_median_s']*1000:.0f} ms)", flush=True)
    return out


STREAM_CHILD = """
import resource, sys
from pathlib import Path
from fetalhc.batch import BatchOptions, run_batch
from fetalhc.pipeline import PipelineConfig
paths = [Path(p) for p in sys.argv[3:]]
n = int(sys.argv[1]); out = Path(sys.argv[2])
files = [paths[i % len(paths)] for i in range(n)]
rows = run_batch(files, PipelineConfig(), BatchOptions(pixel_size_mm=0.1, mask_dir=out / "masks", out=out / "r.csv"))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, sum(1 for r in rows if r["error"]))
"""


def bench_stream(paths: list[Path], n: int, tmp: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", STREAM_CHILD, str(n), str(tmp), *map(str, paths)],
                         capture_output=True, text=True, check=True)
    peak_mb, failed = res.stdout.split()[-2:]
    out = {"n_images": n, "peak_rss_mb": float(peak_mb), "failed": int(failed),
           "wall_s": time.perf_counter() - t0}
    print(f"stream {n} images: peak RSS {float(peak_mb):.0f} MB, {out['wall_s']:.0f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60, help="images timed per mode")
    ap.add_argument("--modes", default="full,corners,corners+flips")
    ap.add_argument("--stream", type=int, default=1000, help="images in the memory run (0: skip)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--model", type=Path, default=None, help="another ONNX model (default: the shipped one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        paths = image_paths(args.n, tmp)
        result = {
            "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
            "model": str(args.model or "shipped"),
            "speed": bench_speed(paths, args.modes.split(","), args.model),
        }
        if args.stream:
            result["stream"] = bench_stream(paths, args.stream, tmp)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
