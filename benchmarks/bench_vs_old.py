"""Default ``measure`` today vs the version of 2026-11-25 (commit 0aede5f), same run, same machine.

    python benchmarks/bench_vs_old.py [--n 60] [--old 0aede5f] [--precisions fp32,int8,int8@corners] [--json F]

The old version is checked out with ``git worktree add --detach /tmp/fetalhc_<commit> <commit>``
(reused when present). The old version, and today's once per ``--precisions`` entry, each run
in their own child process (``PYTHONPATH`` = its ``src``), load their model once and measure
two warm-up images; then the parent sends the same HC18 test images (800x540, the first
``--n``) to the children in turn, one image at a time (who goes first rotates), so a change
of load on a shared machine hits all alike. Per image the child times load + de-identify +
crops + network + fuse + ellipse + read-out + flags (as ``measure`` does, no file output)
and, separately, the time inside ``Segmenter.predict`` (the network).

Also reported: the network time against the model's FLOPs at this CPU's peak
(``benchmarks/onnx_flops.py`` states how the peak is estimated).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, time
try:
    from fetalhc.reader import load_image  # 0.2
except ImportError:
    from fetalhc.image import load_image  # 0.1
from fetalhc.pipeline import Pipeline
prec = os.environ.get("BENCH_PRECISION")
mode = os.environ.get("BENCH_MODE")
config = None
if mode:
    from fetalhc.evaluate import MODES
    config = MODES[mode]
if prec and prec.endswith(".onnx"):
    pipe = Pipeline(prec, config)
elif prec or config:
    pipe = Pipeline(precision=prec or None, config=config)
else:
    pipe = Pipeline()  # also the old version's signature
seg = pipe.segmenter
net = [0.0]
passes = [0]
predict = seg.predict
def timed(crops):
    t0 = time.perf_counter(); out = predict(crops); net[0] += time.perf_counter() - t0
    passes[0] += len(crops) * crops.shape[1] * crops.shape[2] / (seg.input_hw[0] * seg.input_hw[1])
    return out
seg.predict = timed
print(json.dumps({"model": seg.info.path.name, "model_path": str(seg.info.path), "ready": True}), flush=True)
for line in sys.stdin:
    path = line.strip()
    if not path:
        break
    net[0] = 0.0
    passes[0] = 0
    t0 = time.perf_counter()
    res = pipe.run(load_image(path, pixel_size_mm=0.1))
    t = time.perf_counter() - t0
    hc = res.measurement.hc_mm if hasattr(res, "measurement") else res.hc_mm  # 0.2 Outcome / 0.1 result
    print(json.dumps({"total_s": t, "network_s": net[0], "passes": passes[0], "hc_mm": hc}), flush=True)
"""


def old_tree(commit: str) -> Path:
    """A detached worktree of ``commit`` under /tmp (created once)."""
    path = Path(f"/tmp/fetalhc_{commit}")
    if not (path / "src" / "fetalhc").is_dir():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), commit], check=True,
                       capture_output=True)
    return path


class Child:
    """A version of fetalhc (``PYTHONPATH`` = ``src``) running ``script`` in its own process: one
    line in, one JSON line out."""

    def __init__(self, src: Path, precision: str | None = None, script: str = CHILD, mode: str | None = None) -> None:
        env = {**os.environ, "PYTHONPATH": str(src), "BENCH_PRECISION": precision or "", "BENCH_MODE": mode or ""}
        self.proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env, cwd="/tmp")
        self.hello = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("benchmark child died")
        return dict(json.loads(line))

    def send(self, line: str) -> dict[str, Any]:
        """Send one line, return the child's answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{line}\n")
        self.proc.stdin.flush()
        return self._read()

    def measure(self, path: Path) -> dict[str, float]:
        return {k: float(str(v)) for k, v in self.send(str(path)).items() if v is not None}

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def hc18_test_images(n: int) -> list[Path]:
    from fetalhc.hc18 import default_data_dir

    d = default_data_dir()
    if d is None:
        sys.exit("HC18 not found: set FETALHC_DATA")
    paths = sorted((d / "test_set").glob("*_HC.png"))
    return [p for p in paths if np.asarray(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)).shape == (540, 800)][:n]


def summary(rows: list[dict[str, float]]) -> dict[str, float]:
    t = sorted(r["total_s"] for r in rows)
    net = sorted(r["network_s"] for r in rows)
    return {"n_images": len(t), "median_s": statistics.median(t), "p90_s": t[int(0.9 * (len(t) - 1))],
            "mean_s": statistics.fmean(t), "network_median_s": statistics.median(net),
            "rest_median_s": statistics.median(r["total_s"] - r["network_s"] for r in rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--old", default="0aede5f")
    ap.add_argument("--precisions", default="fp32,int8",
                    help="today's models to time against the old one: fp32, int8 or a path to an .onnx model; "
                         "each may end in @MODE, a `fetalhc evaluate` mode (e.g. int8@corners: the patent's "
                         "corners + zoom pass, int8@full+zoomflip), else today's default settings")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from onnx_flops import conv_macs, cpu_peak

    paths = hc18_test_images(args.n)
    load_before = os.getloadavg()
    from fetalhc.segment import DEFAULT_PRECISION

    kids = {"old": Child(old_tree(args.old) / "src")}
    for entry in args.precisions.split(","):
        prec, _, mode = entry.partition("@")
        if prec.endswith(".onnx"):
            prec = str(Path(prec).resolve())  # the children run in /tmp
        kids[f"new-{entry}"] = Child(REPO / "src", prec, mode=mode or None)
    for k in kids.values():
        for p in paths[:2]:
            k.measure(p)
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in kids}
    names = list(kids)
    t0 = time.perf_counter()
    for i, p in enumerate(paths):
        for name in names[i % len(names):] + names[: i % len(names)]:  # rotate who goes first
            rows[name].append(kids[name].measure(p))
    wall = time.perf_counter() - t0
    for k in kids.values():
        k.close()
    res: dict[str, object] = {name: {"model": kids[name].hello["model"], **summary(r)} for name, r in rows.items()}
    peak = cpu_peak()

    def at_peak_s(name: str) -> tuple[float, float]:
        """(FLOPs per pass of the fp32 twin of ``name``'s model, seconds its median passes take at peak)."""
        model = Path(kids[name].hello.get("model_path", REPO / "src/fetalhc/models/fetalhc_deeplabv3plus_effl0.onnx"))
        fp32 = model.with_name(model.name.replace("_int8.onnx", ".onnx"))  # an int8 model counts as its fp32 twin
        flops = conv_macs(fp32)["flops"]
        n_pass = statistics.median(r["passes"] for r in rows[name])
        return flops, n_pass * flops / float(str(peak["peak_flops"]))

    old = summary(rows["old"])
    ratios = {}
    for name in names[1:]:
        new = summary(rows[name])
        flops, at_peak = at_peak_s(name)
        hc_diff = [abs(a.get("hc_mm", 0) - b.get("hc_mm", 0)) for a, b in zip(rows["old"], rows[name], strict=True)]
        ratios[name] = {"median_new_over_old": new["median_s"] / old["median_s"],
                        "mean_new_over_old": new["mean_s"] / old["mean_s"],
                        "network_new_over_old": new["network_median_s"] / old["network_median_s"],
                        "passes_median": statistics.median(r["passes"] for r in rows[name]),
                        "fp32_flops_per_pass": flops, "network_s_at_fp32_peak": at_peak,
                        "network_over_fp32_peak": new["network_median_s"] / at_peak,
                        "max_abs_hc_diff_vs_old_mm": max(hc_diff)}
    old_flops, old_at_peak = at_peak_s("old")
    res.update(
        old_commit=args.old, default_precision=DEFAULT_PRECISION, ratios=ratios,
        roofline={"old_fp32_flops_per_pass": old_flops, "old_passes_median": statistics.median(
                  r["passes"] for r in rows["old"]), "cpu": peak, "old_network_over_peak": old["network_median_s"]
                  / old_at_peak},
        loadavg_before=load_before, loadavg_after=os.getloadavg(), wall_s=wall, cpus=os.cpu_count(),
    )
    for name in names:
        r = summary(rows[name])
        print(f"{name:22s}: median {r['median_s'] * 1000:.0f} ms  p90 {r['p90_s'] * 1000:.0f} ms  "
              f"network {r['network_median_s'] * 1000:.0f} ms  rest {r['rest_median_s'] * 1000:.0f} ms"
              + (f"  new/old median {ratios[name]['median_new_over_old']:.2f} network "
                 f"{ratios[name]['network_new_over_old']:.2f}" if name in ratios else ""))
    for name, r in ratios.items():
        print(f"{name:22s}: {r['passes_median']:.2f} full-size passes, network / its time at fp32 peak "
              f"{r['network_over_fp32_peak']:.2f}")
    print(f"default precision {DEFAULT_PRECISION}; load {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
