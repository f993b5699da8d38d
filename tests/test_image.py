"""fetalhc.image: the image value, grey conversion, Pillow formats and bit depths, clear errors."""

import cv2
import numpy as np
import pytest
from PIL import Image

from fetalhc.image import ImageLoadError, UltrasoundImage, load_pil_image, to_grey_uint8, validate_pixel_size
from fetalhc.phantom import make_phantom


@pytest.fixture
def grey():
    img, _ = make_phantom(60, 90, seed=1)
    return cv2.GaussianBlur(img, (0, 0), 2)  # smooth enough for JPEG to keep it


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_formats_and_channels_give_one_grey_image(tmp_path, grey, suffix, mode):
    if suffix in (".jpg", ".bmp") and mode == "RGBA":
        pytest.skip("format has no alpha")
    im = Image.fromarray(grey).convert(mode)
    if mode == "RGBA":
        im.putalpha(255)
    p = tmp_path / f"x{suffix}"
    im.save(p)
    out = load_pil_image(p)
    assert out.pixels.dtype == np.uint8 and out.pixels.shape == grey.shape
    tol = 6 if suffix == ".jpg" else 1
    assert np.abs(out.pixels.astype(int) - grey.astype(int)).mean() < tol
    assert out.name == p.name and out.pixel_size_mm is None and out.pixel_size_source == "none"


def test_16_bit_png_is_scaled_to_8_bit(tmp_path, grey):
    p = tmp_path / "x16.png"
    Image.fromarray(grey.astype(np.uint16) * 257).save(p)
    out = load_pil_image(p)
    assert np.abs(out.pixels.astype(int) - grey.astype(int)).max() <= 1


def test_pixel_size_is_carried_with_its_source(grey):
    img = UltrasoundImage(grey, name="a.png").with_pixel_size(0.12, "user")
    assert img.pixel_size_mm == 0.12 and img.pixel_size_source == "user"
    assert validate_pixel_size("0.25") == 0.25
    img = img.with_pixel_size(None, "user")
    assert img.pixel_size_mm is None and img.pixel_size_source == "none"


@pytest.mark.parametrize("bad", [0, -0.1, float("nan"), "abc"])
def test_bad_pixel_size_is_refused(grey, bad):
    with pytest.raises(ValueError, match=r"a\.png: pixel size"):
        UltrasoundImage(grey, name="a.png").with_pixel_size(bad, "user")


def test_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match="nope.png: file not found"):
        load_pil_image(tmp_path / "nope.png")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(ImageLoadError, match="empty.png: file is empty"):
        load_pil_image(p)


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("this is not a picture\n" * 20)
    with pytest.raises(ImageLoadError, match="notes.png: not a readable image"):
        load_pil_image(p)


def test_truncated_png(tmp_path, grey):
    p = tmp_path / "cut.png"
    Image.fromarray(grey).save(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="cut.png"):
        load_pil_image(p)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    p = tmp_path / "bomb.png"
    Image.new("1", (9000, 9000)).save(p)  # 81 M pixels in a few kB
    with pytest.raises(ImageLoadError, match="bomb.png: image is 9000x9000"):
        load_pil_image(p)


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(ImageLoadError, match="directory"):
        load_pil_image(tmp_path)


def test_zero_sized_array_is_refused():
    with pytest.raises(ImageLoadError, match="zero size"):
        to_grey_uint8(np.zeros((0, 5), np.uint8))


def test_float_and_bool_arrays():
    assert to_grey_uint8(np.ones((2, 2), np.float32)).max() == 255
    assert to_grey_uint8(np.ones((2, 2), bool)).max() == 255
    with pytest.raises(ImageLoadError, match="NaN"):
        to_grey_uint8(np.full((2, 2), np.nan))
