"""The measuring engine behind the API: one loaded model shared by every worker, and the jobs the
worker pool runs (decode -> de-identify -> measure -> optional correction -> download bytes)."""

from __future__ import annotations

import base64
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from fetalhc.api.readout import edited_result
from fetalhc.api.uploads import Decoded, decode_upload
from fetalhc.ellipse import Ellipse
from fetalhc.image import UltrasoundImage
from fetalhc.pipeline import Pipeline, PipelineConfig
from fetalhc.results import MeasureResult, assemble
from fetalhc.segment import ModelInfo, default_model_path, read_model_info


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    """Limits of the API (environment variables in brackets).

    Attributes:
        workers: measuring threads (FETALHC_WORKERS; default: CPU cores, at most 4).
        queue: jobs that may wait for a worker before the API answers 503 (FETALHC_QUEUE, 8).
        timeout_s: longest wait for one job before 504 (FETALHC_TIMEOUT_S, 60).
        max_upload_bytes: largest request body (FETALHC_MAX_UPLOAD_MB, 50 MiB).
        ort_threads: ONNX Runtime threads per inference (cores / workers, at least 1).
    """

    workers: int = field(default_factory=lambda: max(1, _env_int("FETALHC_WORKERS", min(4, os.cpu_count() or 1))))
    queue: int = field(default_factory=lambda: max(0, _env_int("FETALHC_QUEUE", 8)))
    timeout_s: float = field(default_factory=lambda: float(max(1, _env_int("FETALHC_TIMEOUT_S", 60))))
    max_upload_bytes: int = field(default_factory=lambda: max(1, _env_int("FETALHC_MAX_UPLOAD_MB", 50)) * 2**20)
    ort_threads: int | None = None

    def threads_per_inference(self) -> int:
        return self.ort_threads or max(1, (os.cpu_count() or 1) // self.workers)


@dataclass(frozen=True)
class Reading:
    """What one job produced: the decoded upload, the de-identified image, the automatic result and,
    when a person corrected the ellipse, the edited result."""

    decoded: Decoded
    clean: UltrasoundImage
    automatic: MeasureResult
    edited: MeasureResult | None = None

    @property
    def result(self) -> MeasureResult:
        return self.edited if self.edited is not None else self.automatic


class Engine:
    """One loaded model (one ONNX Runtime session, whose ``run`` is thread-safe) shared by all
    workers; pipelines with other settings share it through :meth:`Pipeline.with_config`."""

    def __init__(self, settings: Settings, model_path: str | None = None) -> None:
        self.settings = settings
        self.model_path = model_path
        self.info: ModelInfo = read_model_info(default_model_path() if model_path is None else Path(model_path))
        self._base: Pipeline | None = None
        self._lock = threading.Lock()

    def pipeline(self, config: PipelineConfig) -> Pipeline:
        with self._lock:
            if self._base is None:
                self._base = Pipeline(self.model_path, PipelineConfig(),
                                      threads=self.settings.threads_per_inference())
        return self._base.with_config(config)

    def read(self, data: bytes, *, pixel_size_mm: float | None, ga_weeks: float | None, config: PipelineConfig,
             frame: int | None, ellipse: Ellipse | None = None) -> Reading:
        """Decode, de-identify and measure one upload; apply a person's ``ellipse`` if given."""
        dec = decode_upload(data, pixel_size_mm, frame)
        pipe = self.pipeline(config)
        outcome = pipe.run(dec.image, ga_weeks)
        res = assemble(outcome, frame=dec.frame)
        edited = None if ellipse is None else edited_result(res, ellipse, outcome.image.pixels.shape[:2])
        return Reading(dec, outcome.image, res, edited)


def png_base64(pixels: NDArray[np.generic]) -> str:
    """``pixels`` (grey or BGR uint8) as a base64 PNG."""
    ok, buf = cv2.imencode(".png", pixels)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return base64.b64encode(buf.tobytes()).decode("ascii")
