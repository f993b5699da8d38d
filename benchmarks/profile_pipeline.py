"""Where the non-network time of default ``measure`` goes (cProfile), per stage and function.

    python benchmarks/profile_pipeline.py [--n 30] [--threads 2] [--json benchmarks/profile_pipeline.json]

Runs ``Pipeline().run(load_image(p, pixel_size_mm=0.1))`` on the first ``--n`` 800x540 HC18 test
images under cProfile (after one warm-up image) and lists the functions with the largest own
time (tottime) and the largest cumulative time, in ms per image, with file:function.
``--threads 1`` profiles as a Dask worker runs (ONNX Runtime and OpenCV on one thread each). The ONNX
Runtime call (``InferenceSession.run``) is reported on its own line so the rest can be read
as "everything but the network".
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (1: also OpenCV on one)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_vs_old import hc18_test_images

    from fetalhc.pipeline import Pipeline
    from fetalhc.reader import load_image

    paths = hc18_test_images(args.n)
    if args.threads == 1:
        import cv2

        cv2.setNumThreads(1)  # as fetalhc.archive_worker does for a one-core worker
    pipe = Pipeline(threads=args.threads)
    pipe.run(load_image(paths[0], pixel_size_mm=0.1))
    load = os.getloadavg()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for p in paths:
        pipe.run(load_image(p, pixel_size_mm=0.1))
    prof.disable()
    wall = time.perf_counter() - t0
    st = pstats.Stats(prof)
    n = len(paths)
    rows = []
    for (file, line, func), (_cc, _nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        short = file.split("site-packages/")[-1].split("/src/")[-1]
        rows.append({"where": f"{short}:{line}:{func}", "own_ms": 1000 * tt / n, "cum_ms": 1000 * ct / n})
    network = sum(r["own_ms"] for r in rows if "onnxruntime" in r["where"] and r["where"].rstrip(">").endswith("run"))
    total = 1000 * wall / n
    own = sorted(rows, key=lambda r: -r["own_ms"])[: args.top]
    cum = sorted((r for r in rows if "fetalhc/" in r["where"]), key=lambda r: -r["cum_ms"])[: args.top]
    print(f"{n} images, {total:.0f} ms per image under the profiler, of which ONNX Runtime {network:.0f} ms; "
          f"load {load[0]:.1f}")
    print("\nown time (ms/image):")
    for r in own:
        print(f"  {r['own_ms']:7.1f}  {r['where']}")
    print("\ncumulative time of fetalhc functions (ms/image):")
    for r in cum:
        print(f"  {r['cum_ms']:7.1f}  {r['where']}")
    if args.json:
        args.json.write_text(json.dumps({"n_images": n, "threads": args.threads, "ms_per_image_profiled": total,
                                         "onnxruntime_ms_per_image": network, "loadavg": load,
                                         "top_own": own, "top_cumulative_fetalhc": cum}, indent=2) + "\n")


if __name__ == "__main__":
    main()
