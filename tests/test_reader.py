"""fetalhc.reader: which files are inputs, which are DICOM, frames from any file, modality, one parse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pydicom = pytest.importorskip("pydicom")

from dicom_builder import pydicom_file, ramp, us_region, write_dicom  # noqa: E402
from fetalhc import reader  # noqa: E402
from fetalhc.image import ImageLoadError  # noqa: E402
from fetalhc.reader import Frame, is_dicom, iter_frames, iter_inputs, load_image  # noqa: E402


def png(path: Path, pixels: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ramp() if pixels is None else pixels).save(path, format="PNG")
    return path


# --------------------------------------------------------------------------- finding inputs


def test_extensionless_dicom_in_a_folder_is_found(tmp_path):
    d = tmp_path / "study"
    d.mkdir()
    write_dicom(d / "IM_0001", ramp())  # as PACS exports write them: no suffix
    (d / "notes.txt").write_text("not an image")
    (d / "README").write_text("x" * 200)  # long enough to hold byte 128, but no DICM there
    png(d / "a.png")
    assert [p.name for p in iter_inputs([d])] == ["IM_0001", "a.png"]
    assert is_dicom(d / "IM_0001") and not is_dicom(d / "a.png") and not is_dicom(d / "README")


def test_inputs_recursive_sorted_like_rglob_and_lazy(tmp_path):
    for rel in ("b.png", "a/z.jpg", "a/b/y.tif", "a.png", "c/x.dcm", "c/x.dicom", "A.BMP"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    for skipped in ("c/1_Annotation.png", "c/1_mask.png", "c/1_overlay.png", "c/.hidden.png", "c/DICOMDIR",
                    "c/data.csv"):
        (tmp_path / skipped).write_bytes(b"x")
    expected = sorted(p for p in tmp_path.rglob("*") if p.is_file() and reader.is_input_file(p))
    found = list(iter_inputs([tmp_path]))
    assert found == expected
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "A.BMP", "a/b/y.tif", "a/z.jpg", "a.png", "b.png", "c/x.dcm", "c/x.dicom"]
    it = iter_inputs([tmp_path / "missing.png", tmp_path])
    assert next(it) == tmp_path / "missing.png"  # files given directly are passed on as they are


# --------------------------------------------------------------------------- frames


def test_png_gives_one_frame_without_index(tmp_path):
    p = png(tmp_path / "x.png")
    (f,) = iter_frames(p)
    assert isinstance(f, Frame) and f.index is None
    assert np.array_equal(f.image.pixels, ramp()) and f.image.name == "x.png"
    with pytest.raises(ImageLoadError, match=r"x\.png: a frame number applies to DICOM files only"):
        list(iter_frames(p, frame=0))


def test_dicom_single_frame_and_cine(tmp_path):
    (f,) = iter_frames(write_dicom(tmp_path / "one.dcm", ramp()))
    assert f.index is None and f.image.name == "one.dcm"
    cine = np.stack([ramp() + k for k in range(4)])
    p = write_dicom(tmp_path / "cine", cine)  # no suffix: found by its preamble
    frames = list(iter_frames(p))
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert [f.image.name for f in frames][-1] == "cine#frame 3"
    assert all(np.array_equal(f.image.pixels, cine[f.index]) for f in frames)
    (two,) = iter_frames(p, frame=2)
    assert two.index == 2 and np.array_equal(two.image.pixels, cine[2])
    with pytest.raises(ImageLoadError, match=r"cine: frame 4 out of range; the file has 4 frame"):
        list(iter_frames(p, frame=4))


def test_load_image_takes_the_first_cine_frame_with_a_note(tmp_path):
    cine = np.stack([ramp() + k for k in range(3)])
    img = load_image(write_dicom(tmp_path / "c.dcm", cine))
    assert np.array_equal(img.pixels, cine[0]) and img.notes == ("cine of 3 frames; frame 0 used",)


def test_pixel_size_from_ultrasound_region_and_the_users_size(tmp_path):
    reg = us_region((10, 5, 69, 54), (0.015, 0.015))
    p = write_dicom(tmp_path / "us.dcm", ramp(), SequenceOfUltrasoundRegions=[reg])
    img = load_image(p)
    assert img.pixel_size_mm == pytest.approx(0.15)
    assert img.pixel_size_source == "dicom:SequenceOfUltrasoundRegions"
    assert img.regions == ((10, 5, 70, 55),)  # inclusive max -> exclusive
    assert img.name == "us.dcm" and img.notes == ()
    assert np.array_equal(img.pixels, ramp())
    img = load_image(p, pixel_size_mm=0.2)
    assert img.pixel_size_mm == 0.2 and img.pixel_size_source == "user"
    img = load_image(png(tmp_path / "a.png"), pixel_size_mm=0.12)
    assert img.pixel_size_mm == 0.12 and img.pixel_size_source == "user"


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_non_ultrasound_modality_refused_unless_forced(tmp_path, modality):
    p = write_dicom(tmp_path / "scan.dcm", ramp(), Modality=modality)
    with pytest.raises(ImageLoadError) as e:
        list(iter_frames(p))
    msg = str(e.value)
    assert msg.startswith(f"{p}: DICOM modality is {modality}, not US (ultrasound)") and "force" in msg
    with pytest.raises(ImageLoadError, match=f"modality is {modality}"):
        load_image(p)
    (f,) = iter_frames(p, force=True)
    assert np.array_equal(f.image.pixels, ramp())
    assert f.image.notes == (f"DICOM modality is {modality}, not US (ultrasound); read anyway (forced)",)
    assert load_image(p, force=True).notes == f.image.notes


def test_missing_modality_is_read_with_a_note(tmp_path):
    p = write_dicom(tmp_path / "nomod.dcm", ramp())
    ds = pydicom.dcmread(p)
    del ds.Modality
    ds.save_as(p)
    (f,) = iter_frames(p)
    assert f.image.notes == ("DICOM Modality (0008,0060) is missing; read as ultrasound",)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(ImageLoadError, match=r"nope\.dcm: file not found"):
        list(iter_frames(tmp_path / "nope.dcm"))
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ImageLoadError, match=r"empty: file is empty"):
        load_image(tmp_path / "empty")
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"this is not a DICOM file at all" * 10)
    with pytest.raises(ImageLoadError, match=r"junk\.dcm: not a DICOM file"):
        load_image(junk)


def test_pydicom_cine_frames_and_modality():
    p = pydicom_file("examples_ybr_color.dcm")
    frames = iter_frames(p)
    first = next(frames)
    assert first.index == 0 and first.image.pixels.shape == (240, 320)
    assert sum(1 for _ in frames) == 29
    with pytest.raises(ImageLoadError, match="modality is OT"):
        load_image(pydicom_file("SC_rgb_jpeg_dcmtk.dcm"))


# --------------------------------------------------------------------------- one parse per file


@pytest.fixture
def parse_counter(monkeypatch):
    """Counts of pydicom.dcmread calls and of file parses (every parse, dcmread's or the pixel
    helpers', starts with read_preamble)."""
    import pydicom.filereader as fr

    counts = {"dcmread": 0, "parse": 0}
    real_dcmread, real_preamble = pydicom.dcmread, fr.read_preamble

    def dcmread(*a, **k):
        counts["dcmread"] += 1
        return real_dcmread(*a, **k)

    def read_preamble(*a, **k):
        counts["parse"] += 1
        return real_preamble(*a, **k)

    monkeypatch.setattr(pydicom, "dcmread", dcmread)
    monkeypatch.setattr(fr, "dcmread", dcmread)
    monkeypatch.setattr(fr, "read_preamble", read_preamble)
    return counts


def test_cine_header_parsed_once(tmp_path, parse_counter):
    p = write_dicom(tmp_path / "cine.dcm", np.stack([ramp() + k for k in range(5)]))
    assert len(list(iter_frames(p))) == 5
    assert parse_counter == {"dcmread": 1, "parse": 1}
    parse_counter.update(dcmread=0, parse=0)
    load_image(p)
    assert parse_counter == {"dcmread": 1, "parse": 1}


def test_compressed_cine_header_parsed_once(parse_counter):
    assert len(list(iter_frames(pydicom_file("examples_ybr_color.dcm")))) == 30
    assert parse_counter == {"dcmread": 1, "parse": 1}
