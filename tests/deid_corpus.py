"""A synthetic de-identification corpus: ultrasound screens with planted (invented) identifiers.

Each screen is a speckled fan-shaped sector with a bright elliptical skull ring in the middle and
identifiers burned in with ``cv2.putText`` in several Hershey fonts, sizes, positions and
contrasts. :func:`make_dicom` wraps a screen in a DICOM file whose header carries the same
identifiers. :func:`read_tokens` is the OCR check used before and after de-identification.
All names, IDs, dates and hospitals are invented.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from fetalhc.ellipse import Ellipse

Box = tuple[int, int, int, int]

FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_COMPLEX_SMALL,
)

#: Invented identifiers: (kind, text). Tokens of 4+ characters are what the check looks for.
IDENTITIES = (
    {"name": "MARGARETHE QUINTERO", "id": "PID 48213377", "dob": "DOB 1987-03-14",
     "hospital": "ST BRIGIDS MATERNITY", "physician": "DR OKONKWO", "accession": "ACC 99017731"},
    {"name": "Johanna Vasquez-Lindqvist", "id": "MRN 20771946", "dob": "Born 22/11/1991",
     "hospital": "Riverside Womens Clinic", "physician": "Dr Halvorsen", "accession": "ACC 55128804"},
    {"name": "PRIYANKA DELACROIX", "id": "ID 73300815", "dob": "DOB 05.07.1984",
     "hospital": "NORTHFIELD GENERAL", "physician": "DR ABERNATHY", "accession": "ACC 31460092"},
    {"name": "Eleonora Fitzgerald", "id": "Patient 66041238", "dob": "DOB 1995-12-30",
     "hospital": "Lakeshore Obstetrics", "physician": "Dr Mwangi", "accession": "ACC 78823416"},
)


@dataclass(frozen=True)
class Screen:
    """One synthetic screen: pixels, the head ellipse, planted texts and their boxes (pixels)."""

    pixels: NDArray[np.uint8]
    head: Ellipse
    texts: tuple[str, ...]
    boxes: tuple[Box, ...]
    sector_box: Box
    identity: dict[str, str]

    @property
    def head_box(self) -> Box:
        """Bounding box (x0, y0, x1, y1) of the head ellipse, plus 3 px, pixels."""
        return head_box(self.head, self.pixels.shape)


def head_box(e: Ellipse, shape_hw: tuple[int, ...]) -> Box:
    """Bounding box (x0, y0, x1, y1) of ellipse ``e`` plus 3 px, clipped to the image, pixels."""
    th = math.radians(e.angle_deg)
    a, b = e.semi_axis_a_px, e.semi_axis_b_px
    hx = math.sqrt((a * math.cos(th)) ** 2 + (b * math.sin(th)) ** 2)
    hy = math.sqrt((a * math.sin(th)) ** 2 + (b * math.cos(th)) ** 2)
    h, w = shape_hw[:2]
    return (max(0, int(e.center_x_px - hx) - 3), max(0, int(e.center_y_px - hy) - 3),
            min(w, int(e.center_x_px + hx) + 4), min(h, int(e.center_y_px + hy) + 4))


def sector_image(height: int = 540, width: int = 800, seed: int = 0,
                 head: Ellipse | None = None) -> tuple[NDArray[np.uint8], Ellipse, Box]:
    """A speckled fan-shaped sector on black with a bright skull ring; returns (pixels, head, sector box)."""
    rng = np.random.default_rng(seed)
    apex = (width / 2, 0.09 * height)
    radius = 0.86 * height
    half = math.radians(38)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r = np.hypot(xx - apex[0], yy - apex[1])
    ang = np.arctan2(xx - apex[0], yy - apex[1])
    fan = (r <= radius) & (r >= 0.03 * height) & (np.abs(ang) <= half)
    if head is None:
        head = Ellipse(width / 2 + rng.uniform(-15, 15), 0.55 * height + rng.uniform(-10, 10),
                       0.19 * width, 0.145 * width, float(rng.uniform(-25, 25)))
    t = max(4.0, 0.07 * head.semi_axis_b_px)
    outer = head.rasterize((height, width)).astype(np.float32)
    inner = Ellipse(head.center_x_px, head.center_y_px, head.semi_axis_a_px - t, head.semi_axis_b_px - t,
                    head.angle_deg).rasterize((height, width)).astype(np.float32)
    tissue = 65.0 + 25 * cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 6)
    img = tissue * (1 - outer) + 210.0 * (outer - inner) + 40.0 * inner
    img = cv2.GaussianBlur(img, (0, 0), 1.0)
    img *= rng.rayleigh(1.0, img.shape).astype(np.float32) / math.sqrt(math.pi / 2)
    img *= np.clip((radius - r) / 25.0, 0, 1) * 0.6 + 0.4  # mild depth fall-off
    img[~fan] = 0
    ys, xs = np.nonzero(fan)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return np.clip(img, 0, 255).astype(np.uint8), head, box


def _slots(height: int, width: int) -> list[tuple[str, int, int]]:
    """Text anchor slots (kind, x, baseline y): top/bottom bands, corners, side margins."""
    return [
        ("top-left", 8, 22), ("top-right", width - 8, 22), ("top-centre", width // 2, 18),
        ("top-left", 8, 46), ("bottom-left", 8, height - 12), ("bottom-right", width - 8, height - 12),
        ("left-margin", 6, int(height * 0.45)), ("right-margin", width - 6, int(height * 0.62)),
        ("bottom-left", 8, height - 38),
    ]


def make_screen(index: int, height: int = 540, width: int = 800) -> Screen:
    """Screen number ``index``: identity, fonts, sizes, contrasts and positions vary with it."""
    rng = np.random.default_rng(100 + index)
    ident = IDENTITIES[index % len(IDENTITIES)]
    px, head, sector = sector_image(height, width, seed=index)
    texts = [ident["name"], ident["id"], ident["dob"], ident["hospital"], ident["physician"], ident["accession"]]
    slots = _slots(height, width)
    order = rng.permutation(len(slots))
    hbox = head_box(head, px.shape)
    boxes: list[Box] = []
    placed: list[str] = []
    for k, text in enumerate(texts):
        font = FONTS[(index + k) % len(FONTS)]
        scale = float(rng.choice([0.45, 0.55, 0.7])) if font != cv2.FONT_HERSHEY_PLAIN else 1.1
        if font == cv2.FONT_HERSHEY_COMPLEX_SMALL:
            scale = 0.8
        thick = 1 if scale < 0.6 else int(rng.choice([1, 2]))
        level = int(rng.choice([255, 220, 170, 130]))
        for j in range(len(slots)):
            kind, ax, by = slots[order[(k + j) % len(slots)]]
            (tw, th), base = cv2.getTextSize(text, font, scale, thick)
            if kind.endswith("right") or kind == "right-margin":
                x = ax - tw
            elif kind == "top-centre":
                x = ax - tw // 2
            else:
                x = ax
            box = (x - 2, by - th - 2, x + tw + 2, by + base + 2)
            if box[0] < 0 or box[2] > width or box[1] < 0 or box[3] > height:
                continue
            if any(_overlap(box, b) for b in boxes) or _overlap(box, _grow(hbox, 6)):
                continue
            # keep text on black: no sector pixels under the box
            if px[box[1]:box[3], box[0]:box[2]].max() > 0:
                continue
            cv2.putText(px, text, (x, by), font, scale, level, thick, cv2.LINE_AA)
            boxes.append(box)
            placed.append(text)
            break
    return Screen(px, head, tuple(placed), tuple(boxes), sector, ident)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _grow(b: Box, m: int) -> Box:
    return (b[0] - m, b[1] - m, b[2] + m, b[3] + m)


# --------------------------------------------------------------------------- OCR check


def tokens_of(text: str, min_len: int = 4) -> list[str]:
    """Upper-case alphanumeric tokens of at least ``min_len`` characters."""
    return [t for t in re.split(r"[^0-9A-Za-z]+", text.upper()) if len(t) >= min_len]


def read_tokens(pixels: NDArray[np.uint8], boxes: list[Box], scale: int = 3) -> list[str]:
    """OCR tokens read in ``boxes`` (x0, y0, x1, y1): 3x upscaled, both polarities, ``--psm 6``
    (the boxes are stacked into one page per polarity, one Tesseract call each)."""
    from fetalhc.deid import ocr_words

    h, w = pixels.shape
    bands = [(max(0, b[0]), max(0, b[1]), min(w, b[2]), min(h, b[3])) for b in boxes]
    return [t for text, _conf, _b in ocr_words(pixels, bands, scale=scale) for t in tokens_of(text, 1)]


def check_boxes(screen: Screen, pad_x: int = 40, pad_y: int = 10) -> list[Box]:
    """Where to look for each planted text: its box grown by ``pad_x``, ``pad_y`` pixels
    (de-identification blanks text in place, it never moves it)."""
    return [(b[0] - pad_x, b[1] - pad_y, b[2] + pad_x, b[3] + pad_y) for b in screen.boxes]


def readable(planted: list[str], read: list[str], ratio: float = 0.8) -> list[str]:
    """Planted tokens (4+ characters) that some read token matches with difflib ratio > ``ratio``."""
    hits = []
    for p in planted:
        for r in read:
            if difflib.SequenceMatcher(None, p, r).ratio() > ratio:
                hits.append(p)
                break
    return hits


def planted_tokens(screen: Screen) -> list[str]:
    return [t for text in screen.texts for t in tokens_of(text)]


# --------------------------------------------------------------------------- DICOM


def make_dicom(path: Path, screen: Screen, pixel_size_mm: float = 0.2) -> Path:
    """Write ``screen`` as an uncompressed ultrasound DICOM whose header carries its identity."""
    from dicom_builder import us_region, write_us_dicom

    ident = screen.identity
    x0, y0, x1, y1 = screen.sector_box
    delta_cm = pixel_size_mm / 10
    return write_us_dicom(
        path, np.ascontiguousarray(screen.pixels),
        PatientName=ident["name"].replace(" ", "^"), PatientID=ident["id"].split()[-1],
        PatientBirthDate="19870314", PatientSex="F", PatientAddress="12 Invented Lane, Nowhere",
        InstitutionName=ident["hospital"], InstitutionAddress="1 Fictional Road",
        ReferringPhysicianName=ident["physician"].replace(" ", "^"), PerformingPhysicianName="Dr^Fakename",
        OperatorsName="Sonographer^Imaginary", AccessionNumber=ident["accession"].split()[-1],
        StudyDate="20240131", StudyTime="101530", StudyID="S12345", StationName="USROOM3",
        DeviceSerialNumber="SN-0042", BurnedInAnnotation="YES",
        SequenceOfUltrasoundRegions=[us_region((x0, y0, x1 - 1, y1 - 1), (delta_cm, delta_cm))],
    )


def add_text_on_black(screen: Screen, text: str, level: int, font: int = cv2.FONT_HERSHEY_SIMPLEX,
                      scale: float = 0.6) -> Screen:
    """``screen`` with ``text`` (grey ``level``) added where the box is black and free, scanning rows."""
    px = screen.pixels.copy()
    h, w = px.shape
    (tw, th), base = cv2.getTextSize(text, font, scale, 1)
    for by in range(th + 4, h - base - 2, 6):
        for x in range(4, w - tw - 4, 8):
            box = (x - 2, by - th - 2, x + tw + 2, by + base + 2)
            if px[box[1]:box[3], box[0]:box[2]].max() == 0 and not any(_overlap(box, _grow(b, 4))
                                                                        for b in screen.boxes):
                cv2.putText(px, text, (x, by), font, scale, level, 1, cv2.LINE_AA)
                return Screen(px, screen.head, (*screen.texts, text), (*screen.boxes, box), screen.sector_box,
                              screen.identity)
    raise ValueError("no free black area for the text")


def head_pixels(px: NDArray[np.uint8], s: Screen) -> NDArray[np.uint8]:
    """The pixels of ``s``'s head bounding box in ``px`` (they must never change)."""
    x0, y0, x1, y1 = s.head_box
    return px[y0:y1, x0:x1]


def text_block_on_tissue(bitmap: bool, pitch_px: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """A sector image whose top-left corner holds five text lines ``pitch_px`` apart touching the
    image's left edge, with speckled tissue 3 px below the last line (pydicom's
    examples_rgb_color.dcm has such a block). ``bitmap``: one grey level, as many ultrasound
    screens draw text; else anti-aliased. Returns the pixels and the first tissue row."""
    px, _, _ = sector_image(seed=seed)
    rng = np.random.default_rng(seed)
    tissue_y = 5 * pitch_px + 4
    px[tissue_y:tissue_y + 20, :] = np.clip(60 + 25 * rng.standard_normal((20, px.shape[1])), 0, 255)
    px[:tissue_y, :260] = 0
    text = np.zeros_like(px)
    for i, line in enumerate(["SMITH JOHN", "ID 4471234", "DOB 19870314", "ST MARY HOSP", "IM#2"]):
        if bitmap:
            cv2.putText(text, line, (1, pitch_px * (i + 1)), cv2.FONT_HERSHEY_PLAIN, 0.75, 255, 1, cv2.LINE_8)
        else:
            cv2.putText(text, line, (1, pitch_px * (i + 1) - 1), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 255, 1, cv2.LINE_AA)
    px[:tissue_y, :260] = (text[:tissue_y, :260] > 60) * 227 if bitmap else text[:tissue_y, :260] * (227 / 255)
    return px, tissue_y


def header_secrets(s: Screen) -> list[bytes]:
    """Identifying strings planted in the header of make_dicom (name parts, IDs, dates, places)."""
    words = [t for key in ("name", "id", "hospital", "physician", "accession") for t in s.identity[key].split()
             if len(t) >= 4 and t.upper() not in ("PATIENT",)]
    return [w.encode() for w in words] + [b"19870314", b"20240131", b"Invented Lane", b"Fictional", b"Fakename",
                                          b"Imaginary", b"USROOM3", b"SN-0042", b"S12345"]
