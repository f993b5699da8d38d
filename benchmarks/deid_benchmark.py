"""Speed of ``deidentify_pixels`` and its safety for the head, per image.

    nice -n 19 python benchmarks/deid_benchmark.py [--n 4] [--repeat 5] [--hc18 200] [--json out.json]

* speed: median milliseconds per image on the synthetic 800x540 screens of tests/deid_corpus.py,
  for the fast path and OCR, with and without ultrasound regions;
* corpus: fraction of planted identifier tokens OCR reads before and after (fast path);
* HC18 (when present): on ``--hc18`` training images, how many pixels the fast path changes and
  how many of those lie inside the reference head ellipse (grown by 5 px) -- must be 0; with
  ``--hc18-ocr-step N`` the same for OCR mode on every N-th of them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from deid_corpus import check_boxes, make_screen, planted_tokens, read_tokens, readable  # noqa: E402
from fetalhc.deid import deidentify_pixels, tesseract_available  # noqa: E402
from fetalhc.image import UltrasoundImage  # noqa: E402


def timed_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def speed(n: int, repeat: int) -> dict[str, float]:
    screens = [make_screen(i) for i in range(n)]
    modes = {"fast": False, "fast+regions": False}
    if tesseract_available():
        modes.update({"ocr": True, "ocr+regions": True})
    out = {}
    for mode, ocr in modes.items():
        per = []
        for s in screens:
            regions = (s.sector_box,) if "regions" in mode else ()
            img = UltrasoundImage(s.pixels, regions=regions)
            per.append(timed_ms(lambda img=img, ocr=ocr: deidentify_pixels(img, ocr=ocr),
                                repeat if not ocr else max(1, repeat // 2)))
        out[f"{mode}_ms_median"] = round(statistics.median(per), 2)
    return out


def corpus(n: int) -> dict[str, float]:
    if not tesseract_available():
        return {}
    total = before = after = 0
    for i in range(n):
        s = make_screen(i)
        planted, boxes = planted_tokens(s), check_boxes(s)
        total += len(planted)
        before += len(readable(planted, read_tokens(s.pixels, boxes)))
        clean = deidentify_pixels(UltrasoundImage(s.pixels)).pixels
        after += len(readable(planted, read_tokens(clean, boxes)))
    return {"planted_tokens": total, "readable_before": round(before / total, 3),
            "readable_after": round(after / total, 3)}


def hc18(limit: int, ocr: bool = False, step: int = 1) -> dict[str, float]:
    from fetalhc.hc18 import default_data_dir, load_case, read_cases

    d = default_data_dir()
    if d is None or limit <= 0 or (ocr and not tesseract_available()):
        return {}
    cases = read_cases(d)[:limit][::step]
    changed_images = inside = changed_px = 0
    times = []
    for case in cases:
        img, mask, _ = load_case(d, case)
        t = time.perf_counter()
        out = deidentify_pixels(UltrasoundImage(img), ocr=ocr).pixels
        times.append((time.perf_counter() - t) * 1000)
        diff = out != img
        if diff.any():
            changed_images += 1
            changed_px += int(diff.sum())
            head = cv2.dilate(mask.astype(np.uint8), np.ones((11, 11), np.uint8)).astype(bool)
            inside += int((diff & head).sum())
    key = "hc18_ocr" if ocr else "hc18"
    return {f"{key}_images": len(cases), f"{key}_images_changed": changed_images, f"{key}_pixels_changed": changed_px,
            f"{key}_changed_pixels_inside_head": inside, f"{key}_ms_median": round(statistics.median(times), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4, help="synthetic screens")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--hc18", type=int, default=200, help="HC18 training images to check (0: skip)")
    ap.add_argument("--hc18-ocr-step", type=int, default=0,
                    help="also check OCR mode on every N-th of those images (0: skip; OCR takes ~2 s per image)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    res = {**speed(a.n, a.repeat), **corpus(a.n), **hc18(a.hc18)}
    if a.hc18_ocr_step:
        res.update(hc18(a.hc18, ocr=True, step=a.hc18_ocr_step))
    for k, v in res.items():
        print(f"{k:36s} {v}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
