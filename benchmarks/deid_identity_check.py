"""Check that two versions of fetalhc de-identify to byte-identical pixels.

Run ``hash`` once per version (the version is whatever ``fetalhc`` the PYTHONPATH imports), then
``compare``; the old version can come from ``git archive``::

    git archive 0aede5f src tests | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src:/tmp/old/tests python benchmarks/deid_identity_check.py hash --out /tmp/old.json
    PYTHONPATH=src:tests python benchmarks/deid_identity_check.py hash --out /tmp/new.json
    python benchmarks/deid_identity_check.py compare /tmp/old.json /tmp/new.json

``hash`` records a SHA-256 of the de-identified pixels (and whether de-identification changed
them) for: HC18 training images (fast path on ``--hc18`` of them, OCR on every ``--ocr-step``-th),
the synthetic screens of tests/deid_corpus.py (fast path and OCR, with and without regions), and
``deidentify_file`` to PNG and to DICOM (decoded pixels; the header's new UIDs differ by design)
on pydicom's ultrasound files and a synthetic DICOM of each screen. Nothing is written but the
JSON of hashes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

PYDICOM_FILES = ("examples_palette.dcm", "examples_rgb_color.dcm", "examples_ybr_color.dcm", "US1_UNCR.dcm",
                 "examples_jpeg2k.dcm")


def digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha256(f"{a.dtype}{a.shape}".encode() + a.tobytes()).hexdigest()


def load(path: Path) -> Any:
    try:
        from fetalhc.reader import load_image  # the new layout
    except ImportError:
        from fetalhc.image import load_image  # type: ignore[attr-defined,no-redef]  # the old one
    return load_image(path)


def hash_all(hc18: Path | None, n_hc18: int, ocr_step: int, ocr: bool) -> dict[str, Any]:
    import pydicom
    from pydicom.data import get_testdata_file

    import fetalhc
    from deid_corpus import make_dicom, make_screen
    from fetalhc.deid import deidentify_file, deidentify_pixels, tesseract_available
    from fetalhc.image import UltrasoundImage

    use_ocr = ocr and tesseract_available()
    out: dict[str, Any] = {"fetalhc": str(Path(fetalhc.__file__).resolve().parent), "ocr": use_ocr, "items": {}}
    items = out["items"]

    def record(key: str, before: np.ndarray, after: np.ndarray) -> None:
        items[key] = {"sha256": digest(after), "changed": bool(before.shape != after.shape or (before != after).any())}

    if hc18 is not None:
        files = sorted(p for p in (hc18 / "training_set").glob("*HC.png"))[:n_hc18]
        for k, p in enumerate(files):
            img = load(p)
            record(f"hc18/{p.name}/fast", img.pixels, deidentify_pixels(img).pixels)
            if use_ocr and ocr_step and k % ocr_step == 0:
                record(f"hc18/{p.name}/ocr", img.pixels, deidentify_pixels(img, ocr=True).pixels)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        sources: list[Path] = []
        for i in range(4):
            s = make_screen(i)
            for regions in ((), (s.sector_box,)):
                img = UltrasoundImage(s.pixels, regions=regions)
                tag = f"screen{i}/regions{len(regions)}"
                record(f"{tag}/fast", s.pixels, deidentify_pixels(img).pixels)
                if use_ocr:
                    record(f"{tag}/ocr", s.pixels, deidentify_pixels(img, ocr=True).pixels)
            sources.append(make_dicom(t / f"screen{i}.dcm", s))
        for name in PYDICOM_FILES:
            p = get_testdata_file(name, download=False)
            if p is not None:
                sources.append(Path(p))
        for src in sources:
            before = load(src).pixels
            png = deidentify_file(src, t / "out" / f"{src.stem}.png")
            record(f"file/{src.name}/png", before, load(png).pixels)
            dcm = deidentify_file(src, t / "out" / f"{src.stem}.dcm")
            arr = pydicom.dcmread(dcm).pixel_array
            items[f"file/{src.name}/dcm"] = {"sha256": digest(arr), "changed": None}
    return out


def compare(old: dict[str, Any], new: dict[str, Any]) -> int:
    a, b = old["items"], new["items"]
    same = [k for k in a if k in b and a[k]["sha256"] == b[k]["sha256"]]
    differ = [k for k in a if k in b and a[k]["sha256"] != b[k]["sha256"]]
    missing = sorted(set(a) ^ set(b))
    changed = sum(1 for k in same if a[k]["changed"])
    print(f"old: {old['fetalhc']} (ocr {old['ocr']})\nnew: {new['fetalhc']} (ocr {new['ocr']})")
    for prefix in ("hc18/", "screen", "file/"):
        keys = [k for k in a if k.startswith(prefix)]
        n_same = sum(1 for k in keys if k in same)
        n_changed = sum(1 for k in keys if k in same and a[k]["changed"])
        print(f"{prefix:8s} {n_same}/{len(keys)} identical ({n_changed} of them changed by de-identification)")
    print(f"total: {len(same)} identical, {len(differ)} different, {len(missing)} in one run only; "
          f"{changed} identical outputs differ from their input")
    for k in differ + missing:
        print("  DIFFERENT" if k in differ else "  ONLY ONE", k)
    return 0 if not differ and not missing else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hash")
    h.add_argument("--out", type=Path, required=True)
    h.add_argument("--hc18", type=int, default=854, help="number of HC18 training images (sorted by name)")
    h.add_argument("--ocr-step", type=int, default=40, help="OCR mode on every N-th HC18 image (0: none)")
    h.add_argument("--no-ocr", action="store_true")
    c = sub.add_parser("compare")
    c.add_argument("old", type=Path)
    c.add_argument("new", type=Path)
    args = ap.parse_args()
    if args.cmd == "compare":
        return compare(json.loads(args.old.read_text()), json.loads(args.new.read_text()))
    from fetalhc.hc18 import default_data_dir

    data = default_data_dir()
    if data is None:
        print("HC18 not found: only the synthetic corpus and pydicom's files are checked", file=sys.stderr)
    res = hash_all(data, args.hc18, args.ocr_step, not args.no_ocr)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"{len(res['items'])} outputs hashed with {res['fetalhc']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
