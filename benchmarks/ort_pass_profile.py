"""One network pass of each model: time per input size and thread count, and where the time goes.

    python benchmarks/ort_pass_profile.py MODEL.onnx [MODEL2.onnx ...] [--sizes 256x384,128x192]
        [--rounds 20] [--same-as OTHER.onnx] [--json F]

For each model and size (rows x columns; a model with fixed dims runs its own size only) and
with 1 and 2 ONNX Runtime threads (settings as ``fetalhc.segment.Segmenter``): the median ms of
``--rounds`` single-image calls after 3 warm-up calls. Then ONNX Runtime's own profile of
``--rounds`` single-threaded calls at the first size: ms per call by operator type and the five
slowest nodes. ``--same-as`` also reports the largest absolute logit difference between the
first model and OTHER on one random input of the first size (e.g. a model before and after
``free_spatial_dims``). The old int8 model can be taken from git, e.g.
``git show 31a4cee:src/fetalhc/models/fetalhc_deeplabv3plus_effl0_int8.onnx > /tmp/int8_0.3.onnx``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from fetalhc.segment import session_options


def session(path: Path, threads: int, profile: bool = False) -> ort.InferenceSession:
    opts = session_options(threads)
    opts.enable_profiling = profile
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def fixed_hw(s: ort.InferenceSession) -> tuple[int, int] | None:
    dims = s.get_inputs()[0].shape[2:4]
    return (int(dims[0]), int(dims[1])) if all(isinstance(d, int) for d in dims) else None


def median_ms(s: ort.InferenceSession, hw: tuple[int, int], rounds: int) -> float:
    x = np.random.default_rng(0).random((1, 1, *hw), dtype=np.float32)
    name = s.get_inputs()[0].name
    for _ in range(3):
        s.run(None, {name: x})
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        s.run(None, {name: x})
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def profile(path: Path, hw: tuple[int, int], rounds: int) -> dict[str, Any]:
    s = session(path, 1, profile=True)
    median_ms(s, hw, rounds)
    trace = Path(s.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    calls = rounds + 3
    by_op: Counter[str] = Counter()
    by_node: Counter[str] = Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"].get("op_name", "?")] += e["dur"]
            by_node[e["name"].removesuffix("_kernel_time")] += e["dur"]
    total = sum(by_op.values())
    return {"size": list(hw), "threads": 1, "ms_per_call": total / calls / 1000,
            "by_op_ms": {k: round(v / calls / 1000, 2) for k, v in by_op.most_common()},
            "by_op_share": {k: round(v / total, 3) for k, v in by_op.most_common()},
            "slowest_nodes_ms": {k: round(v / calls / 1000, 2) for k, v in by_node.most_common(5)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--sizes", default="256x384,128x192")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--same-as", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    out: dict[str, Any] = {"loadavg_at_start": os.getloadavg(), "rounds": args.rounds, "models": {}}
    for path in args.models:
        rec: dict[str, Any] = {"times_ms": {}}
        for threads in (1, 2):
            s = session(path, threads)
            own = fixed_hw(s)
            for hw in sizes:
                if own is not None and hw != own:
                    continue
                ms = median_ms(s, hw, args.rounds)  # type: ignore[arg-type]
                rec["times_ms"][f"{hw[0]}x{hw[1]} {threads} thread(s)"] = round(ms, 2)
                print(f"{path.name:45s} {hw[0]}x{hw[1]} {threads} thread(s): {ms:6.1f} ms")
        rec["profile"] = profile(path, sizes[0], args.rounds)  # type: ignore[arg-type]
        p = rec["profile"]
        top = list(p["by_op_ms"].items())[:5]
        print(f"  profile, 1 thread, {p['ms_per_call']:.1f} ms per call: "
              + ", ".join(f"{k} {v} ms ({100 * p['by_op_share'][k]:.0f} %)" for k, v in top))
        print("  slowest nodes: " + ", ".join(f"{k} {v} ms" for k, v in p["slowest_nodes_ms"].items()))
        out["models"][str(path)] = rec
    if args.same_as is not None:
        x = np.random.default_rng(1).random((1, 1, *sizes[0]), dtype=np.float32)
        a, b = (session(m, 2) for m in (args.models[0], args.same_as))
        diff = float(np.abs(a.run(None, {a.get_inputs()[0].name: x})[0]
                            - b.run(None, {b.get_inputs()[0].name: x})[0]).max())
        out["max_abs_logit_diff_vs_same_as"] = diff
        print(f"max |logit difference| {args.models[0].name} vs {args.same_as.name}: {diff:.2g}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
