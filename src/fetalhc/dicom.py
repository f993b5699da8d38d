"""Stage 1 for DICOM: read one frame (or each frame of a cine) as a grey :class:`UltrasoundImage`.

Pixel size comes from the Sequence of Ultrasound Regions (0018,6011), else Pixel Spacing
(0028,0030), else none. Frames are decoded one at a time (``pydicom.pixels``), so a long cine
never sits in memory at once. Errors and notes never quote header values such as names.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fetalhc.image import MAX_PIXELS, ImageLoadError, UltrasoundImage, to_grey_uint8, validate_pixel_size

#: PhysicalUnitsX/YDirection (0018,6024/6026) value meaning centimetres.
UNITS_CM = 3
#: RegionSpatialFormat (0018,6012) 2-D; RegionDataType (0018,6014) tissue.
SPATIAL_2D = 1
DATA_TISSUE = 1
#: Relative difference above which two spacings are called different.
SPACING_TOLERANCE = 0.01

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class UltrasoundRegion:
    """One item of the Sequence of Ultrasound Regions, in pixels (x1, y1 exclusive) and mm."""

    box: Box
    spatial_format: int | None
    data_type: int | None
    delta_x_mm: float | None
    delta_y_mm: float | None

    @property
    def area_px(self) -> int:
        return max(0, self.box[2] - self.box[0]) * max(0, self.box[3] - self.box[1])


@dataclass(frozen=True)
class Geometry:
    """Pixel size (mm) and its source, trusted region boxes and notes for one DICOM image."""

    pixel_size_mm: float | None
    source: str
    regions: tuple[Box, ...]
    notes: tuple[str, ...]


def read_header(path: str | Path) -> Any:
    """The DICOM header (everything before the pixel data) as a pydicom ``Dataset``.

    Raises :class:`ImageLoadError` naming the file for missing, non-DICOM or truncated headers.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    p = Path(path)
    if not p.is_file():
        raise ImageLoadError(f"{p}: file not found")
    try:
        return pydicom.dcmread(p, stop_before_pixels=True)
    except InvalidDicomError:
        raise ImageLoadError(f"{p}: not a DICOM file (no DICM preamble or file meta information)") from None
    except (EOFError, OSError, ValueError, KeyError, TypeError, struct.error) as e:
        raise ImageLoadError(f"{p}: DICOM header is truncated or corrupt ({_safe_reason(e)})") from None


def number_of_frames(path: str | Path) -> int:
    """Number of frames (0028,0008) of a DICOM file; 1 when the tag is absent."""
    return _frames(read_header(path), Path(path))


def _frames(ds: Any, p: Path) -> int:
    raw = ds.get("NumberOfFrames", 1)
    try:
        n = int(raw) if raw not in (None, "") else 1
    except (TypeError, ValueError):
        raise ImageLoadError(f"{p}: Number of Frames (0028,0008) is not an integer") from None
    if n < 1:
        raise ImageLoadError(f"{p}: Number of Frames (0028,0008) is {n}, expected at least 1")
    return n


def load_dicom(path: str | Path, frame: int | None = None) -> UltrasoundImage:
    """One frame (0-based ``frame``; the first when ``None``) of a DICOM file as grey uint8.

    Raises :class:`ImageLoadError` naming the file for truncated files, missing pixel data,
    undecodable transfer syntaxes or a frame index out of range.
    """
    p = Path(path)
    ds = _checked_header(p)
    n = _frames(ds, p)
    notes: list[str] = []
    if frame is None:
        index = 0
        if n > 1:
            notes.append(f"cine of {n} frames; frame 0 used")
    else:
        index = int(frame)
        if not 0 <= index < n:
            raise ImageLoadError(f"{p}: frame {frame} out of range; the file has {n} frame(s) (0-{n - 1})")
    from pydicom.pixels import pixel_array

    try:
        arr = pixel_array(_pixel_source(p, ds), index=index if n > 1 else None)
    except Exception as e:  # noqa: BLE001 - decoders raise many types; all mean "cannot decode"
        raise ImageLoadError(f"{p}: cannot decode the pixel data ({_safe_reason(e)})") from None
    return _image(arr, ds, p, index if n > 1 else None, notes)


def iter_dicom_frames(path: str | Path) -> Iterator[UltrasoundImage]:
    """Each frame of a DICOM file in turn as grey uint8; one frame is in memory at a time."""
    p = Path(path)
    ds = _checked_header(p)
    n = _frames(ds, p)
    from pydicom.pixels import iter_pixels

    it = iter(iter_pixels(_pixel_source(p, ds)))
    for index in range(n):
        try:
            arr = next(it)
        except StopIteration:
            raise ImageLoadError(f"{p}: pixel data ends after {index} of {n} frames") from None
        except Exception as e:  # noqa: BLE001
            raise ImageLoadError(f"{p}: cannot decode frame {index} ({_safe_reason(e)})") from None
        yield _image(arr, ds, p, index if n > 1 else None, [])


def _pixel_source(p: Path, ds: Any) -> Any:
    """The path (frames are then read one at a time) or, for deflated files, the whole dataset."""
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    if ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        import pydicom

        return pydicom.dcmread(p)
    return p


def _checked_header(p: Path) -> Any:
    """The header, after checking pixel data, size and transfer syntax are usable."""
    ds = read_header(p)
    for tag, name in (("Rows", "Rows (0028,0010)"), ("Columns", "Columns (0028,0011)")):
        if tag not in ds:
            raise ImageLoadError(f"{p}: no pixel data: {name} is missing")
    rows, cols = int(ds.Rows), int(ds.Columns)
    if rows <= 0 or cols <= 0:
        raise ImageLoadError(f"{p}: image has zero size ({rows} rows x {cols} columns)")
    if rows * cols > MAX_PIXELS:
        raise ImageLoadError(f"{p}: frame is {cols}x{rows} = {rows * cols} pixels, more than the limit of {MAX_PIXELS}")
    if not _has_pixel_data(p):
        raise ImageLoadError(f"{p}: no pixel data: Pixel Data (7FE0,0010) is missing")
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if ts is None:
        raise ImageLoadError(f"{p}: Transfer Syntax UID (0002,0010) is missing from the file meta information")
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise ImageLoadError(f"{p}: unsupported transfer syntax {ts} ({ts.name}): no pixel data decoder") from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "a decoder plugin"
        raise ImageLoadError(f"{p}: cannot decode transfer syntax {ts} ({ts.name}): install {missing}")
    return ds


def _has_pixel_data(p: Path) -> bool:
    """True if the file holds (7FE0,0010) Pixel Data, read without loading its value."""
    import pydicom

    try:
        ds = pydicom.dcmread(p, defer_size=256, specific_tags=["PixelData", "FloatPixelData",
                                                               "DoubleFloatPixelData"])
    except Exception as e:  # noqa: BLE001
        raise ImageLoadError(f"{p}: DICOM file is truncated or corrupt ({_safe_reason(e)})") from None
    return any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))


def _image(arr: NDArray[Any], ds: Any, p: Path, index: int | None, notes: list[str]) -> UltrasoundImage:
    grey = frame_to_grey(arr, ds, str(p))
    geo = ultrasound_geometry(ds, grey.shape)
    name = p.name if index is None else f"{p.name}#frame {index}"
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
            a = _scale_to_uint8(a, ds)
        return to_grey_uint8(a, name)
    grey = _scale_to_uint8(a, ds)
    if photometric == "MONOCHROME1":
        grey = 255 - grey
    return to_grey_uint8(grey, name)


def palette_to_rgb8(a: NDArray[Any], ds: Any, name: str = "<dicom>") -> NDArray[np.uint8]:
    """PALETTE COLOR indices to RGB uint8 through the palette LUT (16-bit entries scaled down)."""
    from pydicom.pixels import apply_color_lut

    try:
        rgb = apply_color_lut(a, ds)
    except Exception as e:  # noqa: BLE001
        raise ImageLoadError(f"{name}: cannot apply the palette colour lookup table ({_safe_reason(e)})") from None
    if rgb.dtype != np.uint8:
        desc = ds.get("RedPaletteColorLookupTableDescriptor", [0, 0, 16])
        bits = int(desc[2]) if len(desc) > 2 and int(desc[2]) in (8, 16) else 16
        rgb = (rgb >> (bits - 8)).astype(np.uint8) if bits > 8 else rgb.astype(np.uint8)
    return np.ascontiguousarray(rgb)


def _scale_to_uint8(a: NDArray[Any], ds: Any) -> NDArray[np.uint8]:
    """Integers of ``BitsStored`` bits (signed or not) scaled to 0-255."""
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


# --------------------------------------------------------------------------- geometry


def ultrasound_regions(ds: Any) -> list[UltrasoundRegion]:
    """The items of the Sequence of Ultrasound Regions (0018,6011); deltas in mm where in cm."""
    out: list[UltrasoundRegion] = []
    for item in ds.get("SequenceOfUltrasoundRegions", None) or []:
        try:
            x0 = int(item.RegionLocationMinX0)
            y0 = int(item.RegionLocationMinY0)
            x1 = int(item.RegionLocationMaxX1) + 1
            y1 = int(item.RegionLocationMaxY1) + 1
        except (AttributeError, TypeError, ValueError):
            continue
        out.append(UltrasoundRegion((x0, y0, x1, y1), _int_or_none(item.get("RegionSpatialFormat")),
                                    _int_or_none(item.get("RegionDataType")),
                                    _delta_mm(item, "X"), _delta_mm(item, "Y")))
    return out


def _int_or_none(v: Any) -> int | None:
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None


def _delta_mm(item: Any, axis: str) -> float | None:
    """PhysicalDelta<axis> in mm when its units are cm (3), positive and finite; else ``None``."""
    if _int_or_none(item.get(f"PhysicalUnits{axis}Direction")) != UNITS_CM:
        return None
    try:
        d = float(item.get(f"PhysicalDelta{axis}"))
    except (TypeError, ValueError):
        return None
    return d * 10.0 if np.isfinite(d) and d > 0 else None


def _differ(a: float, b: float) -> bool:
    return abs(a - b) > SPACING_TOLERANCE * max(a, b)


def ultrasound_geometry(ds: Any, shape_hw: tuple[int, ...]) -> Geometry:
    """Pixel size (mm), its source, trusted region boxes and notes from a DICOM header.

    The pixel size comes from the largest 2-D tissue region (spatial format 1, data type 1)
    with centimetre deltas, else any 2-D region with them, else Pixel Spacing (0028,0030).
    Regions outside the ``shape_hw`` image are not trusted (a note says so). Several 2-D
    regions, X != Y spacing and a region size conflicting with Pixel Spacing give notes.
    """
    h, w = int(shape_hw[0]), int(shape_hw[1])
    notes: list[str] = []
    trusted: list[UltrasoundRegion] = []
    for k, r in enumerate(ultrasound_regions(ds)):
        x0, y0, x1, y1 = r.box
        if x1 == w + 1 or y1 == h + 1:  # an inclusive maximum one past the edge: a common off-by-one
            x1, y1 = (w if x1 == w + 1 else x1), (h if y1 == h + 1 else y1)
            r = UltrasoundRegion((x0, y0, x1, y1), r.spatial_format, r.data_type, r.delta_x_mm, r.delta_y_mm)
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            notes.append(f"ultrasound region {k} ({x0},{y0})-({x1},{y1}) lies outside the {w}x{h} image; not trusted")
            continue
        trusted.append(r)
    sized = [r for r in trusted if r.spatial_format == SPATIAL_2D and r.delta_x_mm and r.delta_y_mm]
    tissue = [r for r in sized if r.data_type == DATA_TISSUE] or sized
    size: float | None = None
    source = "none"
    if tissue:
        best = max(tissue, key=lambda r: r.area_px)
        assert best.delta_x_mm is not None and best.delta_y_mm is not None
        dx, dy = best.delta_x_mm, best.delta_y_mm
        if len(tissue) > 1:
            notes.append(f"{len(tissue)} 2-D ultrasound regions with a pixel size; the largest was used")
            if any(_differ(r.delta_x_mm or 0.0, dx) for r in tissue):
                notes.append("2-D ultrasound regions report different pixel sizes")
        if _differ(dx, dy):
            notes.append(f"ultrasound region pixel size differs in X ({dx:.4f} mm) and Y ({dy:.4f} mm); "
                         "their geometric mean was used")
        size = float(np.sqrt(dx * dy))
        source = "dicom:SequenceOfUltrasoundRegions"
    spacing = _pixel_spacing_mm(ds)
    if spacing is not None:
        row_mm, col_mm = spacing
        ps = float(np.sqrt(row_mm * col_mm))
        if size is None:
            size, source = ps, "dicom:PixelSpacing"
            if _differ(row_mm, col_mm):
                notes.append(f"Pixel Spacing (0028,0030) differs between rows ({row_mm:.4f} mm) and columns "
                             f"({col_mm:.4f} mm); their geometric mean was used")
        elif _differ(ps, size):
            notes.append(f"Pixel Spacing (0028,0030) {ps:.4f} mm conflicts with the ultrasound region "
                         f"pixel size {size:.4f} mm; the region was used")
    return Geometry(size, source, tuple(r.box for r in trusted), tuple(notes))


def _pixel_spacing_mm(ds: Any) -> tuple[float, float] | None:
    v = ds.get("PixelSpacing")
    if v is None:
        return None
    try:
        row_mm, col_mm = float(v[0]), float(v[1])
    except (TypeError, ValueError, IndexError):
        return None
    if not (np.isfinite(row_mm) and np.isfinite(col_mm) and row_mm > 0 and col_mm > 0):
        return None
    return row_mm, col_mm


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def _safe_reason(e: BaseException) -> str:
    """Exception type and message with quoted text removed (quotes may hold header values)."""
    first = " ".join(_QUOTED.sub("'…'", str(e)).split())
    if len(first) > 300:
        first = first[:300] + "…"
    return f"{type(e).__name__}: {first}" if first else type(e).__name__
