"""fetalhc: automatic fetal head circumference from 2-D ultrasound images.

>>> import fetalhc                                        # doctest: +SKIP
>>> r = fetalhc.measure("head.png", pixel_size_mm=0.12)   # doctest: +SKIP
>>> r.hc_mm, r.patent_pixel_count_hc_mm, r.status         # doctest: +SKIP
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from fetalhc._version import __version__
from fetalhc.results import MeasureResult

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from fetalhc.image import UltrasoundImage
    from fetalhc.pipeline import Pipeline, PipelineConfig



@lru_cache(maxsize=4)
def _pipeline(model_path: str | None, config: PipelineConfig | None) -> Pipeline:
    from fetalhc.pipeline import Pipeline

    return Pipeline(model_path, config)


def measure(image: str | Path | UltrasoundImage | NDArray[np.generic], pixel_size_mm: float | None = None, *,
            ga_weeks: float | None = None, frame: int | None = None, config: PipelineConfig | None = None,
            model_path: str | Path | None = None) -> MeasureResult:
    """Measure the fetal head circumference on one image with the shipped model.

    Args:
        image: a file path (PNG, JPEG, BMP, TIFF, DICOM), a grey/RGB array, or an UltrasoundImage.
        pixel_size_mm: pixel size in millimetres; overrides any size the file carries (and the
            result is flagged ``pixel_size_overridden`` when they differ). Without any, lengths are
            in pixels only (``hc_mm`` is None and a flag says so).
        ga_weeks: gestational age in weeks (10-45), for the HC z-score and centile.
        frame: the frame (0-based) of a DICOM cine; a cine without ``frame`` is refused, as
            :func:`measure_file` measures every frame (as ``fetalhc measure`` does).
        config: pipeline settings (crop mode, Q, flips, quality thresholds, ...).
        model_path: another ONNX model with its metadata JSON beside it.

    Returns:
        A :class:`~fetalhc.results.MeasureResult`; ``hc_mm`` is the clinical ellipse HC.
    """
    from fetalhc.batch import BatchOptions, iter_images, resolve_inputs
    from fetalhc.image import UltrasoundImage, to_grey_uint8
    from fetalhc.results import assemble

    pipe = _pipeline(str(model_path) if model_path else None, config)
    opts = BatchOptions(pixel_size_mm=pixel_size_mm, ga_weeks=ga_weeks, frame=frame)
    if isinstance(image, (str, Path)):
        frames = iter_images(Path(image), frame)
        _, img = next(frames)
        if next(frames, None) is not None:
            raise ValueError(f"{image}: a DICOM cine of several frames; pass frame=N, or use "
                             "fetalhc.measure_file for one result per frame")
    elif isinstance(image, UltrasoundImage):
        img = image
    else:
        import numpy as np

        img = UltrasoundImage(to_grey_uint8(np.asarray(image)))
    img, ga, input_flags = resolve_inputs(img, opts)
    return assemble(pipe.run(img, ga, input_flags=input_flags))


def measure_file(path: str | Path, pixel_size_mm: float | None = None, *, ga_weeks: float | None = None,
                 config: PipelineConfig | None = None, model_path: str | Path | None = None) -> list[MeasureResult]:
    """Measure every image of one file as ``fetalhc measure`` does: one result per DICOM frame.
    A file that cannot be read gives one result with ``error`` set (``status`` "failed")."""
    from fetalhc.batch import BatchOptions
    from fetalhc.batch import measure_file as _measure_file

    pipe = _pipeline(str(model_path) if model_path else None, config)
    return _measure_file(pipe, Path(path), BatchOptions(pixel_size_mm=pixel_size_mm, ga_weeks=ga_weeks), set())


__all__ = ["MeasureResult", "__version__", "measure", "measure_file"]
