"""Uploaded bytes -> a grey :class:`~fetalhc.image.UltrasoundImage`, entirely in memory.

Nothing is written to disk: PNG/JPEG/TIFF/BMP are decoded by Pillow from a byte buffer and DICOM
by pydicom from one (one frame decoded). The upload's own file name is never used (it may name
the patient): the image is called ``"upload"`` in results and messages.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from fetalhc.image import MAX_PIXELS, ImageLoadError, UltrasoundImage, to_grey_uint8

#: The name an upload carries in results, reports and error messages.
UPLOAD_NAME = "upload"
ACCEPTED = "PNG, JPEG, TIFF, BMP or DICOM (with the DICM preamble)"


class UploadError(ValueError):
    """An upload that cannot be measured; ``status`` is the HTTP status the API answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Decoded:
    """A decoded upload: the image, its kind, the DICOM dataset (or None) and its frame count."""

    image: UltrasoundImage
    kind: str
    dataset: Any = None
    frames: int = 1
    frame: int | None = None


def sniff_kind(data: bytes) -> str | None:
    """The file type from its first bytes: "png", "jpeg", "tiff", "bmp", "dicom", or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data.startswith(b"BM"):
        return "bmp"
    from fetalhc.dicom import starts_like_dicom

    if starts_like_dicom(data):
        return "dicom"
    return None


def decode_upload(data: bytes, pixel_size_mm: float | None = None, frame: int | None = None) -> Decoded:
    """Decode uploaded bytes; ``pixel_size_mm`` (the user's) overrides the file's own.

    Raises :class:`UploadError` (415 for an unknown type, 400 for an unreadable file).
    """
    if not data:
        raise UploadError(f"{UPLOAD_NAME}: the file is empty")
    kind = sniff_kind(data)
    if kind is None:
        raise UploadError(f"{UPLOAD_NAME}: unsupported file type; expected {ACCEPTED}", 415)
    if kind == "dicom":
        dec = _decode_dicom(data, frame)
    else:
        if frame is not None:
            raise UploadError(f"{UPLOAD_NAME}: a frame number applies to DICOM cine files only")
        dec = Decoded(_decode_picture(data), kind)
    if pixel_size_mm is not None:
        try:
            img = dec.image.with_pixel_size(pixel_size_mm, "user")
        except ValueError as e:
            raise UploadError(str(e)) from None
        dec = Decoded(img, dec.kind, dec.dataset, dec.frames, dec.frame)
    return dec


def _decode_picture(data: bytes) -> UltrasoundImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if w == 0 or h == 0:
                    raise UploadError(f"{UPLOAD_NAME}: image has zero size {w}x{h}")
                if w * h > MAX_PIXELS:
                    raise UploadError(f"{UPLOAD_NAME}: image is {w}x{h} pixels, more than the limit of {MAX_PIXELS}",
                                      413)
                im.load()
                arr = _pil_array(im)
    except UploadError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise UploadError(f"{UPLOAD_NAME}: not a readable image ({type(e).__name__})") from None
    except (OSError, SyntaxError, ValueError, struct.error) as e:
        raise UploadError(f"{UPLOAD_NAME}: image is truncated or corrupt ({type(e).__name__})") from None
    try:
        grey = to_grey_uint8(arr, UPLOAD_NAME)
    except ImageLoadError as e:
        raise UploadError(str(e)) from None
    return UltrasoundImage(grey, name=UPLOAD_NAME)


def _pil_array(im: Image.Image) -> Any:
    if im.mode.startswith("I;16"):
        return np.asarray(im, dtype=np.uint16)
    if im.mode in ("I", "F", "L", "RGB", "RGBA"):
        return np.asarray(im)
    return np.asarray(im.convert("RGBA" if "A" in im.mode else "RGB" if im.mode != "1" else "L"))


def _decode_dicom(data: bytes, frame: int | None) -> Decoded:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import get_decoder, pixel_array

    from fetalhc import dicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except InvalidDicomError:
        raise UploadError(f"{UPLOAD_NAME}: not a DICOM file (no file meta information)") from None
    except (EOFError, OSError, ValueError, KeyError, TypeError, AttributeError, struct.error) as e:
        raise UploadError(f"{UPLOAD_NAME}: DICOM file is truncated or corrupt ({type(e).__name__})") from None
    try:  # the same modality rule as files (fetalhc.dicom): ultrasound only
        dicom.check_modality(ds, UPLOAD_NAME)
    except ImageLoadError as e:
        raise UploadError(str(e).replace(" (force to read it anyway)", "")) from None
    for tag, label in (("Rows", "Rows (0028,0010)"), ("Columns", "Columns (0028,0011)"),
                       ("PixelData", "Pixel Data (7FE0,0010)")):
        if tag not in ds:
            raise UploadError(f"{UPLOAD_NAME}: no image in this DICOM file: {label} is missing")
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        n = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        raise UploadError(f"{UPLOAD_NAME}: Rows, Columns or Number of Frames is not an integer") from None
    if rows <= 0 or cols <= 0 or n < 1:
        raise UploadError(f"{UPLOAD_NAME}: image has zero size ({rows} rows x {cols} columns, {n} frames)")
    if rows * cols > MAX_PIXELS:
        raise UploadError(f"{UPLOAD_NAME}: frame is {cols}x{rows} pixels, more than the limit of {MAX_PIXELS}", 413)
    ts = ds.file_meta.get("TransferSyntaxUID")
    if ts is None:
        raise UploadError(f"{UPLOAD_NAME}: Transfer Syntax UID (0002,0010) is missing")
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise UploadError(f"{UPLOAD_NAME}: unsupported transfer syntax {ts}: no pixel data decoder") from None
    if not decoder.is_available:
        raise UploadError(f"{UPLOAD_NAME}: transfer syntax {ts} cannot be decoded here (decoder plugin missing)")
    index = 0 if frame is None else int(frame)
    if not 0 <= index < n:
        raise UploadError(f"{UPLOAD_NAME}: frame {frame} out of range; the file has {n} frame(s) (0-{n - 1})")
    try:
        arr = pixel_array(ds, index=index if n > 1 else None)
        grey = dicom.frame_to_grey(arr, ds, UPLOAD_NAME)
        geo = dicom.ultrasound_geometry(ds, grey.shape)
    except ImageLoadError as e:
        raise UploadError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - decoders raise many types; all mean "cannot decode"
        raise UploadError(f"{UPLOAD_NAME}: cannot decode the pixel data ({type(e).__name__})") from None
    notes = (f"cine of {n} frames; frame {index} used",) if n > 1 else ()
    size = geo.pixel_size_mm if geo.pixel_size_mm is not None and np.isfinite(geo.pixel_size_mm) else None
    img = UltrasoundImage(grey, pixel_size_mm=size if size and size > 0 else None,
                          pixel_size_source=geo.source if size else "none",
                          name=UPLOAD_NAME, regions=geo.regions, notes=(*notes, *geo.notes))
    return Decoded(img, "dicom", ds, n, index if n > 1 else None)
