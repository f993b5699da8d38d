"""Archive-scale benchmark for ``fetalhc measure --workers N`` (Dask) and ``--resume``.

    nice -n 10 python benchmarks/archive_benchmark.py [--n 10000] [--throughput-n 200] \\
        [--json benchmarks/archive_results.json]

1. Makes ``--n`` input files in a temporary folder (500 per subfolder): symlinks to the HC18 test
   images (about 90 % of the good files) and to synthetic 540x800 phantoms (about 10 %), plus
   ``--broken`` (5 %) broken files: truncated PNGs, text files named .png and empty files; and a
   pixel-size CSV for them (HC18's sizes for HC18 images, 0.2 mm for phantoms).
2. Throughput: images/s of the serial path (one process, ONNX Runtime 2 threads) and of Dask
   with 1 and 2 workers (1 thread each), measuring the same ``--throughput-n`` HC18 images with
   the model already loaded on every worker (steady state; cluster start-up excluded), and each
   worker's peak resident memory (VmHWM).
3. Kill and resume: runs ``fetalhc measure ROOT --workers 2 --out results.csv`` in its own process
   group, SIGKILLs the whole group once half the rows are committed, then runs it again with
   ``--resume`` to the end, sampling the peak resident memory of the driver and every worker.
4. Checks the final CSV: every good file exactly once without error, every broken file exactly
   once with its error, nothing else; and the first 20 rows against the serial path.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import cv2
import psutil

PER_FOLDER = 500


def make_archive(root: Path, n: int, broken_frac: float) -> tuple[dict[str, str], Path]:
    """Create ``n`` files below ``root``; returns {file path: "good"|"broken"} and the pixel-size CSV."""
    from fetalhc.hc18 import default_data_dir
    from fetalhc.phantom import make_phantom
    from fetalhc.pixel_size_csv import read_pixel_size_csv

    src = root.parent / "sources"
    src.mkdir(parents=True)
    hc18 = default_data_dir()
    sources: list[tuple[Path, float]] = []
    if hc18 is not None:
        table = read_pixel_size_csv(hc18 / "test_set_pixel_size.csv")
        for p in sorted((hc18 / "test_set").glob("*_HC.png")):
            entry = table.get(p.name)
            if entry is not None and entry.pixel_size_mm is not None:
                sources.append((p, entry.pixel_size_mm))
    phantoms = []
    for i in range(20):
        img, _ = make_phantom(540, 800, seed=100 + i)
        p = src / f"phantom_{i:02d}.png"
        cv2.imwrite(str(p), img)
        phantoms.append((p, 0.2))
    if not sources:
        sources = phantoms
    every_broken = max(1, round(1 / broken_frac)) if broken_frac > 0 else 0
    kinds: dict[str, str] = {}
    sizes = root.parent / "pixel_sizes.csv"
    with sizes.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "pixel_size_mm"])
        for i in range(n):
            folder = root / f"d{i // PER_FOLDER:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            p = folder / f"f{i:06d}.png"
            if every_broken and i % every_broken == every_broken - 1:
                kind = (i // every_broken) % 3
                if kind == 0:
                    data = sources[i % len(sources)][0].read_bytes()
                    p.write_bytes(data[: len(data) // 2])
                elif kind == 1:
                    p.write_text("this is not an image\n")
                else:
                    p.write_bytes(b"")
                kinds[str(p)] = "broken"
                continue
            s, px = phantoms[i % len(phantoms)] if i % 10 == 3 else sources[i % len(sources)]
            p.symlink_to(s)
            w.writerow([p.name, px])
            kinds[str(p)] = "good"
    return kinds, sizes


def _vm_hwm_mb(pid: int | None = None) -> float | None:
    try:
        for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def throughput(files: list[Path], table_csv: Path, tmp: Path) -> dict[str, dict[str, float | list[float]]]:
    """Steady-state images/s: serial, and Dask with 1 and 2 workers (model preloaded)."""
    from fetalhc.archive import dask_client, run_archive
    from fetalhc.archive_worker import ArchiveSettings, worker_pipeline
    from fetalhc.batch import BatchOptions, measure_file
    from fetalhc.pipeline import Pipeline, PipelineConfig
    from fetalhc.pixel_size_csv import read_pixel_size_csv

    table = read_pixel_size_csv(table_csv)
    folder = tmp / "throughput"
    folder.mkdir()
    for p in files:
        (folder / p.name).symlink_to(p.resolve())
    out: dict[str, dict[str, float | list[float]]] = {}
    # serial path (fetalhc.batch), one process, ORT 2 threads, model loaded before the clock starts
    pipe = Pipeline(None, PipelineConfig())
    opts, seen = BatchOptions(pixel_size_table=table), set[str]()
    t0 = time.perf_counter()
    rows = [r for f in sorted(folder.iterdir()) for r in measure_file(pipe, f, opts, seen)]
    dt = time.perf_counter() - t0
    assert not any(r.error for r in rows)
    out["serial"] = {"images": len(rows), "seconds": dt, "images_per_s": len(rows) / dt}
    print(f"serial     {len(rows) / dt:5.2f} images/s ({len(rows)} in {dt:.1f} s)", flush=True)
    settings = ArchiveSettings(ort_threads=1)
    for workers in (1, 2):
        with dask_client(workers=workers) as client:
            client.run(lambda: worker_pipeline(settings) is not None)  # load the model on every worker
            t0 = time.perf_counter()
            summary = run_archive([folder], tmp / f"tp{workers}.csv", settings, client=client,
                                  pixel_size_table=table)
            dt = time.perf_counter() - t0
            hwm = sorted(v for v in client.run(_vm_hwm_mb).values() if v is not None)
        assert summary.failed == 0
        out[f"dask_{workers}_workers"] = {"images": summary.files, "seconds": dt, "images_per_s": summary.files / dt,
                                          "worker_peak_rss_mb": hwm}
        print(f"{workers} worker(s) {summary.files / dt:5.2f} images/s ({summary.files} in {dt:.1f} s); "
              f"worker peak RSS {hwm} MB", flush=True)
    return out


class RssSampler:
    """Peak resident memory (VmHWM, MB) of a process and all its descendants, sampled every 0.5 s."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peaks: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                procs = []
            for p in procs:
                hwm = _vm_hwm_mb(p.pid)
                if hwm is None:
                    continue
                try:
                    role = "driver" if p.pid == self.root.pid else (
                        "worker" if "spawn_main" in " ".join(p.cmdline()) else p.name())
                except psutil.Error:
                    continue
                self.peaks[p.pid] = (role, max(hwm, self.peaks.get(p.pid, ("", 0.0))[1]))
            self._stop.wait(0.5)

    def stop(self) -> dict[str, list[float]]:
        self._stop.set()
        self._thread.join()
        out: dict[str, list[float]] = {}
        for role, mb in self.peaks.values():
            out.setdefault(role, []).append(round(mb, 1))
        return {k: sorted(v) for k, v in out.items()}


def committed_rows(path: Path) -> int:
    try:
        return max(0, path.read_bytes().count(b"\n") - 1)
    except OSError:
        return 0


def kill_and_resume(root: Path, sizes: Path, out: Path, n: int, workers: int) -> dict[str, object]:
    args = ["measure", str(root), "--pixel-size-csv", str(sizes), "--out", str(out), "--workers", str(workers)]
    # the `fetalhc` console script, run by this interpreter (so PYTHONPATH and the venv are the same)
    cmd = [sys.executable, "-c", "import sys; from fetalhc.cli import app; sys.argv[0] = 'fetalhc'; app()", *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pgid = os.getpgid(proc.pid)
    while committed_rows(out) < n // 2 and proc.poll() is None:
        time.sleep(0.5)
    rows_at_kill = committed_rows(out)
    os.killpg(pgid, signal.SIGKILL)
    proc.wait()
    first_s = time.perf_counter() - t0
    time.sleep(1)
    left = [p.pid for p in psutil.process_iter(["status"])  # zombies are dead, only not yet reaped
            if _pgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE]
    print(f"killed after {first_s:.0f} s with {rows_at_kill} rows committed; processes left in the group: {left}",
          flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen([*cmd, "--resume"], start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    sampler = RssSampler(proc.pid)
    log, _ = proc.communicate()
    resume_s = time.perf_counter() - t0
    peaks = sampler.stop()
    print(log.strip(), flush=True)
    return {"command": "fetalhc " + " ".join(args) + " [--resume]", "first_run_s": first_s,
            "rows_at_kill": rows_at_kill,
            "processes_left_after_kill": len(left), "resume_s": resume_s, "resume_exit_code": proc.returncode,
            "resume_log": " ".join(log.split()), "peak_rss_mb_during_resume": peaks,
            "end_to_end_images_per_s": (n - rows_at_kill) / resume_s}


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def verify(out: Path, kinds: dict[str, str]) -> dict[str, object]:
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    count = Counter(r["file"] for r in rows)
    errors = {r["file"]: r["error"] for r in rows if r["error"]}
    good = [k for k, v in kinds.items() if v == "good"]
    broken = [k for k, v in kinds.items() if v == "broken"]
    res: dict[str, object] = {
        "rows": len(rows),
        "good_files": len(good), "good_measured_once": sum(count[k] == 1 and k not in errors for k in good),
        "broken_files": len(broken), "broken_recorded_once": sum(count[k] == 1 and k in errors for k in broken),
        "duplicates": sum(c > 1 for c in count.values()), "unknown_rows": sum(k not in kinds for k in count),
        "good_with_hc_mm": sum(1 for r in rows if r["file"] in kinds and kinds[r["file"]] == "good" and r["hc_mm"]),
    }
    res["ok"] = (res["good_measured_once"] == len(good) and res["broken_recorded_once"] == len(broken)
                 and res["duplicates"] == 0 and res["unknown_rows"] == 0 and len(rows) == len(kinds))
    return res


def serial_agreement(out: Path, sizes: Path, k: int = 20) -> dict[str, object]:
    """The first ``k`` files of the archive CSV against the serial path, column by column."""
    from fetalhc.batch import BatchOptions, run_batch
    from fetalhc.io_utils import write_table
    from fetalhc.pipeline import PipelineConfig
    from fetalhc.pixel_size_csv import read_pixel_size_csv
    from fetalhc.results import TABLE_COLUMNS

    with out.open(newline="") as f:
        archive = sorted(csv.DictReader(f), key=lambda r: r["file"])[:k]
    rows = run_batch([Path(r["file"]) for r in archive], PipelineConfig(),
                     BatchOptions(pixel_size_table=read_pixel_size_csv(sizes)))
    ref = out.with_name("serial_sample.csv")
    write_table(ref, rows, TABLE_COLUMNS)
    with ref.open(newline="") as f:
        serial = list(csv.DictReader(f))
    return {"files": len(archive), "identical_rows": sum(a == s for a, s in zip(archive, serial, strict=True))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="files in the archive")
    ap.add_argument("--broken", type=float, default=0.05, help="fraction of broken files")
    ap.add_argument("--throughput-n", type=int, default=200, help="HC18 images for the images/s runs (0: skip)")
    ap.add_argument("--workers", type=int, default=2, help="workers of the kill-and-resume run")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/archive_results.json"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fetalhc_archive_"))
    try:
        root = tmp / "archive"
        t0 = time.perf_counter()
        kinds, sizes = make_archive(root, args.n, args.broken)
        print(f"made {len(kinds)} files ({sum(v == 'broken' for v in kinds.values())} broken) in "
              f"{time.perf_counter() - t0:.0f} s under {root}", flush=True)
        result: dict[str, object] = {
            "command": " ".join(["python", *sys.argv]),
            "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                        "cpu_model": _cpu_model(), "python": platform.python_version(),
                        "load_avg_at_start": os.getloadavg()},
            "n_files": len(kinds), "n_broken": sum(v == "broken" for v in kinds.values()),
        }
        if args.throughput_n:
            good = [Path(k) for k, v in kinds.items() if v == "good" and "phantom" not in os.readlink(k)]
            result["throughput"] = throughput(good[: args.throughput_n], sizes, tmp)
        out = tmp / "results.csv"
        result["kill_and_resume"] = kill_and_resume(root, sizes, out, len(kinds), args.workers)
        result["check"] = verify(out, kinds)
        result["serial_agreement"] = serial_agreement(out, sizes)
        print(json.dumps({k: result[k] for k in ("check", "serial_agreement")}, indent=1), flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


if __name__ == "__main__":
    main()
