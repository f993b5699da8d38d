"""The zoom box and its mapping back to the image."""

import cv2
import numpy as np
import pytest

from fetalhc.ellipse import Ellipse
from fetalhc.phantom import make_phantom
from fetalhc.zoom import (
    ZoomBox,
    extract_zoom,
    fuse_zoom,
    mask_bbox,
    paste_zoom,
    zoom_box,
    zoom_pass,
    zoom_scale,
    zoom_window,
)

NET = (256, 384)


def test_zoom_box_has_the_network_aspect_covers_the_head_and_stays_inside():
    for bbox in [(300, 200, 420, 300), (10, 5, 200, 150), (100, 50, 700, 500), (600, 400, 790, 530)]:
        b = zoom_box(bbox, (540, 800), NET, margin=0.1, min_scale=1.0)
        assert b.width_px * NET[0] == b.height_px * NET[1]
        assert b.x0 <= bbox[0] and b.y0 <= bbox[1] and b.x1 >= bbox[2] and b.y1 >= bbox[3]
        if b.width_px <= 800 and b.height_px <= 540:
            assert 0 <= b.x0 and b.x1 <= 800 and 0 <= b.y0 and b.y1 <= 540
        assert zoom_scale(b, NET) >= 1.0


def test_small_head_is_seen_at_one_image_pixel_per_network_pixel_and_large_one_shrunk():
    assert zoom_scale(zoom_box((350, 230, 450, 310), (540, 800), NET), NET) == pytest.approx(1.0)
    big = zoom_box((50, 20, 750, 520), (540, 800), NET, margin=0.1)
    assert zoom_scale(big, NET) > 2.0 and big.x0 < 0  # wider than the image: it overhangs


def test_round_trip_maps_the_zoomed_phantom_back_onto_itself():
    img, ell = make_phantom(540, 800, Ellipse(420.0, 260.0, 150.0, 110.0, 25.0), seed=3)
    bbox = mask_bbox(ell.rasterize(img.shape))
    assert bbox is not None
    for min_scale in (1.0, 0.01):  # at the image's scale, and blown up to fill the network
        box = zoom_box(bbox, img.shape, NET, min_scale=min_scale)
        crop = extract_zoom(img, box, NET).astype(np.float32)
        back, covered = paste_zoom(crop, box, img.shape)
        inner = covered.copy()
        inner[: box.y0 + 2], inner[box.y1 - 2:] = False, False
        inner[:, : box.x0 + 2], inner[:, box.x1 - 2:] = False, False
        # the round trip only loses what a resampling loses; the head's mask maps back exactly
        ref = img.astype(np.float32)
        if min_scale == 1.0 and box.width_px == NET[1]:
            assert np.abs(back[inner] - ref[inner]).max() < 1e-3
        else:
            blurred = cv2.GaussianBlur(ref, (0, 0), 1.5)
            assert np.abs(back[inner] - blurred[inner]).mean() < 12
        m = ell.rasterize(img.shape).astype(np.float32)
        mb, _ = paste_zoom(extract_zoom(m, box, NET), box, img.shape)
        assert np.logical_xor(mb >= 0.5, m > 0).sum() < 0.01 * m.sum()


def test_flip_round_trip_and_overhang_is_black_and_uncovered():
    img = np.tile(np.arange(800, dtype=np.uint8)[None] % 251, (540, 1))
    box = ZoomBox(-96, -64, 288, 192)  # 384 x 256 at scale 1, overhanging the top-left
    crop = extract_zoom(img, box, NET, flip=True)
    assert crop[0, -1] == 0 and crop[-1, 0] == img[191, 287]
    back, cov = paste_zoom(crop.astype(np.float32), box, img.shape, flip=True)
    assert cov.sum() == 288 * 192 and not cov[200:, :].any()
    assert np.array_equal(back[:192, :288], img[:192, :288].astype(np.float32))


def test_fuse_zoom_replaces_or_averages_inside_the_box_only():
    base = np.full((10, 10), 0.2, np.float32)
    zp = np.ones((10, 10), np.float32)
    cov = np.zeros((10, 10), bool)
    cov[2:5, 2:5] = True
    assert fuse_zoom(base, zp, cov, 1.0)[3, 3] == 1.0 and fuse_zoom(base, zp, cov, 0.5)[3, 3] == pytest.approx(0.6)
    assert fuse_zoom(base, zp, cov, 1.0)[8, 8] == pytest.approx(0.2)
    with pytest.raises(ValueError):
        zoom_box((5, 5, 5, 9), (540, 800), NET)


def _paste_zoom_whole(prob: np.ndarray, box: ZoomBox, image_hw: tuple[int, int], flip: bool) -> tuple:
    """Reference: paste_zoom as written before the window (resize, then place in whole maps)."""
    h, w = image_hw
    p = np.ascontiguousarray(prob[:, ::-1] if flip else prob).astype(np.float32)
    big = cv2.resize(p, (box.width_px, box.height_px), interpolation=cv2.INTER_LINEAR)
    out, covered = np.zeros((h, w), np.float32), np.zeros((h, w), bool)
    ix0, iy0, ix1, iy1 = max(0, box.x0), max(0, box.y0), min(w, box.x1), min(h, box.y1)
    if ix1 > ix0 and iy1 > iy0:
        out[iy0:iy1, ix0:ix1] = big[iy0 - box.y0:iy1 - box.y0, ix0 - box.x0:ix1 - box.x0]
        covered[iy0:iy1, ix0:ix1] = True
    return out, covered


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("weight", [0.5, 1.0, 0.3])
def test_zoom_pass_blends_on_the_window_exactly_as_on_whole_maps(flip, weight):
    """zoom_pass blends only the box's window; the reference pastes whole maps and blends by mask.
    Heads in the middle, cut by borders and in a corner (the box then overhangs or is shifted)."""
    rng = np.random.default_rng(int(flip) + int(10 * weight))
    img, _ = make_phantom(540, 800, seed=1)

    def predict(crops: np.ndarray) -> np.ndarray:
        return rng.random(crops.shape).astype(np.float32)  # any map: the blend must not care

    for ell in [Ellipse(420.0, 260.0, 150.0, 110.0, 25.0), Ellipse(30.0, 500.0, 90.0, 60.0, 0.0),
                Ellipse(790.0, 10.0, 40.0, 30.0, 0.0), Ellipse(400.0, 270.0, 390.0, 260.0, 0.0)]:
        head = ell.rasterize(img.shape)
        fused = rng.random(img.shape).astype(np.float32)
        state = rng.bit_generator.state
        got, box = zoom_pass(img, fused, head, predict, NET, zoom_weight=weight, flip=flip)
        rng.bit_generator.state = state  # the reference sees the same network output
        assert box is not None
        flips = (False, True) if flip else (False,)
        probs = predict(np.stack([extract_zoom(img, box, NET, flip=f) for f in flips]))
        pasted = [_paste_zoom_whole(p, box, img.shape, f) for p, f in zip(probs, flips, strict=True)]
        want = fuse_zoom(fused, np.mean([m for m, _ in pasted], axis=0), pasted[0][1], weight)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)
    empty = np.zeros(img.shape, np.uint8)
    assert zoom_pass(img, fused, empty, predict, NET)[1] is None


def test_zoom_window_is_the_covered_part_of_paste_zoom():
    prob = np.random.default_rng(0).random(NET).astype(np.float32)
    for box in [ZoomBox(-96, -64, 288, 192), ZoomBox(500, 300, 884, 556), ZoomBox(100, 100, 484, 356),
                ZoomBox(900, 0, 1284, 256)]:
        back, cov = _paste_zoom_whole(prob, box, (540, 800), True)
        np.testing.assert_array_equal(paste_zoom(prob, box, (540, 800), flip=True)[0], back)
        window, part = zoom_window(prob, box, (540, 800), flip=True)
        np.testing.assert_array_equal(back[window], part)
        assert int(cov.sum()) == part.size and cov[window].all()
