"""DICOM decoding (fetalhc.dicom): photometrics, transfer syntaxes, cine frames, modality, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from pydicom.dataset import Dataset  # noqa: E402

from dicom_builder import SECRET, pydicom_file, ramp, write_dicom  # noqa: E402, F401 - SECRET: test_pipeline imports it from here
from fetalhc.dicom import (  # noqa: E402
    DicomFile,
    check_modality,
    frame_count,
    has_dicm_preamble,
    read_header,
    safe_reason,
    scale_to_uint8,
)
from fetalhc.image import ImageLoadError, UltrasoundImage  # noqa: E402


def decode(path: Path, index: int = 0) -> UltrasoundImage:
    """Frame ``index`` of a DICOM file through DicomFile (no modality check: that is the reader's)."""
    with DicomFile(path) as d:
        i, arr = next(d.arrays([index]))
        return d.image(arr, i)


# --------------------------------------------------------------------------- pydicom's own files


def test_palette_colour_ultrasound_with_doppler_region():
    img = decode(pydicom_file("examples_palette.dcm"))
    assert img.pixels.dtype == np.uint8 and img.pixels.shape == (350, 800)
    assert 5 < img.pixels.mean() < 100  # a mostly dark screen, not a LUT-index image
    # both regions (2-D tissue and Doppler) lie below the cropped 350-row image: not trusted
    assert img.pixel_size_mm is None and img.pixel_size_source == "none" and img.regions == ()
    assert sum("not trusted" in n for n in img.notes) == 2


def test_cine_jpeg_ybr_full_422_frame_by_frame():
    p = pydicom_file("examples_ybr_color.dcm")
    with DicomFile(p) as d:
        assert d.n_frames == 30
        frames = [d.image(arr, i) for i, arr in d.arrays()]
        one = [d.image(arr, i) for i, arr in d.arrays([7])]
        with pytest.raises(ImageLoadError, match=r"frame 30 out of range.*30 frame"):
            list(d.arrays([30]))
    assert len(frames) == 30
    assert [f.name for f in frames[:2]] == ["examples_ybr_color.dcm#frame 0", "examples_ybr_color.dcm#frame 1"]
    assert all(f.pixels.shape == (240, 320) and f.pixels.dtype == np.uint8 for f in frames)
    assert len(one) == 1 and one[0].name.endswith("#frame 7")
    assert np.array_equal(one[0].pixels, frames[7].pixels)
    assert not np.array_equal(frames[0].pixels, frames[7].pixels)


def test_frames_match_pydicom_reading_the_whole_file():
    p = pydicom_file("examples_ybr_color.dcm")
    whole = pydicom.dcmread(p).pixel_array  # (30, 240, 320, 3), YBR converted to RGB
    with DicomFile(p) as d:
        for i, arr in d.arrays([0, 13, 29]):
            assert np.array_equal(arr, whole[i])


def test_jpeg_ybr_full_matches_uncompressed():
    jpeg = decode(pydicom_file("SC_rgb_jpeg_dcmtk.dcm")).pixels.astype(float)
    raw = decode(pydicom_file("SC_ybr_full_422_uncompressed.dcm")).pixels.astype(float)
    assert jpeg.shape == raw.shape == (100, 100)
    assert np.abs(jpeg - raw).mean() < 4  # same colour bars, lossy JPEG


@pytest.mark.parametrize("name", ["examples_rgb_color.dcm", "examples_jpeg2k.dcm", "US1_UNCR.dcm", "US1_J2KR.dcm"])
def test_colour_ultrasound_files_decode(name):
    img = decode(pydicom_file(name))
    assert img.pixels.ndim == 2 and img.pixels.dtype == np.uint8 and img.pixels.max() > 100


def test_us1_uncompressed_equals_j2k_lossless():
    assert np.array_equal(decode(pydicom_file("US1_UNCR.dcm")).pixels, decode(pydicom_file("US1_J2KR.dcm")).pixels)


def test_truncated_file_names_file_and_problem():
    with pytest.raises(ImageLoadError, match=r"MR_truncated\.dcm: .*pixel data"):
        decode(pydicom_file("MR_truncated.dcm"))


def test_deflated_file_decodes():
    p = pydicom_file("image_dfl.dcm")
    img = decode(p)
    assert np.array_equal(img.pixels, scale_to_uint8(pydicom.dcmread(p).pixel_array, pydicom.dcmread(p)))


# --------------------------------------------------------------------------- synthetic files


def test_monochrome1_is_inverted_and_16_bit_scaled(tmp_path):
    px = ramp()
    img = decode(write_dicom(tmp_path / "m1.dcm", px, "MONOCHROME1"))
    assert np.array_equal(img.pixels, 255 - px)
    px16 = (ramp().astype(np.uint16) * 16)  # 12-bit data
    img = decode(write_dicom(tmp_path / "m16.dcm", px16, bits_stored=12))
    assert np.abs(img.pixels.astype(int) - np.round(px16.astype(float) * 255 / 4095)).max() <= 1


def test_rgb_and_multiframe_synthetic(tmp_path):
    rgb = np.zeros((3, 60, 80, 3), np.uint8)
    rgb[..., 0] = ramp()
    rgb[1, ..., 1] = 200
    with DicomFile(write_dicom(tmp_path / "cine.dcm", rgb, "RGB")) as d:
        frames = [d.image(arr, i) for i, arr in d.arrays()]
    assert len(frames) == 3 and frames[2].name == "cine.dcm#frame 2"
    assert np.abs(frames[0].pixels.astype(int) - np.round(ramp() * 0.299)).max() <= 1
    assert np.abs(frames[1].pixels.astype(int) - np.round(ramp() * 0.299 + 200 * 0.587)).max() <= 1


def test_header_keeps_values_and_file_is_closed(tmp_path):
    p = write_dicom(tmp_path / "h.dcm", ramp(), PixelSpacing=[0.25, 0.25])
    with DicomFile(p) as d:
        assert d.header.Rows == 60 and d.n_frames == 1 and "PixelData" not in d.header
    with pytest.raises(ValueError):  # closed: nothing more can be decoded
        list(d.arrays())
    assert read_header(p).Modality == "US" and has_dicm_preamble(p)
    assert not has_dicm_preamble(tmp_path / "missing.dcm")


def test_no_pixel_data(tmp_path):
    p = write_dicom(tmp_path / "nopix.dcm", ramp(), pixel_data=False)
    with pytest.raises(ImageLoadError) as e:
        decode(p)
    assert "nopix.dcm" in str(e.value) and "Pixel Data (7FE0,0010) is missing" in str(e.value)
    assert "Zebedee" not in str(e.value)


def test_unsupported_transfer_syntax(tmp_path):
    p = write_dicom(tmp_path / "odd.dcm", ramp())
    ds = pydicom.dcmread(p)
    ds.file_meta.TransferSyntaxUID = "1.2.3.4.5.6"
    ds.save_as(p)
    with pytest.raises(ImageLoadError, match=r"odd\.dcm: .*transfer syntax 1\.2\.3\.4\.5\.6") as e:
        decode(p)
    assert "Zebedee" not in str(e.value)


def test_oversized_frame_is_refused_before_decoding(tmp_path):
    p = write_dicom(tmp_path / "big.dcm", ramp())
    with pytest.raises(ImageLoadError, match=r"big\.dcm: frame is 80x60 = 4800 pixels, more than the limit of 1000"):
        DicomFile(p, max_pixels=1000)


def test_truncated_and_garbage_files(tmp_path):
    p = write_dicom(tmp_path / "cut.dcm", np.tile(ramp(), (4, 4)))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageLoadError) as e:
        decode(p)
    assert "cut.dcm" in str(e.value) and "Zebedee" not in str(e.value)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"this is not a DICOM file at all" * 10)
    with pytest.raises(ImageLoadError, match=r"junk\.dcm: not a DICOM file"):
        decode(junk)
    head_only = tmp_path / "head.dcm"
    head_only.write_bytes(data[:200])
    with pytest.raises(ImageLoadError, match=r"head\.dcm"):
        decode(head_only)


def test_file_without_preamble_is_read_from_its_elements(tmp_path):
    p = write_dicom(tmp_path / "raw.dcm", ramp())
    ds = pydicom.dcmread(p)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.preamble = None
    bare = tmp_path / "bare.dcm"
    ds.save_as(bare, enforce_file_format=False, implicit_vr=True, little_endian=True)  # no preamble, no meta
    assert not has_dicm_preamble(bare)
    assert np.array_equal(decode(bare).pixels, ramp())


# --------------------------------------------------------------------------- header values


@pytest.mark.parametrize(("modality", "force", "expected"), [
    ("US", False, ()),
    ("US ", False, ()),
    (None, False, ("DICOM Modality (0008,0060) is missing; read as ultrasound",)),
    ("CT", True, ("DICOM modality is CT, not US (ultrasound); read anyway (forced)",)),
])
def test_check_modality_accepts(modality, force, expected):
    ds = Dataset()
    if modality is not None:
        ds.Modality = modality
    assert check_modality(ds, "x.dcm", force) == expected


@pytest.mark.parametrize("modality", ["CT", "MR", "OT"])
def test_check_modality_refuses_other_modalities(modality):
    ds = Dataset()
    ds.Modality = modality
    with pytest.raises(ImageLoadError, match=rf"^x\.dcm: DICOM modality is {modality}, not US \(ultrasound\)"):
        check_modality(ds, "x.dcm")


@pytest.mark.parametrize(("value", "expected"), [(None, 1), ("", 1), ("1", 1), (30, 30)])
def test_frame_count(value, expected):
    ds = Dataset()
    if value is not None:
        ds.NumberOfFrames = value
    assert frame_count(ds) == expected


@pytest.mark.parametrize("value", ["0", "-2"])
def test_frame_count_refuses_fewer_than_one(value):
    ds = Dataset()
    ds.NumberOfFrames = value
    with pytest.raises(ImageLoadError, match="expected at least 1"):
        frame_count(ds, "f.dcm")


def test_safe_reason_hides_quoted_values():
    assert "Zebedee" not in safe_reason(ValueError("bad 'Zebedee^Quarrington' here"))
    assert safe_reason(KeyError()) == "KeyError"
