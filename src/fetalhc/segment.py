"""Stage 4: segment crops with the shipped ONNX model (ONNX Runtime; no torch).

The model takes (N, 1, H, W) float32 grey values in [0, 1] and returns (N, 1, H, W)
logits of "head"; :class:`Segmenter` turns them into probabilities. Two copies ship: the
fp32 model and a static-int8 one (``precision="int8"``); ONNX Runtime's CUDA provider is used
when the installed ONNX Runtime offers it (``onnxruntime-gpu``), the CPU otherwise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

MODEL_NAME = "fetalhc_deeplabv3plus_effl0"
PRECISIONS = ("fp32", "int8")
#: the precision used when none is asked for (issue 11's rule, docs/speed.md): int8 since 0.3; with
#: 0.4's default views its ADF is 1.73 mm, fp32's 1.73 (paired -0.003, CI -0.08..+0.07), and 0.3's
#: shipped default's 1.76 (docs/results/coarse/)
DEFAULT_PRECISION = "int8"
DEVICES = ("auto", "cpu", "cuda")
#: a model with free spatial dims takes any multiple of this many pixels per side: the encoder's
#: deepest downsampling (EfficientNet-B0, 32; DeepLabV3+ itself runs at output stride 16)
STRIDE_PX = 32


@dataclass(frozen=True)
class OrtMemory:
    """ONNX Runtime memory settings of a :class:`Segmenter`.

    Attributes:
        arena: keep freed CPU memory in ONNX Runtime's arena for the next call.
        mem_pattern: pre-plan the allocations of each input shape from its first call
            (:meth:`Segmenter.predict` runs one crop per call; two shapes at most by default:
            the network's size and the coarse locate pass's).
    """

    arena: bool = True
    mem_pattern: bool = True


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


def default_model_path(precision: str | None = None) -> Path:
    """The model shipped inside the package (``fetalhc/models/``) in ``precision``
    ("fp32" or "int8"; default :data:`DEFAULT_PRECISION`)."""
    precision = precision or DEFAULT_PRECISION
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    suffix = "" if precision == "fp32" else f"_{precision}"
    return Path(str(resources.files("fetalhc") / "models" / f"{MODEL_NAME}{suffix}.onnx"))


def choose_providers(available: Sequence[str], device: str = "auto") -> list[str]:
    """ONNX Runtime execution providers for ``device`` given the ``available`` ones
    (``onnxruntime.get_available_providers()``): CUDA first when it is there and not refused,
    the CPU always as the fallback. ``device="cuda"`` without CUDA is an error."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not cuda:
        raise ModelError("device 'cuda' asked for, but this ONNX Runtime has no CUDAExecutionProvider "
                         "(install onnxruntime-gpu)")
    return (["CUDAExecutionProvider"] if cuda and device != "cpu" else []) + ["CPUExecutionProvider"]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_overwrite(out: Path, force: bool) -> None:
    """Refuse to replace an existing model (or its metadata JSON) unless ``force``: ``fetalhc
    export`` writes to the shipped model's path by default, and a stray run must not clobber it."""
    existing = [p for p in (out, out.with_suffix(".json")) if p.exists()]
    if existing and not force:
        raise FileExistsError(f"{existing[0]}: already exists; not overwritten (pass --force to replace it)")


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

    Args:
        model_path: an ONNX model with its metadata JSON beside it (default: the shipped model
            of ``precision``).
        threads: ONNX Runtime intra-op threads on the CPU.
        precision: "fp32" or "int8" shipped model; ignored when ``model_path`` is given.
        device: "auto" (CUDA when available), "cpu" or "cuda".
        memory: ONNX Runtime memory settings (outputs do not depend on them).
    """

    def __init__(self, model_path: str | Path | None = None, threads: int = 2, precision: str | None = None,
                 device: str = "auto", memory: OrtMemory | None = None) -> None:
        import onnxruntime as ort

        path = Path(model_path) if model_path is not None else default_model_path(precision)
        self.info = read_model_info(path)
        providers = choose_providers(ort.get_available_providers(), device)
        self._session = ort.InferenceSession(str(path), sess_options=session_options(threads, memory),
                                             providers=providers)
        self.providers: list[str] = list(self._session.get_providers())
        first = self._session.get_inputs()[0]
        self._input = first.name
        #: whether the model's rows and columns are symbolic (exports since 0.4, and the shipped
        #: models): it then takes any multiple of STRIDE_PX, not only ``input_hw``
        self.free_hw: bool = not all(isinstance(d, int) for d in first.shape[2:4])

    @property
    def input_hw(self) -> tuple[int, int]:
        """Network input size (rows, columns) in pixels: the size it was trained at."""
        return self.info.input_hw

    def accepts(self, hw: tuple[int, int]) -> bool:
        """Whether crops of ``hw`` (rows, columns) pixels can be fed: the training size, or with
        free spatial dims any positive multiple of :data:`STRIDE_PX`."""
        if tuple(hw) == self.input_hw:
            return True
        return self.free_hw and all(v > 0 and v % STRIDE_PX == 0 for v in hw)

    def predict(self, crops: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Head probabilities (N, H, W) for grey crops (N, H, W) uint8 of a size the model
        :meth:`accepts` (the input size; with free spatial dims, multiples of 32 too)."""
        if crops.ndim != 3 or not self.accepts((int(crops.shape[1]), int(crops.shape[2]))):
            what = f"of its input size or a multiple of {STRIDE_PX}" if self.free_hw else "of its fixed input size"
            raise ValueError(f"{self.info.path.name}: crops must have shape (N, H, W) {what} "
                             f"{self.input_hw}, got {crops.shape}")
        # one call per crop: on an idle 2-core machine 161 ms for four fp32 crops against 195 ms in
        # one batched call (int8: 95 vs 125 ms), and batch 1 for the memory planner, which plans each
        # input shape once (two by default: the network's size and the half-size finding pass's)
        # (benchmarks/bench_ort.py, benchmarks/ort_tuning.json; docs/speed.md)
        z = np.empty(crops.shape, np.float32)
        for i, crop in enumerate(crops):
            x = crop.astype(np.float32)[None, None]
            x /= np.float32(255.0)
            out = self._session.run(None, {self._input: x})[0]
            if out.shape[2:] != crop.shape:
                raise ModelError(f"{self.info.path.name}: output {out.shape[2:]} for an input of {crop.shape}: "
                                 "the graph does not follow its input's size")
            z[i] = out[0, 0]
        return sigmoid_(z)


def session_options(threads: int = 2, memory: OrtMemory | None = None) -> Any:
    """ONNX Runtime session options of a :class:`Segmenter` (measured in benchmarks/bench_ort.py,
    docs/speed.md): ``threads`` intra-op threads, one inter-op, sequential, all graph optimisations."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    mem = memory or OrtMemory()
    opts.enable_cpu_mem_arena = mem.arena
    opts.enable_mem_pattern = mem.mem_pattern
    return opts


def sigmoid_(z: NDArray[np.float32]) -> NDArray[np.float32]:
    """The logistic function of logits ``z``, computed in place (clipped to +-30 first)."""
    np.clip(z, -30.0, 30.0, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += np.float32(1.0)
    return np.reciprocal(z, out=z)
