"""fetalhc: automatic fetal head circumference from 2-D ultrasound images.

>>> import fetalhc                                        # doctest: +SKIP
>>> r = fetalhc.measure("head.png", pixel_size_mm=0.12)   # doctest: +SKIP
>>> r.hc_mm, r.contour_hc_mm, r.status                    # doctest: +SKIP
"""

from fetalhc.results import MeasureResult

__version__ = "0.1.0"


def measure(*args, **kwargs):  # type: ignore[no-untyped-def]
    """See :func:`fetalhc.pipeline.measure` (imported lazily to keep ``import fetalhc`` light)."""
    from fetalhc.pipeline import measure as _measure

    return _measure(*args, **kwargs)


__all__ = ["MeasureResult", "__version__", "measure"]
