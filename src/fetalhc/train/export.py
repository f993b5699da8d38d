"""``fetalhc export``: a training checkpoint -> ONNX model + metadata JSON (SHA-256 etc.)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from fetalhc.segment import check_overwrite, sha256_of
from fetalhc.train.network import build_model


def export_onnx(checkpoint: Path, out: Path, opset: int = 17, force: bool = False) -> Path:
    """Write ``out`` (ONNX, dynamic batch) and ``out.with_suffix('.json')``; check that ONNX
    Runtime reproduces torch's output on a random input (max abs logit difference < 1e-3).
    An existing ``out`` is replaced only with ``force`` (:func:`check_overwrite`)."""
    import onnxruntime as ort

    check_overwrite(out, force)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    cfg = state["config"]
    model = build_model(cfg["arch"], pretrained=False)
    model.load_state_dict(state["model"])
    model.eval()
    h, w = cfg["input_hw"]
    x = torch.rand(2, 1, h, w)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".onnx.tmp")
    torch.onnx.export(model, (x,), str(tmp), input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset,
                      dynamo=False)
    sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = model(x).numpy()
    got = sess.run(None, {"image": x.numpy()})[0]
    diff = float(np.abs(ref - got).max())
    if diff > 1e-3:
        tmp.unlink()
        raise RuntimeError(f"ONNX output differs from torch by {diff}")
    tmp.replace(out)
    meta = {
        "name": out.stem,
        "version": datetime.now(UTC).strftime("%Y%m%d"),
        "arch": cfg["arch"],
        "input_hw": [h, w],
        "input": "float32 (N, 1, H, W), grey values in [0, 1]",
        "output": "float32 (N, 1, H, W) logits of head (skull and brain)",
        "sha256": sha256_of(out),
        "epochs_trained": state["epoch"],
        "train_config": {k: v for k, v in cfg.items() if k not in ("data_dir", "out_dir")},
        "onnx_vs_torch_max_abs_diff": diff,
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return out

