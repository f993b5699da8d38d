"""Stage 1 entry: find input files and read them as frames, whatever their format.

This is the one place that decides whether a file is DICOM: a file is DICOM if it holds the
``DICM`` magic at byte 128, or if it is named ``.dcm``/``.dicom`` (pydicom then reads it
without the preamble, if it finds DICOM elements in it). Everything else goes to Pillow.
DICOM of a modality other than ultrasound is refused unless ``force`` is given.

>>> from fetalhc.reader import iter_frames, iter_inputs           # doctest: +SKIP
>>> for path in iter_inputs(["scans/"]):                          # doctest: +SKIP
...     for frame in iter_frames(path):                           # doctest: +SKIP
...         print(frame.index, frame.image.name, frame.image.pixel_size_mm)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fetalhc.dicom import DicomFile, check_modality, has_dicm_preamble
from fetalhc.image import MAX_PIXELS, ImageLoadError, UltrasoundImage, check_file, load_pil_image

#: Suffixes of the image files Pillow reads.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: Suffixes that mark DICOM even without the preamble.
DICOM_SUFFIXES = (".dcm", ".dicom")
#: File name endings of fetalhc's own outputs and HC18's annotations, skipped inside folders.
SKIPPED_ENDINGS = ("_Annotation.png", "_mask.png", "_overlay.png")


@dataclass(frozen=True)
class Frame:
    """One image read from a file.

    Attributes:
        index: 0-based frame number in a multi-frame (cine) DICOM; ``None`` for single images.
        image: the grey image with its pixel size (mm) and notes.
    """

    index: int | None
    image: UltrasoundImage


def is_dicom(path: str | Path) -> bool:
    """True if ``path`` is read as DICOM: a ``DICM`` preamble, or a ``.dcm``/``.dicom`` name.

    >>> is_dicom("/no/such/scan.dcm"), is_dicom("/no/such/scan.png")
    (True, False)
    """
    p = Path(path)
    return p.suffix.lower() in DICOM_SUFFIXES or has_dicm_preamble(p)


def iter_frames(path: str | Path, frame: int | None = None, *, force: bool = False,
                max_pixels: int = MAX_PIXELS) -> Iterator[Frame]:
    """Each frame of an image file in turn; only the frame being used is in memory.

    A PNG/JPEG/BMP/TIFF or a single-frame DICOM yields one :class:`Frame` with ``index=None``;
    a cine yields every frame, or only ``frame`` (0-based) when given. The DICOM header is parsed
    once per file. ``force`` reads DICOM of a modality other than ultrasound (CT, MR ...), which
    is otherwise refused. Raises :class:`ImageLoadError` naming the file and the problem (missing,
    unreadable, non-US modality, frame out of range, ``frame`` given for a non-DICOM file).
    """
    p = check_file(path)
    if not is_dicom(p):
        if frame is not None:
            raise ImageLoadError(f"{p}: a frame number applies to DICOM files only")
        yield Frame(None, load_pil_image(p, max_pixels))
        return
    with DicomFile(p, max_pixels=max_pixels) as d:
        notes = check_modality(d.header, p, force)
        for index, arr in d.arrays(None if frame is None else [frame]):
            yield Frame(index if d.n_frames > 1 else None, d.image(arr, index, notes))


def load_image(path: str | Path, pixel_size_mm: float | None = None, max_pixels: int = MAX_PIXELS, *,
               force: bool = False) -> UltrasoundImage:
    """One image from a file: the image itself, or the first frame of a DICOM cine (a note says so).

    ``pixel_size_mm`` (the user's, in mm) replaces the file's own. ``force`` as in
    :func:`iter_frames`. Raises :class:`ImageLoadError` naming the file and the problem.
    """
    p = check_file(path)
    if not is_dicom(p):
        img = load_pil_image(p, max_pixels)
    else:
        with DicomFile(p, max_pixels=max_pixels) as d:
            notes = check_modality(d.header, p, force)
            if d.n_frames > 1:
                notes = (*notes, f"cine of {d.n_frames} frames; frame 0 used")
            index, arr = next(d.arrays([0]))
            img = d.image(arr, index, notes)
    if pixel_size_mm is not None:
        img = img.with_pixel_size(pixel_size_mm, "user")
    return img


def is_input_file(path: Path) -> bool:
    """Whether a file found inside a folder is an input: an image or DICOM suffix, or any other
    file with a DICOM preamble; hidden files, ``DICOMDIR`` and fetalhc's own outputs are not."""
    name = path.name
    if name.startswith(".") or name.upper() == "DICOMDIR" or name.endswith(SKIPPED_ENDINGS):
        return False
    return path.suffix.lower() in (*IMAGE_SUFFIXES, *DICOM_SUFFIXES) or has_dicm_preamble(path)


def iter_inputs(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The input files among ``paths``, lazily: files as given (whatever their name), and inside
    folders, recursively and sorted by name, the files :func:`is_input_file` accepts (DICOM
    without a suffix included). Symbolic links to folders are not followed."""
    for item in paths:
        p = Path(item)
        if p.is_dir():
            yield from _walk(p)
        else:
            yield p


def _walk(folder: Path) -> Iterator[Path]:
    """Depth first, entries sorted by name (the order of ``sorted(folder.rglob("*"))``)."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    for e in entries:
        path = folder / e.name
        if e.is_dir(follow_symlinks=False):
            yield from _walk(path)
        elif e.is_file() and is_input_file(path):
            yield path


__all__ = ["DICOM_SUFFIXES", "IMAGE_SUFFIXES", "Frame", "is_dicom", "is_input_file", "iter_frames", "iter_inputs",
           "load_image"]
