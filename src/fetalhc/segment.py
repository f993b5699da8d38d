"""Stage 4: segment crops with the shipped ONNX model (ONNX Runtime; no torch).

The model takes (N, 1, H, W) float32 grey values in [0, 1] and returns (N, 1, H, W)
logits of "head"; :class:`Segmenter` turns them into probabilities.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

MODEL_NAME = "fetalhc_deeplabv3plus_effl0"


class ModelError(RuntimeError):
    """The model file is missing, damaged or does not match its checksum."""


@dataclass(frozen=True)
class ModelInfo:
    """What the model's metadata JSON says about it."""

    path: Path
    sha256: str
    input_hw: tuple[int, int]
    arch: str
    version: str


def default_model_path() -> Path:
    """The model shipped inside the package (``fetalhc/models/``)."""
    return Path(str(resources.files("fetalhc") / "models" / f"{MODEL_NAME}.onnx"))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_model_info(path: Path) -> ModelInfo:
    """Read ``<model>.json`` beside ``path`` and check the model's SHA-256 against it."""
    meta_path = path.with_suffix(".json")
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    if not meta_path.is_file():
        raise ModelError(f"{meta_path}: model metadata not found")
    meta = json.loads(meta_path.read_text())
    digest = sha256_of(path)
    if digest != meta["sha256"]:
        raise ModelError(
            f"{path}: checksum {digest[:12]}... does not match {meta['sha256'][:12]}... in {meta_path.name}"
        )
    return ModelInfo(path, digest, (int(meta["input_hw"][0]), int(meta["input_hw"][1])), meta["arch"], meta["version"])


class Segmenter:
    """Per-pixel head probability for batches of crops, from an ONNX model.

    >>> seg = Segmenter()                     # the shipped model
    >>> seg.predict(np.zeros((1, 256, 384), np.uint8)).shape
    (1, 256, 384)
    """

    def __init__(self, model_path: str | Path | None = None, threads: int = 2) -> None:
        import onnxruntime as ort

        path = Path(model_path) if model_path is not None else default_model_path()
        self.info = read_model_info(path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    @property
    def input_hw(self) -> tuple[int, int]:
        """Network input size (rows, columns) in pixels."""
        return self.info.input_hw

    def predict(self, crops: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Head probabilities (N, H, W) for grey crops (N, H, W) uint8 of the input size."""
        if crops.ndim != 3 or tuple(crops.shape[1:]) != self.input_hw:
            raise ValueError(f"crops must have shape (N, {self.input_hw[0]}, {self.input_hw[1]}), got {crops.shape}")
        out = np.empty(crops.shape, np.float32)
        # one crop at a time: batching saves little on 2 cores and holds 4x the activations
        for i, crop in enumerate(crops):
            x = (crop.astype(np.float32) / 255.0)[None, None]
            logits = self._session.run(None, {self._input: x})[0][0, 0]
            out[i] = 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))
        return out
