"""HC18 training samples: the same corner crops the pipeline feeds the network, augmented
with albumentations (scale, rotation, flips, contrast, gamma, noise)."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fetalhc.crops import DEFAULT_Q, CropBox, corner_boxes, extract_crop
from fetalhc.hc18 import HC18Case, load_case

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


@dataclass
class Sample:
    """One decoded case held in memory: grey image (uint8) and filled reference mask (0/1)."""

    filename: str
    image: NDArray[np.uint8]
    mask: NDArray[np.uint8]
    pixel_size_mm: float
    hc_mm: float


def load_samples(data_dir: Path, cases: list[HC18Case]) -> list[Sample]:
    """Decode ``cases`` into memory (about 0.45 MB per 800x540 case)."""
    out = []
    for c in cases:
        img, mask, _ = load_case(data_dir, c)
        out.append(Sample(c.filename, img, mask, c.pixel_size_mm, c.hc_mm))
    return out


def build_augment():  # type: ignore[no-untyped-def]
    import albumentations as A
    import cv2

    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(
                scale=(0.85, 1.15),
                rotate=(-25, 25),
                translate_percent=(-0.06, 0.06),
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_LINEAR,
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=0,
                p=0.8,
            ),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.25, p=0.6),
            A.RandomGamma(gamma_limit=(70, 150), p=0.4),
            A.GaussNoise(std_range=(0.01, 0.06), p=0.3),
            A.GaussianBlur(blur_limit=(3, 5), p=0.15),
        ]
    )


def random_box(width_px: int, height_px: int, rng: random.Random, q: float = DEFAULT_Q,
               p_full: float = 0.2) -> CropBox:
    """A corner crop (q jittered by +-0.05) or, with probability ``p_full``, the whole image."""
    if rng.random() < p_full:
        return CropBox("full", 0, 0, width_px, height_px)
    qq = min(1.0, max(0.5, q + rng.uniform(-0.05, 0.05)))
    return rng.choice(corner_boxes(width_px, height_px, qq))


def zoom_training_box(mask: NDArray[np.generic], size_hw: tuple[int, int], rng: random.Random,
                      margin: tuple[float, float] = (0.05, 0.25), jitter: float = 0.04) -> CropBox:
    """A zoom-pass crop for training: the head's bounding box grown by a random margin (fraction
    of its size on each side), its centre jittered by up to ``jitter`` x its size, widened to the
    network's aspect ``size_hw`` and at least the network's size (one network pixel >= one image
    pixel, as at inference). The box may overhang the image; :func:`make_pair` pads with black."""
    m = np.asarray(mask) > 0
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    h, w = m.shape
    if rows.size == 0:
        return CropBox("full", 0, 0, w, h)
    x0, x1, y0, y1 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1
    g = rng.uniform(*margin)
    bw, bh = (x1 - x0) * (1 + 2 * g), (y1 - y0) * (1 + 2 * g)
    nh, nw = size_hw
    scale = max(bw / nw, bh / nh, 1.0)
    zw, zh = int(round(scale * nw)), int(round(scale * nh))
    cx = (x0 + x1) / 2 + rng.uniform(-jitter, jitter) * (x1 - x0)
    cy = (y0 + y1) / 2 + rng.uniform(-jitter, jitter) * (y1 - y0)
    bx0, by0 = int(round(cx - zw / 2)), int(round(cy - zh / 2))
    if zw <= w:
        bx0 = min(max(bx0, 0), w - zw)
    if zh <= h:
        by0 = min(max(by0, 0), h - zh)
    return CropBox("zoom", bx0, by0, bx0 + zw, by0 + zh)


def _padded(image: NDArray[np.generic], box: CropBox) -> tuple[NDArray[np.generic], CropBox]:
    """``image`` padded with zeros so that ``box`` lies inside it, and the box in padded pixels."""
    h, w = image.shape[:2]
    left, top = max(0, -box.x0), max(0, -box.y0)
    right, bottom = max(0, box.x1 - w), max(0, box.y1 - h)
    if not (left or top or right or bottom):
        return image, box
    padded = np.pad(image, ((top, bottom), (left, right)))
    return padded, CropBox(box.name, box.x0 + left, box.y0 + top, box.x1 + left, box.y1 + top, box.flip)


def make_pair(
    sample: Sample,
    box: CropBox,
    size_hw: tuple[int, int],
    augment=None,  # type: ignore[no-untyped-def]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Network input (H, W) in [0, 1] and soft target (H, W) in [0, 1] for one crop (a box that
    overhangs the image sees black there)."""
    image, b = _padded(sample.image, box)
    mask_f, _ = _padded(sample.mask.astype(np.float32), box)
    img = extract_crop(image, b, size_hw)
    mask = extract_crop(mask_f, b, size_hw)
    if augment is not None:
        r = augment(image=img, mask=mask)
        img, mask = r["image"], r["mask"]
    return img.astype(np.float32) / 255.0, np.clip(mask, 0, 1).astype(np.float32)
