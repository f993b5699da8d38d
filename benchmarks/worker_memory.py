"""Peak resident memory of one measuring process, per ONNX Runtime memory setting.

    python benchmarks/worker_memory.py [--n 30] [--threads 1] [--json benchmarks/worker_memory.json]

Each setting runs in a fresh process (this script with ``--child``) that loads the model like a
Dask worker (``--threads`` ONNX Runtime threads; with one, no OpenCV thread pool either), measures
the same ``--n`` HC18 test images (phantoms without HC18) with the default pipeline, and reports
its VmHWM (peak resident set, MB) after loading the model and after the images, and the HCs (every
setting must give the default's). Memory only: for timing use ``bench_ort.py`` on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from archive_benchmark import _vm_hwm_mb

SETTINGS: dict[str, dict[str, bool]] = {
    "default": {},
    "mem pattern off": {"mem_pattern": False},
    "arena off": {"arena": False},
    "arena off, mem pattern off": {"arena": False, "mem_pattern": False},
}


def test_files(n: int) -> list[Path]:
    """The first ``n`` HC18 test images, or ``n`` phantoms written to a temporary folder."""
    import cv2

    from fetalhc.hc18 import default_data_dir
    from fetalhc.phantom import make_phantom

    d = default_data_dir()
    if d is not None:
        return sorted((d / "test_set").glob("*_HC.png"))[:n]
    tmp = Path(tempfile.mkdtemp())
    files = []
    for i in range(n):
        img, _ = make_phantom(540, 800, seed=i)
        files.append(tmp / f"p{i}.png")
        cv2.imwrite(str(files[-1]), img)
    return files


def child(n: int, threads: int, setting: dict[str, bool]) -> dict[str, object]:
    """Load the pipeline with ``setting``, measure ``n`` images; peak memory and HCs."""
    if threads == 1:
        import cv2

        cv2.setNumThreads(1)  # as fetalhc.archive_worker.worker_pipeline does
    from fetalhc.batch import BatchOptions, measure_file
    from fetalhc.pipeline import Pipeline, PipelineConfig
    from fetalhc.segment import OrtMemory

    pipe = Pipeline(None, PipelineConfig(), threads=threads, memory=OrtMemory(**setting))
    loaded = _vm_hwm_mb()
    opts, seen = BatchOptions(pixel_size_mm=0.15), set[str]()
    rows = [r for f in test_files(n) for r in measure_file(pipe, f, opts, seen)]
    failed = [r.error for r in rows if r.error]
    if failed:
        raise RuntimeError(f"measurement failed: {failed}")
    return {"images": len(rows), "after_load_mb": loaded, "peak_mb": _vm_hwm_mb(),
            "hc_mm": [None if r.hc_mm is None else round(r.hc_mm, 6) for r in rows]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30, help="images per setting")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (1: a Dask worker's)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", help=argparse.SUPPRESS)  # one setting, in this process (JSON of SETTINGS' values)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.n, args.threads, json.loads(args.child))))
        return
    out: dict[str, dict[str, object]] = {}
    for name, setting in SETTINGS.items():
        cmd = [sys.executable, __file__, "--n", str(args.n), "--threads", str(args.threads),
               "--child", json.dumps(setting)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
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
