"""DICOM loading: photometrics, transfer syntaxes, cine frames, pixel size from the header, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from pydicom.dataset import Dataset  # noqa: E402

from dicom_builder import us_region, write_us_dicom  # noqa: E402
from fetalhc.dicom import iter_dicom_frames, load_dicom, number_of_frames, ultrasound_geometry  # noqa: E402
from fetalhc.image import ImageLoadError, load_image  # noqa: E402

SECRET = "Zebedee^Quarrington"  # an invented patient name that must never leak into messages


def pydicom_file(name: str) -> Path:
    """A pydicom test file present locally (never downloaded), else skip."""
    from pydicom.data import get_testdata_file

    p = get_testdata_file(name, download=False)
    if p is None or not Path(p).is_file():
        pytest.skip(f"pydicom test file {name} is not available offline (it is in pydicom-data)")
    return Path(p)


def write_dicom(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int | None = None,
                pixel_data: bool = True, **tags: object) -> Path:
    """A minimal ultrasound DICOM of ``pixels`` whose header names the invented patient SECRET."""
    tags = {"PatientName": SECRET, "PatientID": "QX-99887766", **tags}
    return write_us_dicom(path, pixels, photometric, bits_stored, pixel_data, **tags)


def ramp(h: int = 60, w: int = 80) -> np.ndarray:
    return (np.arange(w, dtype=np.uint16)[None, :] * 3 + np.arange(h, dtype=np.uint16)[:, None]).astype(np.uint8)


# --------------------------------------------------------------------------- pydicom's own files


def test_palette_colour_ultrasound_with_doppler_region():
    img = load_dicom(pydicom_file("examples_palette.dcm"))
    assert img.pixels.dtype == np.uint8 and img.pixels.shape == (350, 800)
    assert 5 < img.pixels.mean() < 100  # a mostly dark screen, not a LUT-index image
    # both regions (2-D tissue and Doppler) lie below the cropped 350-row image: not trusted
    assert img.pixel_size_mm is None and img.pixel_size_source == "none" and img.regions == ()
    assert sum("not trusted" in n for n in img.notes) == 2


def test_cine_jpeg_ybr_full_422_frame_by_frame():
    p = pydicom_file("examples_ybr_color.dcm")
    assert number_of_frames(p) == 30
    frames = list(iter_dicom_frames(p))
    assert len(frames) == 30
    assert [f.name for f in frames[:2]] == ["examples_ybr_color.dcm#frame 0", "examples_ybr_color.dcm#frame 1"]
    assert all(f.pixels.shape == (240, 320) and f.pixels.dtype == np.uint8 for f in frames)
    one = load_dicom(p, frame=7)
    assert one.name.endswith("#frame 7")
    assert np.array_equal(one.pixels, frames[7].pixels)
    first = load_dicom(p)
    assert np.array_equal(first.pixels, frames[0].pixels) and any("cine of 30 frames" in n for n in first.notes)
    with pytest.raises(ImageLoadError, match=r"frame 30 out of range.*30 frame"):
        load_dicom(p, frame=30)


def test_jpeg_ybr_full_matches_uncompressed():
    jpeg = load_dicom(pydicom_file("SC_rgb_jpeg_dcmtk.dcm")).pixels.astype(float)
    raw = load_dicom(pydicom_file("SC_ybr_full_422_uncompressed.dcm")).pixels.astype(float)
    assert jpeg.shape == raw.shape == (100, 100)
    assert np.abs(jpeg - raw).mean() < 4  # same colour bars, lossy JPEG


@pytest.mark.parametrize("name", ["examples_rgb_color.dcm", "examples_jpeg2k.dcm", "US1_UNCR.dcm", "US1_J2KR.dcm"])
def test_colour_ultrasound_files_decode(name):
    img = load_dicom(pydicom_file(name))
    assert img.pixels.ndim == 2 and img.pixels.dtype == np.uint8 and img.pixels.max() > 100


def test_us1_uncompressed_equals_j2k_lossless():
    a = load_dicom(pydicom_file("US1_UNCR.dcm")).pixels
    b = load_dicom(pydicom_file("US1_J2KR.dcm")).pixels
    assert np.array_equal(a, b)


def test_truncated_file_names_file_and_problem():
    with pytest.raises(ImageLoadError, match=r"MR_truncated\.dcm: .*pixel data"):
        load_dicom(pydicom_file("MR_truncated.dcm"))


# --------------------------------------------------------------------------- synthetic files


def test_pixel_size_from_ultrasound_region_and_load_image_dispatch(tmp_path):
    reg = us_region((10, 5, 69, 54), (0.015, 0.015))
    p = write_dicom(tmp_path / "us.dcm", ramp(), SequenceOfUltrasoundRegions=[reg])
    img = load_image(p)
    assert img.pixel_size_mm == pytest.approx(0.15)
    assert img.pixel_size_source == "dicom:SequenceOfUltrasoundRegions"
    assert img.regions == ((10, 5, 70, 55),)  # inclusive max -> exclusive
    assert img.name == "us.dcm" and img.notes == ()
    assert np.array_equal(img.pixels, ramp())


def test_pixel_spacing_fallback_and_conflict(tmp_path):
    img = load_dicom(write_dicom(tmp_path / "ps.dcm", ramp(), PixelSpacing=[0.25, 0.25]))
    assert img.pixel_size_mm == pytest.approx(0.25) and img.pixel_size_source == "dicom:PixelSpacing"
    img = load_dicom(write_dicom(tmp_path / "both.dcm", ramp(), PixelSpacing=[0.3, 0.3],
                                 SequenceOfUltrasoundRegions=[us_region((0, 0, 79, 59))]))
    assert img.pixel_size_mm == pytest.approx(0.2)
    assert any("conflicts" in n for n in img.notes)
    img = load_dicom(write_dicom(tmp_path / "none.dcm", ramp()))
    assert img.pixel_size_mm is None and img.pixel_size_source == "none"


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


def test_monochrome1_is_inverted_and_16_bit_scaled(tmp_path):
    px = ramp()
    img = load_dicom(write_dicom(tmp_path / "m1.dcm", px, "MONOCHROME1"))
    assert np.array_equal(img.pixels, 255 - px)
    px16 = (ramp().astype(np.uint16) * 16)  # 12-bit data
    img = load_dicom(write_dicom(tmp_path / "m16.dcm", px16, bits_stored=12))
    assert np.abs(img.pixels.astype(int) - np.round(px16.astype(float) * 255 / 4095)).max() <= 1


def test_rgb_and_multiframe_synthetic(tmp_path):
    rgb = np.zeros((3, 60, 80, 3), np.uint8)
    rgb[..., 0] = ramp()
    p = write_dicom(tmp_path / "cine.dcm", rgb, "RGB")
    frames = list(iter_dicom_frames(p))
    assert len(frames) == 3 and frames[2].name == "cine.dcm#frame 2"
    assert np.abs(frames[0].pixels.astype(int) - np.round(ramp() * 0.299)).max() <= 1


def test_no_pixel_data(tmp_path):
    p = write_dicom(tmp_path / "nopix.dcm", ramp(), pixel_data=False)
    with pytest.raises(ImageLoadError) as e:
        load_dicom(p)
    assert "nopix.dcm" in str(e.value) and "Pixel Data (7FE0,0010) is missing" in str(e.value)
    assert "Zebedee" not in str(e.value)


def test_unsupported_transfer_syntax(tmp_path):
    p = write_dicom(tmp_path / "odd.dcm", ramp())
    ds = pydicom.dcmread(p)
    ds.file_meta.TransferSyntaxUID = "1.2.3.4.5.6"
    ds.save_as(p)
    with pytest.raises(ImageLoadError, match=r"odd\.dcm: .*transfer syntax 1\.2\.3\.4\.5\.6") as e:
        load_dicom(p)
    assert "Zebedee" not in str(e.value)


def test_truncated_and_garbage_files(tmp_path):
    p = write_dicom(tmp_path / "cut.dcm", np.tile(ramp(), (4, 4)))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageLoadError) as e:
        load_dicom(p)
    assert "cut.dcm" in str(e.value) and "Zebedee" not in str(e.value)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"this is not a DICOM file at all" * 10)
    with pytest.raises(ImageLoadError, match=r"junk\.dcm: not a DICOM file"):
        load_dicom(junk)
    head_only = tmp_path / "head.dcm"
    head_only.write_bytes(data[:200])
    with pytest.raises(ImageLoadError, match=r"head\.dcm"):
        load_dicom(head_only)
