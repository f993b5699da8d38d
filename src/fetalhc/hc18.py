"""Reading the HC18 data set (van den Heuvel et al., PLoS ONE 2018, CC BY 4.0).

HC18 labels are thin ellipse outlines. The reference region is the filled ellipse fitted
to the outline pixels (hole filling fails where an outline runs off the image edge), which
is also the region whose Ramanujan perimeter is the CSV's head circumference.
"""

from __future__ import annotations

import csv
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from fetalhc.ellipse import Ellipse, fit_ellipse_points

#: the committed patient-grouped split (seed 0, 15 % of patients for validation)
DEFAULT_SPLIT = Path(__file__).parent / "splits" / "hc18_seed0.json"


def default_data_dir() -> Path | None:
    """``$FETALHC_DATA`` or ``../shared/data/hc18`` beside the repository, if it exists."""
    env = os.environ.get("FETALHC_DATA")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [p / "shared" / "data" / "hc18" for p in here.parents]
    candidates.append(Path.cwd().parent / "shared" / "data" / "hc18")
    for c in candidates:
        if (c / "training_set_pixel_size_and_HC.csv").is_file():
            return c
    return None


@dataclass(frozen=True)
class HC18Case:
    """One labelled HC18 image: file name, pixel size (mm) and reference HC (mm)."""

    filename: str
    pixel_size_mm: float
    hc_mm: float

    @property
    def patient(self) -> str:
        """Patient number: the part of the file name before the first underscore."""
        return self.filename.split("_", 1)[0]


def read_cases(data_dir: Path) -> list[HC18Case]:
    """Rows of ``training_set_pixel_size_and_HC.csv``."""
    path = data_dir / "training_set_pixel_size_and_HC.csv"
    with path.open(newline="") as f:
        reader = csv.reader(f)
        next(reader)
        return [HC18Case(r[0], float(r[1]), float(r[2])) for r in reader if r]


def annotation_ellipse(annotation: NDArray[np.uint8]) -> Ellipse:
    """Fit the reference ellipse to the outline pixels of an HC18 annotation (pixels)."""
    ys, xs = np.nonzero(annotation > 127)
    pts = np.stack([xs, ys], axis=1).astype(np.float32)
    return fit_ellipse_points(pts)


def reference_mask(annotation: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], Ellipse]:
    """Filled reference ellipse (0/1, the annotation's size) and the ellipse itself."""
    ell = annotation_ellipse(annotation)
    return ell.rasterize(annotation.shape[:2]), ell


def load_case(data_dir: Path, case: HC18Case) -> tuple[NDArray[np.uint8], NDArray[np.uint8], Ellipse]:
    """Image (grey uint8), filled reference mask (0/1) and reference ellipse of one case."""
    img = cv2.imread(str(data_dir / "training_set" / case.filename), cv2.IMREAD_GRAYSCALE)
    ann_name = case.filename.replace(".png", "_Annotation.png")
    ann = cv2.imread(str(data_dir / "training_set" / ann_name), cv2.IMREAD_GRAYSCALE)
    if img is None or ann is None:
        raise FileNotFoundError(f"{data_dir / 'training_set' / case.filename}: image or annotation unreadable")
    mask, ell = reference_mask(ann)
    return img, mask, ell


def make_split(cases: list[HC18Case], val_fraction: float = 0.15, seed: int = 0) -> dict[str, list[str]]:
    """Patient-grouped split: every image of one patient lands on the same side."""
    patients = sorted({c.patient for c in cases})
    rng = random.Random(seed)
    rng.shuffle(patients)
    n_val = int(round(val_fraction * len(patients)))
    val_p = set(patients[:n_val])
    return {
        "seed": seed,  # type: ignore[dict-item]
        "val_fraction": val_fraction,  # type: ignore[dict-item]
        "train": sorted(c.filename for c in cases if c.patient not in val_p),
        "val": sorted(c.filename for c in cases if c.patient in val_p),
    }


def load_split(path: Path) -> dict[str, list[str]]:
    """Read a split file written by :func:`make_split` (JSON)."""
    with path.open() as f:
        data: dict[str, list[str]] = json.load(f)
    return data
