"""FLOPs of an ONNX segmentation model and this CPU's fp32 peak, for the roofline ratio.

    python benchmarks/onnx_flops.py [MODEL.onnx]

* MACs: every Conv (and Gemm/MatMul), with output shapes from one run at batch 1:
  ``N * C_out * H_out * W_out * (C_in / group) * kH * kW``; 1 MAC = 2 FLOPs. Element-wise
  operations (activations, adds, resizes) are left out: they are a few per cent and memory-bound.
* Parameters: the elements of every initializer (the exported graph's weights; batch norm is
  folded into the convolutions, so a little fewer than torch counts); ``file_mib``: the model
  file's size in MiB.
* Peak: cores x clock x fp32 FLOPs per cycle per core. The FLOPs per cycle come from the ISA
  flags in ``lscpu``: AVX-512 with two FMA units 64, AVX2+FMA (two 256-bit FMA units, as on
  AMD Zen 2/3/4 and Intel since Haswell) 32, SSE only 8. The clock is the maximum MHz lscpu
  reports, else the BogoMIPS / 2 estimate of the base clock (virtual machines often hide it).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import onnx


def conv_macs(model_path: Path, batch: int = 1) -> dict[str, float]:
    """Multiply-accumulates of the Conv and Gemm/MatMul nodes for one input of ``batch`` images
    at the model's training size (its metadata's ``input_hw`` where the graph leaves rows and
    columns free).

    Static shape inference cannot follow this graph's computed paddings, so the output shape of
    every Conv/Gemm/MatMul is read from one ONNX Runtime run (no graph optimisation) with those
    tensors added as graph outputs."""
    import numpy as np
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    known = {o.name for o in model.graph.output}
    for n in nodes:
        for name in (n.output[0], *(i for i in n.input[:1] if i not in inits)):
            if name not in known:
                model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
                known.add(name)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    meta = model_path.with_suffix(".json")
    hw = json.loads(meta.read_text())["input_hw"] if meta.is_file() else [256, 384]
    free = [batch, 1, *hw]
    x = np.zeros([d if isinstance(d, int) else free[i] for i, d in enumerate(inp.shape)], np.float32)
    names = [o.name for o in sess.get_outputs()]
    shapes = dict(zip(names, (list(a.shape) for a in sess.run(names, {inp.name: x})), strict=True))
    macs = 0
    for n in nodes:
        out = shapes[n.output[0]]
        if n.op_type == "Conv":
            c_out, c_in_per_group, *k = inits[n.input[1]]
            macs += int(np.prod(out[:1])) * c_out * int(np.prod(out[2:])) * c_in_per_group * int(np.prod(k))
        else:
            a = shapes.get(n.input[0]) or inits[n.input[0]]
            macs += int(np.prod(out)) * a[-1]
    return {"macs": float(macs), "flops": 2.0 * macs, "n_conv": sum(n.op_type == "Conv" for n in nodes),
            "parameters": int(sum(int(np.prod(d)) for d in inits.values())),
            "batch": batch}


def cpu_peak() -> dict[str, object]:
    """fp32 peak FLOP/s of this machine from ``lscpu`` (see the module docstring for the rule)."""
    text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    fields = {k.strip(): v.strip() for k, v in (ln.split(":", 1) for ln in text.splitlines() if ":" in ln)}
    cores = int(fields.get("CPU(s)", "1"))
    flags = set(fields.get("Flags", "").split())
    if "avx512f" in flags:
        per_cycle, isa = 64, "AVX-512 FMA, 2 units x 16 fp32 lanes x 2"
    elif "avx2" in flags and "fma" in flags:
        per_cycle, isa = 32, "AVX2 FMA, 2 units x 8 fp32 lanes x 2"
    else:
        per_cycle, isa = 8, "SSE, 4 lanes x (add + mul)"
    mhz = fields.get("CPU max MHz")
    if mhz:
        ghz, clock_source = float(mhz) / 1000, "lscpu CPU max MHz"
    else:
        ghz, clock_source = float(fields.get("BogoMIPS", "2000")) / 2000, "BogoMIPS / 2 (base clock estimate)"
    model = fields.get("Model name", "?")
    return {"model_name": model, "cores": cores, "ghz": ghz, "clock_source": clock_source, "isa": isa,
            "flops_per_cycle_per_core": per_cycle, "peak_flops": cores * ghz * 1e9 * per_cycle,
            "cpu_family": fields.get("CPU family"), "cpu_model": fields.get("Model"),
            "note": re.sub(r"\s+", " ", "assumes both cores run FMA at full width every cycle")}


def main() -> None:
    model = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("src/fetalhc/models/fetalhc_deeplabv3plus_effl0.onnx")
    out = {"model": model.name, "file_mib": model.stat().st_size / 2**20, "per_crop": conv_macs(model),
           "cpu": cpu_peak()}
    peak = out["cpu"]["peak_flops"]  # type: ignore[index]
    out["crop_time_at_peak_s"] = out["per_crop"]["flops"] / peak  # type: ignore[index,operator]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
