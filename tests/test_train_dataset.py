"""Training samples: zoom-pass boxes and padded crops (torch not needed)."""

import random

import numpy as np
import pytest

pytest.importorskip("albumentations", reason="training needs the train extra")
from fetalhc.ellipse import Ellipse  # noqa: E402
from fetalhc.train.dataset import Sample, make_pair, zoom_training_box  # noqa: E402

NET = (256, 384)


@pytest.mark.parametrize("head", [Ellipse(400, 270, 330, 250, 10), Ellipse(400, 270, 60, 50, 10),
                                  Ellipse(60, 60, 100, 80, 30)])
def test_zoom_box_holds_the_head_in_the_network_aspect(head):
    mask = head.rasterize((540, 800))
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    for seed in range(20):
        b = zoom_training_box(mask, NET, random.Random(seed))
        assert b.x0 <= cols[0] and b.x1 > cols[-1] and b.y0 <= rows[0] and b.y1 > rows[-1]
        assert b.width_px >= NET[1] and b.height_px >= NET[0]
        assert b.width_px / b.height_px == pytest.approx(NET[1] / NET[0], rel=0.01)


def test_padded_zoom_crop_keeps_mask_and_image_aligned():
    head = Ellipse(400, 270, 330, 250, 10)  # overhangs any zoom box's image part
    mask = head.rasterize((540, 800))
    img = np.where(mask > 0, 200, 50).astype(np.uint8)
    s = Sample("a.png", img, mask, 0.1, 100.0)
    b = zoom_training_box(mask, NET, random.Random(1))
    assert b.x0 < 0 or b.y0 < 0  # the box reaches beyond the image: padding is exercised
    x, y = make_pair(s, b, NET)
    assert x.shape == y.shape == NET
    inside, outside = x[y > 0.99], x[y < 0.01]
    assert np.allclose(inside, 200 / 255, atol=0.02)
    assert outside.max() <= 50 / 255 + 0.02  # screen background or black padding
    assert (outside < 0.01).any()  # the padding is black
