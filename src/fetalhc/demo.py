"""``fetalhc demo``: measure a synthetic skull phantom (always) and one real HC18 image
(when the data set is present) with the shipped model; write the results and overlays."""

from __future__ import annotations

import sys
from pathlib import Path

from fetalhc.ellipse import Ellipse
from fetalhc.io_utils import write_png
from fetalhc.phantom import make_phantom


def run_demo(out_dir: Path = Path("demo_out")) -> int:
    """Returns a process exit status (0 when every demo image was measured)."""
    from fetalhc.batch import BatchOptions, run_batch
    from fetalhc.hc18 import DEFAULT_SPLIT, default_data_dir, load_split, read_cases
    from fetalhc.pipeline import PipelineConfig

    out_dir.mkdir(parents=True, exist_ok=True)
    truth = Ellipse(400.0, 270.0, 250.0, 195.0, 15.0)
    img, _ = make_phantom(540, 800, truth, seed=7)
    phantom = write_png(out_dir / "phantom.png", img)
    px = 0.15
    print(f"phantom: outer skull ellipse HC = {truth.perimeter_px * px:.1f} mm (pixel size {px} mm)")
    rows = run_batch([phantom], PipelineConfig(), BatchOptions(pixel_size_mm=px, overlay_dir=out_dir,
                                                                mask_dir=out_dir, out=out_dir / "phantom.csv"))
    for r in rows:
        print(f"  measured: hc_mm={r['hc_mm']} patent_pixel_count_hc_mm={r['patent_pixel_count_hc_mm']} "
              f"status={r['status']}")
    d = default_data_dir()
    if d is None:
        print("HC18 not found (set FETALHC_DATA): real-image demo skipped")
    else:
        name = load_split(DEFAULT_SPLIT)["val"][0]
        case = {c.filename: c for c in read_cases(d)}[name]
        rows += run_batch([d / "training_set" / name], PipelineConfig(),
                          BatchOptions(pixel_size_mm=case.pixel_size_mm, overlay_dir=out_dir, mask_dir=out_dir,
                                       out=out_dir / "hc18.csv"))
        r = rows[-1]
        print(f"HC18 {name} (validation split): reference HC {case.hc_mm:.1f} mm; "
              f"measured hc_mm={r['hc_mm']} status={r['status']}")
    print(f"results, masks and overlays in {out_dir}/")
    return 1 if any(r.get("error") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(run_demo())
