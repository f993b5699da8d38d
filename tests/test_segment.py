"""Segmenter: provider choice (CUDA when offered), precisions, batched call, int8 vs fp32."""

from __future__ import annotations

import numpy as np
import pytest

import fetalhc.segment as segment
from fetalhc.ellipse import Ellipse
from fetalhc.phantom import make_phantom
from fetalhc.segment import ModelError, Segmenter, choose_providers, default_model_path

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


def test_choose_providers_prefers_cuda_when_offered():
    assert choose_providers([CUDA, "AzureExecutionProvider", CPU]) == [CUDA, CPU]
    assert choose_providers(["AzureExecutionProvider", CPU]) == [CPU]
    assert choose_providers([CUDA, CPU], device="cpu") == [CPU]
    assert choose_providers([CUDA, CPU], device="cuda") == [CUDA, CPU]
    with pytest.raises(ModelError, match="onnxruntime-gpu"):
        choose_providers([CPU], device="cuda")
    with pytest.raises(ValueError, match="device"):
        choose_providers([CPU], device="tpu")


def test_segmenter_asks_onnx_runtime_for_cuda_when_available(monkeypatch):
    import onnxruntime as ort

    asked: list[list[str]] = []
    real = ort.InferenceSession

    def spy(path, sess_options=None, providers=None):
        asked.append(list(providers))
        return real(path, sess_options=sess_options, providers=[CPU])  # no GPU here: run on the CPU

    monkeypatch.setattr(ort, "InferenceSession", spy)
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    Segmenter()
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CPU])
    seg = Segmenter()
    assert asked == [[CUDA, CPU], [CPU]]
    assert seg.providers == [CPU]


def test_default_model_path_per_precision():
    fp32, int8 = default_model_path("fp32"), default_model_path("int8")
    assert fp32.name == "fetalhc_deeplabv3plus_effl0.onnx" and int8.name == "fetalhc_deeplabv3plus_effl0_int8.onnx"
    assert default_model_path() == default_model_path(segment.DEFAULT_PRECISION)
    with pytest.raises(ValueError, match="precision"):
        default_model_path("fp16")


def test_both_shipped_models_load_with_their_checksums():
    for p in ("fp32", "int8"):
        seg = Segmenter(precision=p)
        assert seg.info.path == default_model_path(p) and seg.input_hw == (256, 384)
    assert default_model_path("int8").stat().st_size < 0.4 * default_model_path("fp32").stat().st_size


def test_shipped_int8_model_was_made_by_the_shipped_recipe():
    import json
    from dataclasses import asdict

    from fetalhc.quantize import SHIPPED_RECIPE

    meta = json.loads(default_model_path("int8").with_suffix(".json").read_text())
    made = {k: meta["quantization"][k] for k in asdict(SHIPPED_RECIPE)}
    assert made == {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(SHIPPED_RECIPE).items()}
    assert meta["quantized_from_sha256"] == Segmenter(precision="fp32").info.sha256


def _crops(n: int, hw: tuple[int, int]) -> np.ndarray:
    return np.stack([make_phantom(*hw, Ellipse(hw[1] / 2 + 5 * i, hw[0] / 2, hw[1] / 3, hw[0] / 3, 10 * i),
                                  seed=i)[0] for i in range(n)])


def test_one_batched_call_equals_one_call_per_crop():
    """``predict`` on a batch equals ``predict`` crop by crop, the per-crop session loop written
    out, and one batched session call (fp32; the same float input)."""
    seg = Segmenter(precision="fp32")
    crops = _crops(4, seg.input_hw)
    batched = seg.predict(crops)
    one_by_one = np.concatenate([seg.predict(c[None]) for c in crops])
    session = seg._session
    legacy = []
    for c in crops:  # the pre-batching code path, written out
        z = session.run(None, {seg._input: (c.astype(np.float32) / 255.0)[None, None]})[0][0, 0]
        legacy.append(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))))
    x = (crops.astype(np.float32) / 255.0)[:, None]  # the batched call of 2026-11-26..28, written out
    z = session.run(None, {seg._input: x})[0][:, 0]
    one_call = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    assert batched.dtype == np.float32 and batched.shape == crops.shape
    assert np.abs(batched - one_by_one).max() < 1e-5
    assert np.abs(batched - np.stack(legacy)).max() < 1e-5
    assert np.abs(batched - one_call).max() < 1e-5


def test_memory_settings_reach_onnx_runtime_and_leave_outputs_alone():
    """OrtMemory only changes how ONNX Runtime holds memory (benchmarks/worker_memory.py)."""
    default = Segmenter(precision="fp32", threads=1)
    lean = Segmenter(precision="fp32", threads=1, memory=segment.OrtMemory(arena=False, mem_pattern=False))
    on, off = default._session.get_session_options(), lean._session.get_session_options()
    assert (on.enable_cpu_mem_arena, on.enable_mem_pattern) == (True, True)
    assert (off.enable_cpu_mem_arena, off.enable_mem_pattern) == (False, False)
    crops = _crops(4, default.input_hw)
    for batch in (crops, crops[:1], crops):  # two shapes, as the corner and zoom calls alternate
        assert np.abs(default.predict(batch) - lean.predict(batch)).max() < 1e-6


INT8_HC_TOLERANCE = 0.02  # relative: 2 % of HC (about 3.5 mm on a 175 mm head)


def test_int8_agrees_with_fp32_on_phantoms():
    from fetalhc.image import UltrasoundImage
    from fetalhc.pipeline import Pipeline

    fp32 = Pipeline(default_model_path("fp32"))
    int8 = Pipeline(default_model_path("int8"))
    rel = []
    for i, e in enumerate([Ellipse(400, 270, 230, 170, 15), Ellipse(380, 260, 180, 140, -30),
                           Ellipse(420, 280, 260, 190, 80)]):
        img, _ = make_phantom(540, 800, e, seed=i)
        image = UltrasoundImage(img, 0.1)
        a, b = fp32.run(image).measurement, int8.run(image).measurement
        assert a.hc_mm is not None and b.hc_mm is not None
        rel.append(abs(a.hc_mm - b.hc_mm) / a.hc_mm)
    assert max(rel) < INT8_HC_TOLERANCE, rel


def test_measure_cli_rejects_an_unknown_precision(tmp_path):
    import cv2
    from typer.testing import CliRunner

    from fetalhc.cli import app

    img = tmp_path / "p.png"
    cv2.imwrite(str(img), make_phantom(135, 200, seed=1)[0])
    r = CliRunner().invoke(app, ["measure", str(img), "--pixel-size", "0.1", "--precision", "fp16"])
    assert r.exit_code == 2 and "precision" in r.output
