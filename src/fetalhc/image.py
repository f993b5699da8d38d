"""Stage 1: the grey image value, grey conversion and Pillow loading (PNG, JPEG, BMP, TIFF).

Pixels never travel without their physical size: :class:`UltrasoundImage` holds the pixel
size in millimetres (or ``None``) and where that size came from. This module imports no other
fetalhc module: :mod:`fetalhc.dicom` decodes DICOM into this value and :mod:`fetalhc.reader`
picks the decoder for a file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

#: Largest image accepted, in pixels (a decompression-bomb guard; 800x540 is 0.43 M).
MAX_PIXELS = 40_000_000
SUPPORTED_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class ImageLoadError(ValueError):
    """An input file could not be read as an image; the message names the file."""


@dataclass(frozen=True)
class UltrasoundImage:
    """A grey ultrasound image.

    Attributes:
        pixels: (H, W) uint8 grey values.
        pixel_size_mm: size of one pixel in millimetres (square pixels), or ``None`` if unknown.
        pixel_size_source: where ``pixel_size_mm`` came from ("user", "csv", "dicom:...", "none").
        name: the file name (or "<array>") used in results and error messages.
        regions: ultrasound regions (x0, y0, x1, y1) in pixels, where the source gives them.
        notes: remarks gathered while loading (e.g. about conflicting spacings).
    """

    pixels: NDArray[np.uint8]
    pixel_size_mm: float | None = None
    pixel_size_source: str = "none"
    name: str = "<array>"
    regions: tuple[tuple[int, int, int, int], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def height_px(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width_px(self) -> int:
        return int(self.pixels.shape[1])

    def with_pixel_size(self, pixel_size_mm: float | None, source: str) -> UltrasoundImage:
        """A copy with another pixel size (mm) and its source."""
        if pixel_size_mm is None:
            return replace(self, pixel_size_mm=None, pixel_size_source="none")
        return replace(self, pixel_size_mm=validate_pixel_size(pixel_size_mm, self.name), pixel_size_source=source)


def validate_pixel_size(value: float | str, where: str = "pixel size") -> float:
    """A finite, positive pixel size in mm, else ``ValueError`` naming ``where``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: pixel size {value!r} is not a number") from None
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{where}: pixel size must be a positive number of millimetres, got {value!r}")
    return v


def to_grey_uint8(arr: NDArray[np.generic], name: str = "<array>") -> NDArray[np.uint8]:
    """Convert grey, RGB or RGBA arrays of 8 or 16 bits (or floats in [0, 1]) to grey uint8.

    RGB uses ITU-R 601 luma; RGBA is composited on black; 16-bit data are scaled so the
    brightest possible value of the data's bit depth maps to 255.
    """
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 3:
        if a.shape[2] not in (3, 4):
            raise ImageLoadError(f"{name}: expected 1, 3 or 4 channels, got {a.shape[2]}")
        af = a.astype(np.float64)
        if a.shape[2] == 4:
            alpha = af[:, :, 3:4] / (65535.0 if a.dtype == np.uint16 else 255.0 if a.dtype == np.uint8 else 1.0)
            af = af[:, :, :3] * alpha
        grey = af[:, :, 0] * 0.299 + af[:, :, 1] * 0.587 + af[:, :, 2] * 0.114
        a = grey.astype(a.dtype) if a.dtype != np.float64 else grey
    if a.ndim != 2:
        raise ImageLoadError(f"{name}: expected a 2-D image, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageLoadError(f"{name}: image has zero size {a.shape}")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == np.bool_:
        return (a.astype(np.uint8) * 255)
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageLoadError(f"{name}: image contains NaN or infinite values")
        hi = 1.0 if a.max() <= 1.0 else 255.0 if a.max() <= 255.0 else float(a.max())
        return np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        mx = int(a.max()) if a.size else 0
        if mx <= 255 and a.min() >= 0:
            return a.astype(np.uint8)
        bits = max(8, int(np.ceil(np.log2(mx + 1))))
        return np.clip(a.astype(np.float64) * (255.0 / (2**bits - 1)) + 0.5, 0, 255).astype(np.uint8)
    raise ImageLoadError(f"{name}: unsupported pixel type {a.dtype}")


def check_file(path: str | Path) -> Path:
    """``path`` as a :class:`~pathlib.Path` if it names a non-empty file, else :class:`ImageLoadError`.

    >>> check_file("/no/such/file.png")
    Traceback (most recent call last):
    ...
    fetalhc.image.ImageLoadError: /no/such/file.png: file not found
    """
    p = Path(path)
    if not p.exists():
        raise ImageLoadError(f"{p}: file not found")
    if p.is_dir():
        raise ImageLoadError(f"{p}: is a directory, not an image")
    if p.stat().st_size == 0:
        raise ImageLoadError(f"{p}: file is empty")
    return p


def load_pil_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> UltrasoundImage:
    """Read PNG, JPEG, BMP or TIFF (8/16 bit; grey, RGB, RGBA) with Pillow as grey uint8.

    No pixel size is attached (these formats do not carry a trustworthy one). DICOM files are
    read by :mod:`fetalhc.dicom`; :func:`fetalhc.reader.load_image` picks the right reader.
    Raises :class:`ImageLoadError` naming the file for missing, empty, truncated, non-image,
    zero-sized or oversized (more than ``max_pixels`` pixels) input.
    """
    p = check_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                w, h = im.size
                if w == 0 or h == 0:
                    raise ImageLoadError(f"{p}: image has zero size {w}x{h}")
                if w * h > max_pixels:
                    raise ImageLoadError(
                        f"{p}: image is {w}x{h} = {w * h} pixels, more than the limit of {max_pixels}"
                    )
                im.load()
                arr = _pil_to_array(im)
    except ImageLoadError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageLoadError(f"{p}: not a readable image ({type(e).__name__}: {e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(f"{p}: image is truncated or corrupt ({e})") from None
    return UltrasoundImage(to_grey_uint8(arr, str(p)), name=p.name)


def _pil_to_array(im: Image.Image) -> NDArray[np.generic]:
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im, dtype=np.uint16)
    if im.mode == "I":
        return np.asarray(im, dtype=np.int32)
    if im.mode == "F":
        return np.asarray(im, dtype=np.float32)
    if im.mode in ("L", "RGB", "RGBA"):
        return np.asarray(im)
    if im.mode == "LA":
        return np.asarray(im.convert("RGBA"))
    if im.mode == "1":
        return np.asarray(im.convert("L"))
    return np.asarray(im.convert("RGB"))
