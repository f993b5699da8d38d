"""Writing de-identified copies of image files: PNG (pixels only) or DICOM (pixels and header).

Reading goes through :mod:`fetalhc.reader`, decoding through :mod:`fetalhc.dicom`'s public
functions and writing through :func:`fetalhc.io_utils.atomic_write`, so the copies get the same
permissions as every other output and a failure never leaves a half-written file.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fetalhc.deid.header import deidentify_dataset
from fetalhc.deid.pixels import deidentify_pixels
from fetalhc.dicom import DicomFile, check_modality, frame_to_grey, palette_to_rgb8, scale_to_uint8
from fetalhc.dicom_geometry import ultrasound_geometry
from fetalhc.image import UltrasoundImage
from fetalhc.io_utils import atomic_write, write_png
from fetalhc.reader import is_dicom, load_image

#: Colour-table and colour-profile elements dropped from a DICOM copy written as plain RGB.
_COLOUR_TABLE_KEYS = (
    "RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData", "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData", "PaletteColorLookupTableUID", "ICCProfile",
)


def deidentify_file(in_path: str | Path, out_path: str | Path, *, ocr: bool = False, force: bool = False) -> Path:
    """Write a de-identified copy of an image file; returns ``out_path``.

    ``.png`` output: the (first frame's) grey pixels with burned-in text blanked, no metadata.
    ``.dcm``/``.dicom`` output (DICOM input only): every frame cleaned, the header de-identified
    by :func:`fetalhc.deid.deidentify_dataset`; colour input is written as uncompressed RGB, grey
    input as 8-bit MONOCHROME2. ``force`` accepts DICOM of a modality other than ultrasound.
    The file is written atomically with the usual permissions (:func:`fetalhc.io_utils.atomic_write`).
    Raises :class:`fetalhc.image.ImageLoadError` for unreadable input, ``ValueError`` for an
    unsupported output suffix.
    """
    src, dst = Path(in_path), Path(out_path)
    suffix = dst.suffix.lower()
    if suffix not in (".png", ".dcm", ".dicom"):
        raise ValueError(f"{dst}: output must end in .png, .dcm or .dicom")
    if suffix != ".png":
        if not (src.is_file() and is_dicom(src)):
            raise ValueError(f"{dst}: DICOM output needs DICOM input; {src} is not DICOM")
        _write_dicom(src, dst, ocr, force)
        return dst
    clean = deidentify_pixels(load_image(src, force=force), ocr=ocr)
    write_png(dst, clean.pixels)
    return dst


def _write_dicom(src: Path, dst: Path, ocr: bool, force: bool) -> None:
    """Clean every frame of ``src`` and write a de-identified uncompressed DICOM to ``dst``."""
    from pydicom.uid import ExplicitVRLittleEndian

    with DicomFile(src) as d:
        check_modality(d.header, src, force)
        header = d.header
        photometric = str(header.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
        colour = photometric not in ("MONOCHROME1", "MONOCHROME2")
        frames: list[NDArray[np.uint8]] = []
        for _, arr in d.arrays():
            grey = frame_to_grey(arr, header, str(src))
            geo = ultrasound_geometry(header, grey.shape)
            clean = deidentify_pixels(UltrasoundImage(grey, regions=geo.regions), ocr=ocr).pixels
            if not colour:
                frames.append(clean)
                continue
            rgb = _frame_rgb(arr, header, photometric)
            rgb[clean != grey] = 0
            frames.append(rgb)
        n = d.n_frames
    ds = copy.deepcopy(header)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for key in _COLOUR_TABLE_KEYS:
        if key in ds:
            del ds[key]
    stack = np.stack(frames) if n > 1 else frames[0]
    ds.set_pixel_data(stack, "RGB" if colour else "MONOCHROME2", 8)
    out = deidentify_dataset(ds, pixels_cleaned=True)
    atomic_write(dst, lambda f: out.save_as(f, enforce_file_format=True))


def _frame_rgb(arr: NDArray[Any], ds: Any, photometric: str) -> NDArray[np.uint8]:
    """A decoded colour frame as RGB uint8 (palette through its LUT, 16 bit scaled down)."""
    a = np.asarray(arr)
    if photometric == "PALETTE COLOR" and a.ndim == 2:
        return palette_to_rgb8(a, ds)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(scale_to_uint8(a, ds)).copy()
