"""0.4's default views: a half-size locate pass, a full-size second look where it finds nothing,
and a zoom pass that is redone when the box its own mask asks for differs from the one it got."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from conftest import PHANTOM_TRUTH
from fetalhc.ellipse import Ellipse
from fetalhc.phantom import make_phantom
from fetalhc.pipeline import SETTINGS_LABEL, PipelineConfig
from fetalhc.segment import Segmenter
from fetalhc.segmentation import ZOOM_FOR_CROP_MODE, ZoomSettings, locate_hw, segment
from fetalhc.zoom import ZoomBox, box_iou

DEFAULT = ZOOM_FOR_CROP_MODE["full"]
#: 0.3's default: a full-size locate pass, no self-check
FULL_SIZE = ZoomSettings(weight=1.0, flip=True)
#: a small head (semi-axes 120 x 95 px) in a 540 x 800 image: the zoom box is the network's own size
SMALL = Ellipse(400.0, 270.0, 120.0, 95.0, 10.0)


class Spy:
    """A segmenter that records the crops' shapes and can replace the coarse pass's output."""

    def __init__(self, inner: Segmenter, coarse=None) -> None:
        self.inner, self.coarse, self.shapes = inner, coarse, []
        self.input_hw, self.info, self.accepts = inner.input_hw, inner.info, inner.accepts

    def predict(self, crops):
        self.shapes.append(tuple(crops.shape))
        p = self.inner.predict(crops)
        if self.coarse is not None and tuple(crops.shape[1:]) != self.input_hw:
            p = np.stack([self.coarse(q) for q in p])
        return p


@pytest.fixture(scope="module")
def seg(model_path):
    return Segmenter(model_path)


@pytest.fixture(scope="module")
def small_head():
    img, _ = make_phantom(540, 800, SMALL, seed=3)
    return img


@pytest.fixture(scope="module")
def large_head():
    img, _ = make_phantom(540, 800, PHANTOM_TRUTH, seed=7)
    return img


def _hc_px(mask) -> float:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    c = max(contours, key=cv2.contourArea)
    (_, _), (a, b), _ = cv2.fitEllipse(c)
    return Ellipse(0, 0, a / 2, b / 2, 0).perimeter_px


def test_the_default_finds_the_head_at_half_size_and_measures_at_full_size(seg, large_head, small_head):
    spy = Spy(seg)
    out = segment(large_head, spy, "full", zoom=DEFAULT)
    assert spy.shapes == [(1, 128, 192), (2, 256, 384)]
    assert out.passes == 3 and len(out.zoom_boxes) == 1
    assert out.crop_probs[0].shape == (128, 192)
    assert out.probability.shape == large_head.shape
    for img, truth in ((large_head, PHANTOM_TRUTH), (small_head, SMALL)):
        got, ref = segment(img, seg, "full", zoom=DEFAULT), segment(img, seg, "full", zoom=FULL_SIZE)
        assert _hc_px(got.mask) == pytest.approx(_hc_px(ref.mask), rel=0.01)
        assert _hc_px(got.mask) == pytest.approx(truth.perimeter_px, rel=0.04)


def test_a_coarse_pass_that_finds_nothing_is_done_again_at_full_size(seg, small_head):
    spy = Spy(seg, coarse=np.zeros_like)
    out = segment(small_head, spy, "full", zoom=DEFAULT)
    assert spy.shapes == [(1, 128, 192), (1, 256, 384), (2, 256, 384)]
    assert out.passes == 4
    # from there on it is 0.3's default, value for value
    ref = segment(small_head, seg, "full", zoom=FULL_SIZE)
    assert np.array_equal(out.probability, ref.probability) and out.zoom_boxes == ref.zoom_boxes


def _part_of_the_head(p):
    """A coarse map that found only the head's left part (a disc of radius ~25 image pixels at
    x 310, y 222; the head spans x 280-520, y 175-365)."""
    out = np.zeros_like(p)
    cv2.circle(out, (int(310 / 800 * p.shape[1]), int(222 / 540 * p.shape[0])), 6, 1.0, -1)
    return out


def test_a_zoom_box_its_own_mask_disagrees_with_is_zoomed_again(seg, small_head):
    spy = Spy(seg, coarse=_part_of_the_head)
    out = segment(small_head, spy, "full", zoom=DEFAULT)
    assert spy.shapes == [(1, 128, 192), (2, 256, 384), (2, 256, 384)]
    assert out.passes == 5 and len(out.zoom_boxes) == 2
    first, second = out.zoom_boxes
    assert box_iou(first, second) < DEFAULT.refine_iou
    assert _hc_px(out.mask) == pytest.approx(SMALL.perimeter_px, rel=0.04)
    # without the self-check the first box stands and the head is cut by it
    once = segment(small_head, Spy(seg, coarse=_part_of_the_head), "full", zoom=replace(DEFAULT, refine_iou=0.0))
    assert once.passes == 3 and once.zoom_boxes == (first,)
    assert abs(_hc_px(once.mask) - SMALL.perimeter_px) > 2 * abs(_hc_px(out.mask) - SMALL.perimeter_px)


def test_zoom_settings_refuse_a_blended_coarse_pass_and_bad_limits():
    with pytest.raises(ValueError, match="weight 1"):
        ZoomSettings(locate_scale=0.5)  # weight 0.5 would blend the coarse map into the zoom view
    with pytest.raises(ValueError, match="locate_scale"):
        ZoomSettings(weight=1.0, locate_scale=0.0)
    with pytest.raises(ValueError, match="refine_iou"):
        ZoomSettings(refine_iou=1.5)
    assert DEFAULT.label == "@0.5+zoomflip" and FULL_SIZE.label == "+zoomflip" and ZoomSettings().label == "+zoom"


def test_settings_labels_and_calibration_keys_tell_the_defaults_apart():
    assert PipelineConfig().crop_label == PipelineConfig().interval_key == "full@0.5+zoomflip"
    assert PipelineConfig(zoom=FULL_SIZE).interval_key == "full+zoomflip"  # 0.3's default keeps its own
    # a coarse pass without the self-check has the default's label but was never calibrated
    assert PipelineConfig(zoom=replace(DEFAULT, refine_iou=0.0)).interval_key is None
    assert SETTINGS_LABEL.fullmatch("full@0.5+zoomflip") and not SETTINGS_LABEL.fullmatch("full@0.5")


def test_calibratable_zooms_have_labels_of_their_own():
    from fetalhc.segmentation import STANDARD_ZOOMS

    for mode, zooms in STANDARD_ZOOMS.items():
        labels = [PipelineConfig(crop_mode=mode, zoom=z).crop_label for z in zooms]
        assert len(set(labels)) == len(labels), labels
        assert all(SETTINGS_LABEL.fullmatch(label) for label in labels)


def test_corner_crops_can_find_the_head_at_half_size_too(seg, large_head):
    spy = Spy(seg)
    out = segment(large_head, spy, "corners", zoom=replace(DEFAULT, flip=False))
    assert spy.shapes == [(4, 128, 192), (1, 256, 384)] and out.passes == 5
    ref = segment(large_head, seg, "corners", zoom=ZoomSettings(weight=1.0))
    assert _hc_px(out.mask) == pytest.approx(_hc_px(ref.mask), rel=0.01)


def test_locate_size_is_a_multiple_of_the_stride():
    assert locate_hw((256, 384), 0.5) == (128, 192)
    assert all(v % 32 == 0 for v in locate_hw((256, 384), 0.37))


def test_box_iou():
    a = ZoomBox(0, 0, 10, 10)
    assert box_iou(a, a) == 1.0 and box_iou(a, ZoomBox(20, 20, 30, 30)) == 0.0
    assert box_iou(a, ZoomBox(0, 0, 10, 5)) == pytest.approx(0.5)
