"""Two versions of fetalhc on the same images: are the outputs identical, and how long does each
non-network stage take? Same run, the two versions interleaved image by image.

    python benchmarks/compare_versions.py OLD NEW [--n 40] [--time-n 30] [--json out.json]

``OLD`` and ``NEW`` are ``src`` folders (e.g. ``/work/main/src`` and ``src``) or commits (checked
out once with ``git worktree add --detach /tmp/fetalhc_<commit>``, as ``bench_vs_old.py`` does).
Each version runs in its own child process (``PYTHONPATH`` = its ``src``) with the default
``Pipeline``; the parent sends the first ``--n`` HC18 training images (pixel sizes from the
training CSV) to both, one image at a time, alternating who goes first, so that a change of load
on a shared machine hits both alike.

Per image each child returns every field of the result record at full precision (not the
table's 4-decimal rounding: ``MeasureResult`` fields, ellipse, crop HCs, status, flags), the
measurement's own fields (fit IoU, ellipse overhang, ...), and SHA-1 digests of the de-identified
pixels, the fused probability and the head mask; the parent reports, per field, the largest
absolute difference (numbers) or the number of images that differ (text, flags, arrays).

Timing: wall time of each stage function (its own time, with timed stages nested in it taken
out; the network, ``Segmenter.predict``, is a stage of its own), in ms per image over the first
``--time-n`` images, old vs new and their ratio. Exit status 1 when any output differs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_vs_old import Child, old_tree  # noqa: E402  (a script beside this one)

CHILD = r"""
import dataclasses, hashlib, importlib, json, sys, time
import numpy as np
from fetalhc.pipeline import Pipeline
from fetalhc.reader import load_image
from fetalhc.results import TABLE_COLUMNS, assemble

STAGES = [  # (name, module, attribute): the module's own name for the function it calls
    ("deid", "fetalhc.pipeline", "deidentify_pixels"),
    ("segment: crops", "fetalhc.segmentation", "extract_crop"),
    ("segment: fuse", "fetalhc.segmentation", "fuse_probabilities"),
    ("segment: binarize", "fetalhc.segmentation", "binarize"),
    ("segment: zoom pass", "fetalhc.segmentation", "zoom_pass"),
    ("segment: rest", "fetalhc.pipeline", "segment"),
    ("measure: edge confidence", "fetalhc.measurement", "boundary_confidence"),
    ("measure: crop HCs", "fetalhc.measurement", "crop_hcs_px"),
    ("measure: HC band", "fetalhc.measurement", "hc_band_px"),
    ("measure: mask contour", "fetalhc.measurement", "iso_contour_xy"),
    ("measure: probability outline", "fetalhc.measurement", "ellipse_from_probability"),
    ("measure: rest", "fetalhc.pipeline", "measure"),
    ("readout", "fetalhc.pipeline", "readout"),
    ("quality", "fetalhc.pipeline", "assess"),
]
own = {}
stack = []

def timed(name, fn):
    def wrapper(*a, **k):
        stack.append(0.0)
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            dt = time.perf_counter() - t0
            nested = stack.pop()
            own[name] = own.get(name, 0.0) + dt - nested
            if stack:
                stack[-1] += dt
    return wrapper

for name, mod, attr in STAGES:
    m = importlib.import_module(mod)
    if hasattr(m, attr):
        setattr(m, attr, timed(name, getattr(m, attr)))
pipe = Pipeline()
pipe.segmenter.predict = timed("network", pipe.segmenter.predict)
load, assemble_t = timed("load", load_image), timed("assemble", assemble)

def plain(v):
    if isinstance(v, float) and v != v:
        return "nan"
    if isinstance(v, (tuple, list)):
        return [plain(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v

def digest(a):
    return None if a is None else hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()

print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    path, size = line.split("\t")
    own.clear()
    out = pipe.run(load(path, pixel_size_mm=float(size)))
    res = assemble_t(out)
    fields = {c: plain(getattr(res, c)) for c in TABLE_COLUMNS}
    fields["crop_hc_px"] = plain(res.crop_hc_px)  # the table rounds it; here at full precision
    m = out.measurement
    for f in dataclasses.fields(m):
        if f.name != "head_mask":
            fields["measurement." + f.name] = plain(dataclasses.astuple(m.ellipse) if f.name == "ellipse" and m.ellipse
                                                    else getattr(m, f.name))
    v = out.verdict
    fields["verdict.status"], fields["verdict.flags"] = v.status, list(v.flags)
    for f in dataclasses.fields(v.thresholds):  # a frozenset's order varies from run to run
        t = getattr(v.thresholds, f.name)
        fields["verdict.thresholds." + f.name] = sorted(t) if isinstance(t, frozenset) else plain(t)
    arrays = {"deidentified pixels": digest(out.image.pixels), "probability": digest(out.segmentation.probability),
              "network mask": digest(out.segmentation.mask), "head mask": digest(m.head_mask)}
    print(json.dumps({"fields": fields, "arrays": arrays, "own_s": own}), flush=True)
"""


def src_dir(spec: str) -> Path:
    """A ``src`` folder, or the ``src`` of a detached worktree of commit ``spec``."""
    p = Path(spec)
    return p.resolve() if (p / "fetalhc").is_dir() else old_tree(spec) / "src"


def hc18_training_images(n: int) -> list[tuple[Path, float]]:
    """The first ``n`` HC18 training images (file name order) and their pixel sizes (mm)."""
    from fetalhc.hc18 import default_data_dir, read_cases

    d = default_data_dir()
    if d is None:
        sys.exit("HC18 not found: set FETALHC_DATA")
    cases = sorted(read_cases(d), key=lambda c: c.filename)[:n]
    return [(d / "training_set" / c.filename, c.pixel_size_mm) for c in cases]


def difference(a: Any, b: Any) -> float | None:
    """Largest absolute difference of two numbers or equal-length lists of numbers; None if they
    are not numbers (then they are compared for equality); inf if only one is a number."""
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return math.inf
        diffs = [difference(x, y) for x, y in zip(a, b, strict=True)]
        if any(d is None for d in diffs):
            return None
        return max((d for d in diffs if d is not None), default=0.0)
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool):
        return abs(float(a) - float(b))
    if isinstance(a, num) != isinstance(b, num) and None in (a, b):
        return math.inf
    return None


def compare(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    """Per field: largest absolute difference (numbers) and the number of images that differ."""
    fields: dict[str, dict[str, Any]] = {}
    for ro, rn in zip(old, new, strict=True):
        for k in sorted(set(ro["fields"]) | set(rn["fields"])):
            a, b = ro["fields"].get(k, "<missing>"), rn["fields"].get(k, "<missing>")
            f = fields.setdefault(k, {"max_abs_diff": 0.0, "images_differing": 0})
            d = difference(a, b)
            if d is not None:
                f["max_abs_diff"] = max(f["max_abs_diff"], d)
            if a != b:
                f["images_differing"] += 1
    arrays = {k: sum(ro["arrays"][k] != rn["arrays"].get(k) for ro, rn in zip(old, new, strict=True))
              for k in old[0]["arrays"]}
    identical = all(f["images_differing"] == 0 for f in fields.values()) and not any(arrays.values())
    return {"identical": identical, "fields": fields, "arrays_differing": arrays}


def timing(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and median ms per image of each stage, old and new, and the ratios new/old."""
    stages = list(dict.fromkeys([k for r in old + new for k in r["own_s"]]))
    rows: dict[str, dict[str, float]] = {}

    def per_image(rs: list[dict[str, Any]], keys: list[str]) -> list[float]:
        return [1000 * sum(r["own_s"].get(k, 0.0) for k in keys) for r in rs]

    rest = [k for k in stages if k != "network"]
    for name, keys in [*[(k, [k]) for k in stages], ("all but the network", rest)]:
        o, n = per_image(old, keys), per_image(new, keys)
        mo, mn = statistics.fmean(o), statistics.fmean(n)
        rows[name] = {"old_mean_ms": mo, "new_mean_ms": mn, "mean_ratio": mn / mo if mo else math.nan,
                      "old_median_ms": statistics.median(o), "new_median_ms": statistics.median(n),
                      "median_ratio": statistics.median(n) / statistics.median(o) if statistics.median(o) else math.nan}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", help="src folder or commit of the old version")
    ap.add_argument("new", help="src folder or commit of the new version")
    ap.add_argument("--n", type=int, default=40, help="images compared")
    ap.add_argument("--time-n", type=int, default=30, help="the first this many images are timed")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    images = hc18_training_images(args.n)
    kids = {"old": Child(src_dir(args.old), script=CHILD), "new": Child(src_dir(args.new), script=CHILD)}
    for k in kids.values():  # warm-up: model loaded, first-call costs paid
        k.send(f"{images[0][0]}\t{images[0][1]!r}")
    load_start = os.getloadavg()
    out: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    names = list(kids)
    for i, (path, size) in enumerate(images):
        for name in names[i % 2:] + names[:i % 2]:  # alternate who goes first
            out[name].append(kids[name].send(f"{path}\t{size!r}"))
    load_end = os.getloadavg()
    for k in kids.values():
        k.close()
    result = {"old": args.old, "new": args.new, "n_images": len(images), "loadavg_start": load_start,
              "loadavg_end": load_end, **compare(out["old"], out["new"]),
              "timed_images": min(args.time_n, len(images)),
              "timing": timing(out["old"][:args.time_n], out["new"][:args.time_n])}
    diffs = {k: v for k, v in result["fields"].items() if v["images_differing"] or v["max_abs_diff"]}
    print(f"{len(images)} images, identical: {result['identical']}; fields that differ: {diffs or 'none'}; "
          f"arrays that differ: {result['arrays_differing']}")
    print(f"load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end; "
          f"ms per image (own time of each stage, first {result['timed_images']} images):")
    print(f"  {'stage':32s} {'old mean':>9s} {'new mean':>9s} {'new/old':>8s} {'old med':>8s} {'new med':>8s}")
    for name, r in result["timing"].items():
        print(f"  {name:32s} {r['old_mean_ms']:9.2f} {r['new_mean_ms']:9.2f} {r['mean_ratio']:8.2f} "
              f"{r['old_median_ms']:8.2f} {r['new_median_ms']:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(0 if result["identical"] else 1)


if __name__ == "__main__":
    main()
