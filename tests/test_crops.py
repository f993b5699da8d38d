import numpy as np
import pytest

from fetalhc.crops import CropMode, corner_boxes, crop_boxes, extract_crop, paste_back
from fetalhc.ellipse import Ellipse
from fetalhc.fuse import fuse_probabilities
from fetalhc.metrics import dice_jaccard


def test_corner_boxes_are_anchored_at_their_corners():
    boxes = corner_boxes(800, 540, 0.9)
    assert [b.name for b in boxes] == ["top_left", "top_right", "bottom_right", "bottom_left"]
    for b in boxes:
        assert (b.width_px, b.height_px) == (720, 486)
    tl, tr, br, bl = boxes
    assert (tl.x0, tl.y0) == (0, 0)
    assert (tr.x1, tr.y0) == (800, 0)
    assert (br.x1, br.y1) == (800, 540)
    assert (bl.x0, bl.y1) == (0, 540)


@pytest.mark.parametrize("q", [0.0, -0.1, 1.5])
def test_bad_q_is_refused(q):
    with pytest.raises(ValueError, match="q must lie"):
        corner_boxes(100, 100, q)


@pytest.mark.parametrize(
    ("mode", "flips", "n"),
    [("full", False, 1), ("corners", False, 4), ("corners+full", False, 5), ("corners", True, 8)],
)
def test_crop_modes(mode, flips, n):
    assert len(crop_boxes(800, 540, CropMode(mode), 0.9, flips)) == n


@pytest.mark.parametrize(("mode", "flips"), [("full", False), ("corners", False), ("corners", True)])
def test_crop_then_fuse_round_trip_recovers_the_mask(mode, flips):
    mask = Ellipse(390.0, 280.0, 230.0, 170.0, 25.0).rasterize((540, 800))
    boxes = crop_boxes(800, 540, mode, 0.9, flips)
    probs = [extract_crop(mask.astype(np.float32), b, (256, 384)) for b in boxes]
    fused = fuse_probabilities(probs, boxes, (540, 800))
    dice, _ = dice_jaccard(fused >= 0.5, mask)
    assert dice > 0.995


def test_flip_is_undone_when_pasting_back():
    box = crop_boxes(40, 20, "full", flips=True)[1]
    assert box.flip
    img = np.tile(np.arange(40, dtype=np.float32), (20, 1))
    crop = extract_crop(img, box, (20, 40))
    assert crop[0, 0] > crop[0, -1]
    assert np.allclose(paste_back(crop, box), img)
