"""``fetalhc export``: a training checkpoint -> ONNX model + metadata JSON (SHA-256 etc.)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from fetalhc.segment import check_overwrite, sha256_of
from fetalhc.train.network import build_model

#: the symbolic input / output axes of an exported model: batch, rows and columns are free, so the
#: one file serves the network's training size and the coarse locate pass (segmentation.ZoomSettings)
DYNAMIC_AXES = {0: "batch", 2: "height", 3: "width"}


def export_onnx(checkpoint: Path, out: Path, opset: int = 17, force: bool = False) -> Path:
    """Write ``out`` (ONNX, dynamic batch, height and width) and ``out.with_suffix('.json')``; check that ONNX
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
                      dynamic_axes={"image": DYNAMIC_AXES, "logits": DYNAMIC_AXES}, opset_version=opset,
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


def free_spatial_dims(model: Path, out: Path, force: bool = False) -> Path:
    """Copy the ONNX ``model`` to ``out`` with its image input's and its output's rows and columns
    made symbolic ("height", "width"; weights and nodes untouched), for models exported before 0.4
    with a fixed size. Its metadata JSON goes beside ``out`` with the new SHA-256. The copy must
    run at half its size with an output of its input's size (the graph sizes its resizes from its
    tensors, as torch exports of :mod:`fetalhc.train.network` do), else nothing is written. An
    existing ``out`` (``model`` itself included) is replaced only with ``force``."""
    import onnx
    import onnxruntime as ort

    from fetalhc.segmentation import locate_hw

    check_overwrite(out, force)
    m = onnx.load(str(model))
    weights = {t.name for t in m.graph.initializer}
    image = [v for v in m.graph.input if v.name not in weights][:1]
    for value in (*image, *m.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) != 4:
            raise ValueError(f"{model}: {value.name} has {len(dims)} dims, expected (N, 1, H, W)")
        for axis in (2, 3):
            dims[axis].Clear()
            dims[axis].dim_param = DYNAMIC_AXES[axis]
    del m.graph.value_info[:]  # shapes inferred for the fixed size would contradict the free ones
    meta = json.loads(model.with_suffix(".json").read_text())
    h, w = locate_hw((int(meta["input_hw"][0]), int(meta["input_hw"][1])), 0.5)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {image[0].name: np.zeros((1, 1, h, w), np.float32)})[0].shape
    if tuple(got[2:]) != (h, w):
        raise ValueError(f"{model}: at {h} x {w} the graph gives {got}: it does not follow its input's size")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".onnx.tmp")
    onnx.save(m, str(tmp))
    tmp.replace(out)
    meta["sha256"] = sha256_of(out)
    meta["name"] = out.stem
    meta["spatial_dims"] = "free (height, width); made by fetalhc.train.export.free_spatial_dims"
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return out
