"""Load benchmark of the HTTP API on loopback: N measurements at a fixed concurrency while
/api/health is polled.

    python benchmarks/load_api.py [--n 120] [--concurrency 6] [--workers 2] [--queue 8]
                                  [--json benchmarks/load_results.json]

Starts ``uvicorn fetalhc.server:app`` in a child process on a free 127.0.0.1 port (worker pool
settings through FETALHC_WORKERS / FETALHC_QUEUE), sends ``--n`` POST /api/measure requests
(alternating synthetic phantoms and, when present, HC18 training images with their pixel sizes)
with at most ``--concurrency`` in flight, and polls GET /api/health every 0.2 s meanwhile.
Reports the count of each status code, p50/p95 latency of the measurements, requests per second,
and the health check's p50/p95/max latency (goal: p95 <= 0.5 s). Bounded: stops after
``--max-seconds``; sends traffic to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def uploads(n_hc18: int = 12) -> list[tuple[str, bytes, str | None]]:
    """(label, PNG bytes, pixel size in mm or None): four phantoms and up to ``n_hc18`` HC18 images."""
    import cv2

    from fetalhc.hc18 import default_data_dir
    from fetalhc.phantom import make_phantom

    out: list[tuple[str, bytes, str | None]] = []
    for seed in range(4):
        img, _ = make_phantom(540, 800, seed=seed)
        out.append((f"phantom{seed}", cv2.imencode(".png", img)[1].tobytes(), "0.15"))
    d = default_data_dir()
    if d is not None:
        with (d / "training_set_pixel_size_and_HC.csv").open() as f:
            rows = list(csv.DictReader(f))
        for r in rows[:: max(1, len(rows) // n_hc18)][:n_hc18]:
            out.append((f"hc18:{r['filename']}", (d / "training_set" / r["filename"]).read_bytes(),
                        r["pixel size(mm)"]))
    return out


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


async def run_load(url: str, items: list[tuple[str, bytes, str | None]], n: int, concurrency: int,
                   max_seconds: float) -> dict[str, object]:
    codes: Counter[int] = Counter()
    lat: list[float] = []
    health: list[float] = []
    health_codes: Counter[int] = Counter()
    sem = asyncio.Semaphore(concurrency)
    done = asyncio.Event()
    deadline = time.monotonic() + max_seconds
    async with httpx.AsyncClient(timeout=120) as client, httpx.AsyncClient(timeout=10) as hclient:

        async def one(i: int) -> None:
            label, data, px = items[i % len(items)]
            async with sem:
                if time.monotonic() > deadline:
                    codes[-1] += 1  # not sent: out of time
                    return
                t0 = time.perf_counter()
                try:
                    r = await client.post(f"{url}/api/measure", files={"image": ("upload.png", data, "image/png")},
                                          data={"pixel_size_mm": px} if px else {})
                    codes[r.status_code] += 1
                except httpx.HTTPError:
                    codes[0] += 1  # transport error
                lat.append(time.perf_counter() - t0)

        async def poll() -> None:
            while not done.is_set():
                t0 = time.perf_counter()
                try:
                    r = await hclient.get(f"{url}/api/health")
                    health_codes[r.status_code] += 1
                except httpx.HTTPError:
                    health_codes[0] += 1
                health.append(time.perf_counter() - t0)
                await asyncio.sleep(0.2)

        poller = asyncio.create_task(poll())
        t_start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - t_start
        done.set()
        await poller
    sent = sum(v for k, v in codes.items() if k != -1)
    return {
        "requests": n, "concurrency": concurrency, "status_codes": {str(k): v for k, v in sorted(codes.items())},
        "server_errors_5xx": sum(v for k, v in codes.items() if k >= 500),
        "latency_s": {"p50": round(pct(lat, 0.5), 3), "p95": round(pct(lat, 0.95), 3), "max": round(max(lat), 3)},
        "requests_per_s": round(sent / wall, 3), "wall_s": round(wall, 1),
        "health": {"polls": len(health), "status_codes": {str(k): v for k, v in sorted(health_codes.items())},
                   "p50_s": round(pct(health, 0.5), 4), "p95_s": round(pct(health, 0.95), 4),
                   "max_s": round(max(health), 4), "goal_p95_s": 0.5},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--concurrency", type=int, default=6)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--queue", type=int, default=8)
    ap.add_argument("--max-seconds", type=float, default=900.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    items = uploads()
    load_before = [round(x, 2) for x in os.getloadavg()]
    port = free_port()
    env = {**os.environ, "FETALHC_WORKERS": str(args.workers), "FETALHC_QUEUE": str(args.queue),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "fetalhc.server:app", "--host", "127.0.0.1",
                               "--port", str(port), "--no-access-log", "--log-level", "warning"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("the server did not start")
        # warm up: load the model before timing
        label, data, px = items[0]
        httpx.post(f"{url}/api/measure", files={"image": ("upload.png", data, "image/png")},
                   data={"pixel_size_mm": px or ""}, timeout=120)
        out = asyncio.run(run_load(url, items, args.n, args.concurrency, args.max_seconds))
    finally:
        server.terminate()
        server.wait(timeout=30)
    out.update({
        "images": {"phantoms": sum(1 for i in items if i[0].startswith("phantom")),
                   "hc18": sum(1 for i in items if i[0].startswith("hc18"))},
        "server": {"workers": args.workers, "queue": args.queue, "endpoint": "POST /api/measure (corners)"},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_1_5_15_min_after": [round(x, 2) for x in os.getloadavg()]},
        "load_average_1_5_15_min_before": load_before,
        "command": "python benchmarks/load_api.py " + " ".join(sys.argv[1:]),
    })
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 1 if out["server_errors_5xx"] else 0


if __name__ == "__main__":
    sys.exit(main())
