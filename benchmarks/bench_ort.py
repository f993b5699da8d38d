"""ONNX Runtime settings for the four-corner network call, measured side by side.

    python benchmarks/bench_ort.py [--rounds 15] [--int8 MODEL.onnx] [--json benchmarks/ort_tuning.json]

Every variant gets its own session; the variants are timed round-robin (one call of each per
round, ``--rounds`` rounds) so a load change on a shared machine hits them all alike. A call
segments the four corner crops of one HC18 test image (phantom without HC18) and includes the
uint8 -> float conversion and the sigmoid, as :meth:`fetalhc.segment.Segmenter.predict` does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from fetalhc.crops import corner_boxes, extract_crop
from fetalhc.segment import default_model_path

LEVELS = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
          "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


@dataclass(frozen=True)
class Variant:
    name: str
    precision: str = "fp32"
    opt: str = "all"
    intra: int = 2
    inter: int = 1
    parallel: bool = False
    arena: bool = True
    mem_pattern: bool = True
    batched: bool = False
    iobinding: bool = False


def make_call(v: Variant, model: Path) -> Callable[[NDArray[np.uint8]], NDArray[np.float32]]:
    o = ort.SessionOptions()
    o.graph_optimization_level = LEVELS[v.opt]
    o.intra_op_num_threads = v.intra
    o.inter_op_num_threads = v.inter
    o.execution_mode = ort.ExecutionMode.ORT_PARALLEL if v.parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    o.enable_cpu_mem_arena = v.arena
    o.enable_mem_pattern = v.mem_pattern
    o.log_severity_level = 3
    s = ort.InferenceSession(str(model), o, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name

    def sigmoid(z: NDArray[np.float32]) -> NDArray[np.float32]:
        np.clip(z, -30, 30, out=z)
        np.negative(z, out=z)
        np.exp(z, out=z)
        z += 1.0
        return np.reciprocal(z, out=z)

    def per_crop(crops: NDArray[np.uint8]) -> NDArray[np.float32]:
        out = np.empty(crops.shape, np.float32)
        for i, c in enumerate(crops):
            out[i] = sigmoid(s.run(None, {name: (c.astype(np.float32) / 255.0)[None, None]})[0][0, 0])
        return out

    def batched(crops: NDArray[np.uint8]) -> NDArray[np.float32]:
        x = (crops.astype(np.float32) * np.float32(1 / 255))[:, None]
        return sigmoid(s.run(None, {name: x})[0][:, 0])

    def bound(crops: NDArray[np.uint8]) -> NDArray[np.float32]:
        x = (crops.astype(np.float32) * np.float32(1 / 255))[:, None]
        y = np.empty_like(x)
        b = s.io_binding()
        b.bind_cpu_input(name, x)
        b.bind_output(s.get_outputs()[0].name, "cpu", 0, np.float32, list(y.shape), y.ctypes.data)
        s.run_with_iobinding(b)
        return sigmoid(y[:, 0])

    return bound if v.iobinding else batched if v.batched else per_crop


def sample_crops(hw: tuple[int, int]) -> NDArray[np.uint8]:
    import cv2

    from fetalhc.hc18 import default_data_dir

    d = default_data_dir()
    if d is not None:
        img = np.asarray(cv2.imread(str(sorted((d / "test_set").glob("*_HC.png"))[0]), cv2.IMREAD_GRAYSCALE))
    else:
        from fetalhc.phantom import make_phantom

        img, _ = make_phantom(540, 800, seed=0)
    boxes = corner_boxes(img.shape[1], img.shape[0], 0.9)
    return np.stack([np.asarray(extract_crop(img, b, hw), np.uint8) for b in boxes])


def variants(with_int8: bool) -> list[Variant]:
    base = Variant("today: per-crop, all opts, 2 threads, arena")
    b = replace(base, name="batched", batched=True)
    vs = [base, b,
          replace(b, name="batched, opt disable", opt="disable"),
          replace(b, name="batched, opt basic", opt="basic"),
          replace(b, name="batched, opt extended", opt="extended"),
          replace(b, name="batched, 1 thread", intra=1),
          replace(b, name="batched, parallel mode, inter 2", parallel=True, inter=2),
          replace(b, name="batched, arena off", arena=False),
          replace(b, name="batched, mem pattern off", mem_pattern=False),
          replace(b, name="batched, 1 thread, mem pattern off", intra=1, mem_pattern=False),
          replace(b, name="batched, io binding", iobinding=True),
          replace(base, name="per-crop, arena off", arena=False),
          replace(base, name="per-crop, mem pattern off", mem_pattern=False),
          replace(base, name="per-crop, 1 thread", intra=1),
          replace(base, name="per-crop, 1 thread, mem pattern off", intra=1, mem_pattern=False)]
    if with_int8:
        vs += [replace(v, name="int8 " + v.name, precision="int8") for v in
               (base, b, replace(b, name="batched, opt basic", opt="basic"),
                replace(b, name="batched, opt extended", opt="extended"),
                replace(b, name="batched, io binding", iobinding=True), replace(b, name="batched, 1 thread", intra=1))]
    return vs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--int8", type=Path, default=None, help="int8 model (default: the shipped one, if present)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    fp32 = default_model_path("fp32")
    int8 = args.int8 or default_model_path("int8")
    models = {"fp32": fp32, "int8": int8}
    vs = variants(int8.is_file())
    hw = tuple(json.loads(fp32.with_suffix(".json").read_text())["input_hw"])
    crops = sample_crops((int(hw[0]), int(hw[1])))
    calls = {v.name: make_call(v, models[v.precision]) for v in vs}
    ref = {p: calls[vs[0].name](crops) if p == "fp32" else None for p in models}
    times: dict[str, list[float]] = {v.name: [] for v in vs}
    diffs: dict[str, float] = {}
    for v in vs:  # warm-up and output check against the same precision's per-crop call
        got = calls[v.name](crops)
        if ref.get(v.precision) is None:
            ref[v.precision] = got
        diffs[v.name] = float(np.abs(got - ref[v.precision]).max())  # type: ignore[operator]
    for _ in range(args.rounds):
        for v in vs:
            t0 = time.perf_counter()
            calls[v.name](crops)
            times[v.name].append(time.perf_counter() - t0)
    rows = []
    for v in vs:
        ts = sorted(times[v.name])
        rows.append({**asdict(v), "median_s": statistics.median(ts), "p90_s": ts[int(0.9 * (len(ts) - 1))],
                     "min_s": ts[0], "max_abs_prob_diff_vs_per_crop": diffs[v.name]})
        print(f"{v.name:48s} median {rows[-1]['median_s'] * 1000:6.0f} ms  min {ts[0] * 1000:6.0f} ms  "
              f"max|dp| {diffs[v.name]:.1e}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"crops": int(crops.shape[0]), "rounds": args.rounds,
                                         "loadavg_start_end": os.getloadavg(), "ort": ort.__version__,
                                         "variants": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
