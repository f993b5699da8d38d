"""Stage 1 for DICOM: parse a header once, decode frames one at a time into :class:`UltrasoundImage`.

:class:`DicomFile` keeps the file open after reading the header (the pixel data is not read) and
hands the decoder the file positioned at the pixel data, so a long cine is never in memory at
once and its header is parsed once. Pixel size comes from :mod:`fetalhc.dicom_geometry`.
Errors and notes never quote header values such as names. Which files are DICOM is decided by
:mod:`fetalhc.reader`, not here.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from fetalhc.dicom_geometry import ultrasound_geometry
from fetalhc.image import MAX_PIXELS, ImageLoadError, UltrasoundImage, to_grey_uint8, validate_pixel_size

#: Byte offset of the "DICM" magic after the 128-byte preamble (PS3.10 section 7.1).
DICM_OFFSET = 128
#: Modalities (0008,0060) measured without ``force``: ultrasound only.
MEASURED_MODALITIES = ("US",)
#: Tags of the elements that hold pixel data, and their keywords.
PIXEL_TAGS = {(0x7FE0, 0x0010): "PixelData", (0x7FE0, 0x0008): "FloatPixelData",
              (0x7FE0, 0x0009): "DoubleFloatPixelData"}
#: Elements a header read without a DICM preamble must hold to count as DICOM.
_TELLTALE = ("SOPClassUID", "Rows", "Modality", "StudyInstanceUID", "SeriesInstanceUID")


def starts_like_dicom(head: bytes) -> bool:
    """True if ``head`` (a file's first bytes) holds ``DICM`` at byte 128, the DICOM file format's
    magic: the one rule by which fetalhc recognises DICOM content, in files and in uploads.

    >>> starts_like_dicom(bytes(128) + b"DICM"), starts_like_dicom(b"\\x89PNG")
    (True, False)
    """
    return head[DICM_OFFSET:DICM_OFFSET + 4] == b"DICM"


def has_dicm_preamble(path: str | Path) -> bool:
    """True if the file holds ``DICM`` at byte 128 (:func:`starts_like_dicom`); False for
    shorter or unreadable files."""
    try:
        with Path(path).open("rb") as f:
            head = f.read(DICM_OFFSET + 4)
    except OSError:
        return False
    return starts_like_dicom(head)


def read_header(path: str | Path) -> Any:
    """The DICOM header (everything before the pixel data) as a pydicom ``Dataset``, parsed once.

    Files without the DICM preamble are read only if pydicom finds DICOM elements in them (their
    transfer syntax is then the encoding pydicom detected). Raises :class:`ImageLoadError` naming
    the file for missing, non-DICOM or truncated headers.
    """
    p = Path(path)
    try:
        f = p.open("rb")
    except OSError:
        raise ImageLoadError(f"{p}: file not found") from None
    with f:
        return _parse_header(f, p)


def _parse_header(f: IO[bytes], p: Path) -> Any:
    """Parse the header from the open file ``f``, leaving ``f`` at the pixel data element (or EOF)."""
    import warnings

    import pydicom
    from pydicom.errors import InvalidDicomError

    head = f.read(DICM_OFFSET + 4)
    f.seek(0)
    preamble = head[DICM_OFFSET:] == b"DICM"
    not_dicom = f"{p}: not a DICOM file (no DICM preamble or file meta information)"
    try:
        with warnings.catch_warnings():
            if not preamble:
                warnings.simplefilter("ignore")  # pydicom warns while it guesses the encoding
            ds = pydicom.dcmread(f, stop_before_pixels=True, force=not preamble)
    except InvalidDicomError:
        raise ImageLoadError(not_dicom) from None
    except Exception as e:  # noqa: BLE001 - a damaged header raises many types
        if not preamble:
            raise ImageLoadError(not_dicom) from None
        raise ImageLoadError(f"{p}: DICOM header is truncated or corrupt ({safe_reason(e)})") from None
    if not preamble:
        if not any(k in ds for k in _TELLTALE):
            raise ImageLoadError(not_dicom)
        if ds.file_meta.get("TransferSyntaxUID") is None and ds.original_encoding[0] is not None:
            from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

            implicit, little = ds.original_encoding
            ds.file_meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                                              ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    return ds


def frame_count(header: Any, path: str | Path = "<dicom>") -> int:
    """Number of frames (0028,0008) in ``header``; 1 when the tag is absent or empty.

    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset(); ds.NumberOfFrames = "30"
    >>> frame_count(ds), frame_count(Dataset())
    (30, 1)
    """
    raw = header.get("NumberOfFrames", 1)
    try:
        n = int(raw) if raw not in (None, "") else 1
    except (TypeError, ValueError):
        raise ImageLoadError(f"{path}: Number of Frames (0028,0008) is not an integer") from None
    if n < 1:
        raise ImageLoadError(f"{path}: Number of Frames (0028,0008) is {n}, expected at least 1")
    return n


def check_modality(header: Any, path: str | Path = "<dicom>", force: bool = False) -> tuple[str, ...]:
    """Notes about the modality (0008,0060); :class:`ImageLoadError` for one other than ultrasound.

    A missing modality is accepted with a note; any other than ``US`` (CT, MR, OT ...) is refused
    unless ``force`` is true, when it is accepted with a note.

    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset(); ds.Modality = "US"
    >>> check_modality(ds)
    ()
    >>> ds.Modality = "CT"
    >>> check_modality(ds, "scan.dcm")
    Traceback (most recent call last):
    ...
    fetalhc.image.ImageLoadError: scan.dcm: DICOM modality is CT, not US (ultrasound); fetalhc measures ultrasound images only (force to read it anyway)
    >>> check_modality(ds, "scan.dcm", force=True)
    ('DICOM modality is CT, not US (ultrasound); read anyway (forced)',)
    """  # noqa: E501
    value = str(header.get("Modality", "") or "").strip().upper()
    if not value:
        return ("DICOM Modality (0008,0060) is missing; read as ultrasound",)
    if value in MEASURED_MODALITIES:
        return ()
    code = value if re.fullmatch(r"[A-Z0-9_ ]{1,16}", value) else "not a valid code"
    what = f"DICOM modality is {code}, not US (ultrasound)"
    if force:
        return (f"{what}; read anyway (forced)",)
    raise ImageLoadError(f"{path}: {what}; fetalhc measures ultrasound images only (force to read it anyway)")


class DicomFile:
    """An open DICOM file: the header parsed once and checked, frames decoded one at a time.

    Use it as a context manager (it holds the file open)::

        with DicomFile(path) as d:
            for index, arr in d.arrays():
                image = d.image(arr, index)

    Attributes:
        path: the file.
        header: the pydicom ``Dataset`` without the pixel data.
        n_frames: number of frames (1 for a single image).

    Raises :class:`ImageLoadError` naming the file for non-DICOM or truncated headers, missing
    pixel data, zero-sized or oversized (more than ``max_pixels`` pixels) frames and transfer
    syntaxes without an installed decoder. Deflated files are the one case read twice (pydicom
    inflates them in memory).
    """

    def __init__(self, path: str | Path, *, max_pixels: int = MAX_PIXELS) -> None:
        self.path = Path(path)
        try:
            self._file: IO[bytes] = self.path.open("rb")
        except OSError:
            raise ImageLoadError(f"{self.path}: file not found") from None
        try:
            self.header = _parse_header(self._file, self.path)
            self.n_frames = frame_count(self.header, self.path)
            self._decoder, self._options = self._prepare(max_pixels)
            self._source: Any = self._pixel_source()
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> DicomFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (frames can no longer be decoded)."""
        self._file.close()

    def _prepare(self, max_pixels: int) -> tuple[Any, dict[str, Any]]:
        """The decoder and its options, after checking size and transfer syntax."""
        from pydicom.pixels import as_pixel_options, get_decoder

        p, ds = self.path, self.header
        for tag, name in (("Rows", "Rows (0028,0010)"), ("Columns", "Columns (0028,0011)")):
            if tag not in ds:
                raise ImageLoadError(f"{p}: no pixel data: {name} is missing")
        rows, cols = int(ds.Rows), int(ds.Columns)
        if rows <= 0 or cols <= 0:
            raise ImageLoadError(f"{p}: image has zero size ({rows} rows x {cols} columns)")
        if rows * cols > max_pixels:
            raise ImageLoadError(f"{p}: frame is {cols}x{rows} = {rows * cols} pixels, more than the limit of "
                                 f"{max_pixels}")
        ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
        if ts is None:
            raise ImageLoadError(f"{p}: Transfer Syntax UID (0002,0010) is missing from the file meta information")
        try:
            decoder = get_decoder(ts)
        except NotImplementedError:
            raise ImageLoadError(f"{p}: unsupported transfer syntax {ts} ({ts.name}): no pixel data decoder") from None
        if not decoder.is_available:
            missing = "; ".join(decoder.missing_dependencies) or "a decoder plugin"
            raise ImageLoadError(f"{p}: cannot decode transfer syntax {ts} ({ts.name}): install {missing}")
        try:
            options = as_pixel_options(ds)
        except Exception as e:  # noqa: BLE001 - bad group 0028 values
            raise ImageLoadError(f"{p}: Image Pixel attributes are invalid ({safe_reason(e)})") from None
        options["transfer_syntax_uid"] = ts
        return decoder, options

    def _pixel_source(self) -> Any:
        """The open file positioned at the pixel data value (options completed from its element
        header), or for deflated files the whole dataset."""
        from pydicom.uid import DeflatedExplicitVRLittleEndian

        ts = self._options["transfer_syntax_uid"]
        if ts == DeflatedExplicitVRLittleEndian:
            import pydicom

            full = pydicom.dcmread(self.path)
            if not any(k in full for k in PIXEL_TAGS.values()):
                raise ImageLoadError(f"{self.path}: no pixel data: Pixel Data (7FE0,0010) is missing")
            return full
        f = self._file
        data = f.read(8)
        if len(data) < 8:
            raise ImageLoadError(f"{self.path}: no pixel data: Pixel Data (7FE0,0010) is missing")
        endian = "<" if ts.is_little_endian else ">"
        if ts.is_implicit_VR:
            group, elem, _length = struct.unpack(f"{endian}HHL", data)
        else:
            group, elem, vr, _ = struct.unpack(f"{endian}HH2sH", data)
            if len(f.read(4)) < 4:
                raise ImageLoadError(f"{self.path}: DICOM file is truncated in the pixel data element")
            self._options["pixel_vr"] = vr.decode("ascii", "replace")
        keyword = PIXEL_TAGS.get((group, elem))
        if keyword is None:
            raise ImageLoadError(f"{self.path}: DICOM file is corrupt: element ({group:04X},{elem:04X}) found "
                                 "where the pixel data should start")
        self._options["pixel_keyword"] = keyword
        self._value_offset = f.tell()
        return f

    def arrays(self, indices: Iterable[int] | None = None) -> Iterator[tuple[int, NDArray[Any]]]:
        """(0-based frame index, decoded frame) for ``indices`` (all frames when ``None``), one
        frame in memory at a time; YBR data come back as RGB, as ``pydicom.pixels`` returns them."""
        wanted = list(range(self.n_frames)) if indices is None else [int(i) for i in indices]
        for i in wanted:
            if not 0 <= i < self.n_frames:
                raise ImageLoadError(f"{self.path}: frame {i} out of range; the file has {self.n_frames} frame(s) "
                                     f"(0-{self.n_frames - 1})")
        if not wanted:
            return
        src = self._source
        if src is self._file:
            src.seek(self._value_offset)
        it = self._decoder.iter_array(src, indices=wanted, validate=True, **self._options)
        for i in wanted:
            try:
                arr, _ = next(it)
            except StopIteration:
                raise ImageLoadError(f"{self.path}: pixel data ends before frame {i} of {self.n_frames}") from None
            except ImageLoadError:
                raise
            except Exception as e:  # noqa: BLE001 - decoders raise many types; all mean "cannot decode"
                raise ImageLoadError(f"{self.path}: cannot decode the pixel data of frame {i} "
                                     f"({safe_reason(e)})") from None
            yield i, arr

    def image(self, arr: NDArray[Any], index: int, notes: Iterable[str] = ()) -> UltrasoundImage:
        """Decoded frame ``index`` as a grey :class:`UltrasoundImage` with the header's pixel
        size (mm), trusted regions and notes; named ``<file>#frame <index>`` in a cine."""
        p = self.path
        grey = frame_to_grey(arr, self.header, str(p))
        geo = ultrasound_geometry(self.header, grey.shape)
        name = p.name if self.n_frames == 1 else f"{p.name}#frame {index}"
        size = None if geo.pixel_size_mm is None else validate_pixel_size(geo.pixel_size_mm, str(p))
        return UltrasoundImage(grey, pixel_size_mm=size, pixel_size_source=geo.source, name=name,
                               regions=geo.regions, notes=(*notes, *geo.notes))


def frame_to_grey(arr: NDArray[Any], ds: Any, name: str = "<dicom>") -> NDArray[np.uint8]:
    """One decoded frame (as ``pydicom.pixels`` returns it: YBR already RGB) to grey uint8.

    PALETTE COLOR goes through the colour LUT; MONOCHROME1 is inverted; greys of more than
    8 bits are scaled by Bits Stored; RGB becomes ITU-R 601 luma.
    """
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if photometric == "PALETTE COLOR" and a.ndim == 2:
        return to_grey_uint8(palette_to_rgb8(a, ds, name), name)
    if a.ndim == 3:
        if a.dtype != np.uint8:
            a = scale_to_uint8(a, ds)
        return to_grey_uint8(a, name)
    grey = scale_to_uint8(a, ds)
    if photometric == "MONOCHROME1":
        grey = 255 - grey
    return to_grey_uint8(grey, name)


def palette_to_rgb8(a: NDArray[Any], ds: Any, name: str = "<dicom>") -> NDArray[np.uint8]:
    """PALETTE COLOR indices to RGB uint8 through the palette LUT (16-bit entries scaled down)."""
    from pydicom.pixels import apply_color_lut

    try:
        rgb = apply_color_lut(a, ds)
    except Exception as e:  # noqa: BLE001
        raise ImageLoadError(f"{name}: cannot apply the palette colour lookup table ({safe_reason(e)})") from None
    if rgb.dtype != np.uint8:
        desc = ds.get("RedPaletteColorLookupTableDescriptor", [0, 0, 16])
        bits = int(desc[2]) if len(desc) > 2 and int(desc[2]) in (8, 16) else 16
        rgb = (rgb >> (bits - 8)).astype(np.uint8) if bits > 8 else rgb.astype(np.uint8)
    return np.ascontiguousarray(rgb)


def scale_to_uint8(a: NDArray[Any], ds: Any) -> NDArray[np.uint8]:
    """Decoded values scaled to 0-255 grey levels: uint8 unchanged, floats min-max stretched,
    integers of ``BitsStored`` bits (signed when ``PixelRepresentation`` is 1) mapped so their
    full range spans 0-255. Works per sample, so RGB arrays keep their channels.

    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset(); ds.BitsStored = 12; ds.PixelRepresentation = 0
    >>> scale_to_uint8(np.array([0, 2048, 4095], np.uint16), ds).tolist()
    [0, 128, 255]
    """
    if a.dtype == np.uint8:
        return a
    if np.issubdtype(a.dtype, np.floating):
        lo, hi = float(np.min(a)), float(np.max(a))
        return np.clip((a - lo) / max(hi - lo, 1e-12) * 255 + 0.5, 0, 255).astype(np.uint8)
    bits = int(ds.get("BitsStored", a.dtype.itemsize * 8) or a.dtype.itemsize * 8)
    af = a.astype(np.float64)
    if int(ds.get("PixelRepresentation", 0) or 0) == 1:
        af += 2.0 ** (bits - 1)
    return np.clip(af * (255.0 / (2.0**bits - 1)) + 0.5, 0, 255).astype(np.uint8)


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def safe_reason(e: BaseException) -> str:
    """Exception type and message with quoted text removed (quotes may hold header values),
    for error messages that must not leak a patient's name; at most 300 characters.

    >>> safe_reason(ValueError("bad value 'Doe^Jane' in (0010,0010)"))
    "ValueError: bad value '…' in (0010,0010)"
    """
    first = " ".join(_QUOTED.sub("'…'", str(e)).split())
    if len(first) > 300:
        first = first[:300] + "…"
    return f"{type(e).__name__}: {first}" if first else type(e).__name__
