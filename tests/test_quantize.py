"""int8 quantisation from an fp32 .onnx (no torch) and `fetalhc export` never overwriting a model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

onnx = pytest.importorskip("onnx", reason="quantisation needs the onnx package (dev or train extra)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from fetalhc.cli import app  # noqa: E402
from fetalhc.phantom import make_phantom  # noqa: E402
from fetalhc.quantize import QuantRecipe, quantize_model  # noqa: E402
from fetalhc.segment import Segmenter, check_overwrite, sha256_of  # noqa: E402

HW = (32, 48)


def _tiny_model(path: Path) -> Path:
    """Two 3x3 convolutions, (N, 1, 32, 48) -> (N, 1, 32, 48) logits, with its metadata JSON."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.5, (1, 4, 3, 3)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["image", "w1"], ["h"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["logits"], pads=[1, 1, 1, 1], name="conv2")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                             ["batch", 1, *HW])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1, *HW])],
                              [w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    path.with_suffix(".json").write_text(json.dumps({"name": path.stem, "version": "test", "arch": "tiny",
                                                     "input_hw": list(HW), "sha256": sha256_of(path)}))
    return path


def _fake_hc18(root: Path, n: int = 3) -> tuple[Path, Path]:
    (root / "training_set").mkdir(parents=True)
    names = []
    for i in range(n):
        img, _ = make_phantom(90, 130, seed=i)
        names.append(f"{i:03d}_HC.png")
        cv2.imwrite(str(root / "training_set" / names[-1]), img)
    split = root / "split.json"
    split.write_text(json.dumps({"train": names, "val": [], "test": []}))
    return root, split


def test_quantize_from_onnx_writes_checked_int8_model(tmp_path):
    fp32 = _tiny_model(tmp_path / "m.onnx")
    data, split = _fake_hc18(tmp_path / "hc18")
    out = quantize_model(fp32, tmp_path / "q" / "m_int8.onnx", data, QuantRecipe(n_images=3), split)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["precision"] == "int8" and meta["quantization"]["n_calibration_crops"] == 12
    assert meta["quantized_from_sha256"] == sha256_of(fp32)
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    x = np.stack([make_phantom(*HW, seed=9)[0]] * 2)
    p32, p8 = Segmenter(fp32).predict(x), Segmenter(out).predict(x)  # Segmenter checks the SHA-256
    assert np.abs(p32 - p8).mean() < 0.02  # random weights: a loose check that int8 tracks fp32


def test_excluded_convs_stay_float(tmp_path):
    fp32 = _tiny_model(tmp_path / "m.onnx")
    data, split = _fake_hc18(tmp_path / "hc18")
    out = quantize_model(fp32, tmp_path / "x.onnx", data,
                         QuantRecipe(n_images=2, exclude_first_conv=True, exclude_last_convs=1), split)
    g = onnx.load(str(out)).graph
    assert not any(n.op_type == "QuantizeLinear" for n in g.node)
    assert json.loads(out.with_suffix(".json").read_text())["quantization"]["excluded_nodes"] == ["conv1", "conv2"]


def test_recipe_rejects_bad_values():
    with pytest.raises(ValueError, match="calibration method"):
        QuantRecipe(method="kl")
    with pytest.raises(ValueError, match="n_images"):
        QuantRecipe(n_images=0)


def test_check_overwrite(tmp_path):
    p = tmp_path / "m.onnx"
    check_overwrite(p, force=False)  # nothing there yet
    p.with_suffix(".json").write_text("{}")
    with pytest.raises(FileExistsError, match="--force"):
        check_overwrite(p, force=False)
    check_overwrite(p, force=True)


def test_export_cli_never_overwrites_a_model_without_force(tmp_path):
    fp32 = _tiny_model(tmp_path / "m.onnx")
    data, split = _fake_hc18(tmp_path / "hc18")
    target = tmp_path / "int8.onnx"
    target.write_bytes(b"keep me")
    args = ["export", str(fp32), "--int8", str(target), "--data-dir", str(data), "--split", str(split)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and "--force" in r.output and target.read_bytes() == b"keep me"
    r = CliRunner().invoke(app, [*args, "--force"])
    assert r.exit_code == 0, r.output
    assert target.read_bytes() != b"keep me" and Segmenter(target).input_hw == HW


def test_export_cli_refuses_the_shipped_model_path(tmp_path):
    pytest.importorskip("torch", reason="exporting a checkpoint needs the train extra")
    from fetalhc.segment import default_model_path

    shipped = default_model_path("fp32")
    before = sha256_of(shipped)
    r = CliRunner().invoke(app, ["export", str(tmp_path / "missing.pt"), "--out", str(shipped)])
    assert r.exit_code == 2 and "already exists" in " ".join(r.output.split())
    assert sha256_of(shipped) == before


def test_export_cli_passes_the_recipe_and_refuses_a_bad_one(tmp_path):
    fp32 = _tiny_model(tmp_path / "m.onnx")
    data, split = _fake_hc18(tmp_path / "hc18")
    base = ["export", str(fp32), "--data-dir", str(data), "--split", str(split)]
    r = CliRunner().invoke(app, [*base, "--int8", str(tmp_path / "bad.onnx"), "--int8-method", "kl"])
    assert r.exit_code == 2 and "calibration method" in " ".join(r.output.split())
    assert not (tmp_path / "bad.onnx").exists()
    out = tmp_path / "q.onnx"
    r = CliRunner().invoke(app, [*base, "--int8", str(out), "--int8-method", "percentile", "--int8-images", "2",
                                 "--no-int8-keep-first", "--int8-keep-last", "1"])
    assert r.exit_code == 0, r.output
    q = json.loads(out.with_suffix(".json").read_text())["quantization"]
    assert (q["method"], q["n_images"], q["excluded_nodes"]) == ("percentile", 2, ["conv2"])


def test_export_cli_defaults_are_the_shipped_recipe(tmp_path):
    from fetalhc.quantize import SHIPPED_RECIPE

    fp32 = _tiny_model(tmp_path / "m.onnx")
    data, split = _fake_hc18(tmp_path / "hc18", n=2)
    out = tmp_path / "q.onnx"
    r = CliRunner().invoke(app, ["export", str(fp32), "--data-dir", str(data), "--split", str(split),
                                 "--int8", str(out)])
    assert r.exit_code == 0, r.output
    q = json.loads(out.with_suffix(".json").read_text())["quantization"]
    assert (q["method"], q["n_images"], q["exclude_first_conv"], q["exclude_last_convs"]) == (
        SHIPPED_RECIPE.method, SHIPPED_RECIPE.n_images, SHIPPED_RECIPE.exclude_first_conv,
        SHIPPED_RECIPE.exclude_last_convs)
