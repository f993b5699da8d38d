"""Pixel size and trusted ultrasound regions from a DICOM header (no pixel decoding).

Pixel size comes from the Sequence of Ultrasound Regions (0018,6011), else Pixel Spacing
(0028,0030), else none. Notes never quote header values other than numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

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
