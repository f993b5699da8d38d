"""``fetalhc export``: a training checkpoint -> ONNX model + metadata JSON (SHA-256 etc.)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from fetalhc.segment import sha256_of
from fetalhc.train.network import build_model


def export_onnx(checkpoint: Path, out: Path, opset: int = 17) -> Path:
    """Write ``out`` (ONNX, dynamic batch) and ``out.with_suffix('.json')``; check that ONNX
    Runtime reproduces torch's output on a random input (max abs logit difference < 1e-3)."""
    import onnxruntime as ort

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


def quantize_int8(fp32_path: Path, out: Path, data_dir: Path, split_file: Path, n_calibration: int = 48,
                  seed: int = 0) -> Path:
    """Static int8 quantisation (QDQ, per-channel weights, MinMax calibration on
    ``n_calibration`` corner crops of training images) of an exported fp32 model.

    About 2x faster on 2 cores, at a small cost in accuracy (see README); writes ``out`` and
    its metadata JSON.
    """
    import random
    import tempfile

    import cv2
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from fetalhc.crops import corner_boxes, extract_crop
    from fetalhc.hc18 import load_split

    meta = json.loads(fp32_path.with_suffix(".json").read_text())
    h, w = meta["input_hw"]
    files = load_split(split_file)["train"]
    rng = random.Random(seed)
    picked = rng.sample(files, min(n_calibration, len(files)))

    class Crops(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter(picked)

        def get_next(self) -> dict[str, np.ndarray] | None:
            f = next(self._items, None)
            if f is None:
                return None
            img = cv2.imread(str(data_dir / "training_set" / f), cv2.IMREAD_GRAYSCALE)
            box = rng.choice(corner_boxes(img.shape[1], img.shape[0], 0.9))
            return {"image": (extract_crop(img, box, (h, w)).astype(np.float32) / 255.0)[None, None]}

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre))
        quantize_static(str(pre), str(out), Crops(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    meta.update(name=out.stem, sha256=sha256_of(out), quantization=f"static int8 QDQ, {len(picked)} calibration crops",
                quantized_from=fp32_path.name)
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return out
