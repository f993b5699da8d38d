"""Pixel size and trusted regions from a DICOM header (fetalhc.dicom_geometry)."""

from __future__ import annotations

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from pydicom.dataset import Dataset  # noqa: E402

from dicom_builder import us_region  # noqa: E402
from fetalhc.dicom_geometry import ultrasound_geometry, ultrasound_regions  # noqa: E402


def test_region_box_becomes_exclusive_and_deltas_mm():
    ds = Dataset()
    ds.SequenceOfUltrasoundRegions = [us_region((10, 5, 69, 54), (0.015, 0.02))]
    (r,) = ultrasound_regions(ds)
    assert r.box == (10, 5, 70, 55) and r.area_px == 60 * 50
    assert r.delta_x_mm == pytest.approx(0.15) and r.delta_y_mm == pytest.approx(0.2)


def test_geometry_picks_largest_tissue_region_and_notes():
    ds = Dataset()
    ds.SequenceOfUltrasoundRegions = [
        us_region((0, 0, 39, 29), (0.01, 0.01)),                    # small 2-D tissue
        us_region((40, 0, 79, 59), (0.02, 0.02)),                   # largest 2-D tissue: used
        us_region((0, 30, 39, 59), (0.05, 0.05), spatial=4, data_type=10, units=4),  # Doppler spectrum
        us_region((0, 0, 500, 500)),                                # outside the image
    ]
    g = ultrasound_geometry(ds, (60, 80))
    assert g.pixel_size_mm == pytest.approx(0.2)
    assert len(g.regions) == 3
    assert any("2 2-D ultrasound regions" in n for n in g.notes)
    assert any("different pixel sizes" in n for n in g.notes)
    assert any("outside the 80x60 image; not trusted" in n for n in g.notes)


def test_geometry_anisotropic_and_non_cm_units():
    ds = Dataset()
    ds.SequenceOfUltrasoundRegions = [us_region((0, 0, 79, 59), (0.02, 0.03))]
    g = ultrasound_geometry(ds, (60, 80))
    assert g.pixel_size_mm == pytest.approx(np.sqrt(0.2 * 0.3))
    assert any("differs in X" in n for n in g.notes)
    ds.SequenceOfUltrasoundRegions = [us_region((0, 0, 79, 59), units=4)]  # seconds, not cm
    g = ultrasound_geometry(ds, (60, 80))
    assert g.pixel_size_mm is None and g.source == "none" and g.regions == ((0, 0, 80, 60),)


def test_pixel_spacing_fallback_and_conflict():
    ds = Dataset()
    ds.PixelSpacing = [0.25, 0.25]
    g = ultrasound_geometry(ds, (60, 80))
    assert g.pixel_size_mm == pytest.approx(0.25) and g.source == "dicom:PixelSpacing"
    ds.PixelSpacing = [0.3, 0.3]
    ds.SequenceOfUltrasoundRegions = [us_region((0, 0, 79, 59))]
    g = ultrasound_geometry(ds, (60, 80))
    assert g.pixel_size_mm == pytest.approx(0.2) and g.source == "dicom:SequenceOfUltrasoundRegions"
    assert any("conflicts" in n for n in g.notes)
    g = ultrasound_geometry(Dataset(), (60, 80))
    assert g.pixel_size_mm is None and g.source == "none"
