"""Static int8 quantisation of an fp32 ONNX model with ONNX Runtime (no torch needed).

Calibration feeds the network exactly what :class:`~fetalhc.pipeline.Pipeline` feeds it: the
four corner crops (Q = 0.9, resized with :func:`~fetalhc.crops.extract_crop`) of de-identified
HC18 *training* images of the committed split, so the validation split stays unseen.

    >>> quantize_model(Path("fp32.onnx"), Path("int8.onnx"), hc18_dir, QuantRecipe())  # doctest: +SKIP
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fetalhc.hc18 import DEFAULT_SPLIT, load_split
from fetalhc.segment import sha256_of

METHODS = ("minmax", "entropy", "percentile")


@dataclass(frozen=True)
class QuantRecipe:
    """How to quantise.

    Attributes:
        n_images: training images whose four corner crops calibrate the activations.
        method: "minmax", "entropy" or "percentile" (ONNX Runtime calibrators).
        percentile: the percentile kept by the "percentile" method.
        exclude_first_conv: keep the first convolution (on raw grey values) in fp32.
        exclude_last_convs: keep this many last convolutions (the decoder head) in fp32.
        per_channel: per-output-channel weight scales.
        seed: which training images are drawn.
    """

    n_images: int = 48
    method: str = "minmax"
    percentile: float = 99.999
    exclude_first_conv: bool = False
    exclude_last_convs: int = 0
    per_channel: bool = True
    seed: int = 0
    extra_exclude: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"calibration method must be one of {METHODS}, got {self.method!r}")
        if self.n_images < 1:
            raise ValueError(f"n_images must be >= 1, got {self.n_images}")


#: the recipe of the shipped int8 model (docs/speed.md has the variants tried): percentile 99.999 on
#: 12 images' corners (the histograms of 48 images need more than 24 GiB), the first conv and the
#: last (the 1x1 classifier) kept in fp32. Until 0.3 the decoder's 3x3 conv stayed fp32 too: 36 % of
#: the int8 network's time, for 0.002 mm of ADF (docs/speed.md, docs/results/coarse/)
SHIPPED_RECIPE = QuantRecipe(n_images=12, method="percentile", exclude_first_conv=True, exclude_last_convs=1)


def calibration_crops(data_dir: Path, split_file: Path, n_images: int, input_hw: tuple[int, int],
                      seed: int = 0) -> Iterator[NDArray[np.float32]]:
    """(1, 1, H, W) float32 crops in [0, 1]: the four corners of ``n_images`` training images."""
    from fetalhc.crops import corner_boxes, extract_crop
    from fetalhc.deid import deidentify_pixels
    from fetalhc.reader import load_image

    files = load_split(split_file)["train"]
    picked = random.Random(seed).sample(files, min(n_images, len(files)))
    for name in picked:
        img = deidentify_pixels(load_image(data_dir / "training_set" / name))
        px = img.pixels
        for box in corner_boxes(px.shape[1], px.shape[0], 0.9):
            yield (extract_crop(px, box, input_hw).astype(np.float32) / 255.0)[None, None]


def conv_node_names(model_path: Path) -> list[str]:
    """Names of the Conv nodes of an ONNX model, in graph order."""
    import onnx

    return [n.name for n in onnx.load(str(model_path)).graph.node if n.op_type == "Conv"]


def quantize_model(fp32_path: Path, out: Path, data_dir: Path, recipe: QuantRecipe | None = None,
                   split_file: Path = DEFAULT_SPLIT) -> Path:
    """Quantise ``fp32_path`` (QDQ: uint8 activations, int8 weights) into ``out``; write
    ``out.with_suffix('.json')`` from the fp32 model's metadata with the new SHA-256 and the recipe."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    rec = recipe or QuantRecipe()
    meta = json.loads(fp32_path.with_suffix(".json").read_text())
    hw = (int(meta["input_hw"][0]), int(meta["input_hw"][1]))
    input_name = _input_name(fp32_path)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = calibration_crops(data_dir, split_file, rec.n_images, hw, rec.seed)

        def get_next(self) -> dict[str, NDArray[np.float32]] | None:
            x = next(self._it, None)
            return None if x is None else {input_name: x}

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[rec.method]
    extra: dict[str, object] = {}
    if rec.method == "percentile":
        extra["CalibPercentile"] = rec.percentile
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre))
        convs = conv_node_names(pre)
        exclude = list(rec.extra_exclude)
        if rec.exclude_first_conv:
            exclude.append(convs[0])
        if rec.exclude_last_convs:
            exclude.extend(convs[-rec.exclude_last_convs:])
        tmp_out = Path(tmp) / "int8.onnx"
        quantize_static(str(pre), str(tmp_out), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=rec.per_channel, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=method, nodes_to_exclude=exclude,
                        extra_options=extra)
        tmp_out.replace(out)
    meta.update(name=out.stem, sha256=sha256_of(out), precision="int8", quantized_from=fp32_path.name,
                quantized_from_sha256=sha256_of(fp32_path),
                quantization={"format": "static QDQ, uint8 activations, int8 weights",
                              "n_calibration_crops": 4 * rec.n_images,
                              "calibration_data": "four Q=0.9 corner crops of de-identified HC18 training images",
                              "excluded_nodes": exclude, **asdict(rec)})
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def _input_name(path: Path) -> str:
    import onnx

    return str(onnx.load(str(path)).graph.input[0].name)
