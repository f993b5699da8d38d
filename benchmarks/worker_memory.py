"""Peak resident memory of one measuring process, per ONNX Runtime memory setting.

    python benchmarks/worker_memory.py [--n 30] [--threads 1] [--json benchmarks/worker_memory.json]

Each setting runs in a fresh Python process (as a Dask worker would: one ONNX Runtime thread, no
OpenCV thread pool) that measures the same ``--n`` HC18 test images (phantoms without HC18) with
the default pipeline and reports its VmHWM (peak resident set, MB) after loading the model and
after the images. Memory only: for timing use ``bench_ort.py`` on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SETTINGS = {
    "default": {},
    "mem pattern off": {"mem_pattern": False},
    "arena off": {"arena": False},
    "arena off, mem pattern off": {"arena": False, "mem_pattern": False},
}

CHILD = r"""
import json, sys, tempfile
from pathlib import Path
import cv2
import numpy as np

cv2.setNumThreads(1)
from fetalhc.batch import BatchOptions, measure_file
from fetalhc.hc18 import default_data_dir
from fetalhc.pipeline import Pipeline, PipelineConfig
from fetalhc.segment import OrtMemory

args = json.loads(sys.argv[1])


def hwm_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


pipe = Pipeline(None, PipelineConfig(), threads=args["threads"], memory=OrtMemory(**args["setting"]))
loaded = hwm_mb()
d = default_data_dir()
if d is not None:
    files = sorted((d / "test_set").glob("*_HC.png"))[: args["n"]]
else:
    from fetalhc.phantom import make_phantom

    tmp = Path(tempfile.mkdtemp())
    files = []
    for i in range(args["n"]):
        img, _ = make_phantom(540, 800, seed=i)
        files.append(tmp / f"p{i}.png")
        cv2.imwrite(str(files[-1]), img)
opts, seen = BatchOptions(pixel_size_mm=0.15), set()
rows = [r for f in files for r in measure_file(pipe, f, opts, seen)]
assert not any(r.error for r in rows), [r.error for r in rows if r.error]
print(json.dumps({"images": len(rows), "after_load_mb": loaded, "peak_mb": hwm_mb(),
                  "hc_mm": [round(r.hc_mm, 6) for r in rows]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30, help="images per setting")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (1: a Dask worker's)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    out: dict[str, dict[str, object]] = {}
    for name, setting in SETTINGS.items():
        arg = json.dumps({"n": args.n, "threads": args.threads, "setting": setting})
        res = subprocess.run([sys.executable, "-c", CHILD, arg], capture_output=True, text=True, check=True)
        out[name] = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"{name:28s} after load {out[name]['after_load_mb']:6.1f} MB, peak {out[name]['peak_mb']:6.1f} MB "
              f"({out[name]['images']} images)", flush=True)
    ref = out["default"]["hc_mm"]
    for r in out.values():
        r["same_hc_as_default"] = r["hc_mm"] == ref
    if args.json:
        args.json.write_text(json.dumps({"command": "python benchmarks/worker_memory.py " + " ".join(sys.argv[1:]),
                                         "threads": args.threads, "settings": SETTINGS, "results": out}, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
