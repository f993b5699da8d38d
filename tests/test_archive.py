"""Archive runs on Dask: same rows as the serial path, resumable output, one model per worker."""

from __future__ import annotations

import csv
import os
import signal
from collections import Counter
from pathlib import Path

import cv2
import pytest

from fetalhc.archive import run_archive
from fetalhc.archive_inputs import iter_input_files, iter_items
from fetalhc.archive_io import CsvSink, DoneSet, ParquetSink, _csv_bytes, _record
from fetalhc.archive_worker import ArchiveSettings, measure_batch, model_load_count
from fetalhc.batch import BatchOptions, run_batch
from fetalhc.cli import collect_inputs
from fetalhc.io_utils import write_table
from fetalhc.phantom import make_phantom
from fetalhc.pipeline import PipelineConfig
from fetalhc.results import TABLE_COLUMNS

distributed = pytest.importorskip("distributed", reason="needs the dask extra: pip install -e '.[dask]'")

PIXEL_MM = 0.2
GOOD = ("a.png", "b.png", "sub/a.png", "sub/deeper/c.png", "clash.png", "clash.jpg")
BAD = ("truncated.png", "text.png", "empty.png")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small folder: six phantoms (270x400 px, nested, two with one stem) and three bad files."""
    d = tmp_path_factory.mktemp("archive") / "scans"
    for i, name in enumerate(GOOD):
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        img, _ = make_phantom(270, 400, seed=i)
        cv2.imwrite(str(d / name), img)
    data = (d / "a.png").read_bytes()
    (d / "truncated.png").write_bytes(data[: len(data) // 2])
    (d / "text.png").write_text("not an image\n")
    (d / "empty.png").write_bytes(b"")
    (d / "a_mask.png").write_bytes(data)  # an output of an earlier run: not an input
    return d


def read_rows(path: Path) -> list[dict[str, str]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        from fetalhc.io_utils import csv_cell

        rows = pq.read_table(path).to_pylist()  # compared as the CSV writer writes them
        return sorted(({k: str(csv_cell(v)) for k, v in r.items()} for r in rows), key=lambda r: r["file"])
    with path.open(newline="") as f:
        return sorted(csv.DictReader(f), key=lambda r: r["file"])


@pytest.fixture(scope="module")
def serial_rows(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    """The serial path's table (fetalhc.batch), written and read back as CSV."""
    out = tmp_path_factory.mktemp("serial") / "serial.csv"
    rows = run_batch(collect_inputs([archive]), PipelineConfig(), BatchOptions(pixel_size_mm=PIXEL_MM))
    write_table(out, rows, TABLE_COLUMNS)
    return read_rows(out)


@pytest.fixture(scope="module")
def client():  # type: ignore[no-untyped-def]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as c:
        yield c


def settings(tmp: Path | None = None) -> ArchiveSettings:
    return ArchiveSettings(pixel_size_mm=PIXEL_MM, mask_dir=None if tmp is None else str(tmp / "masks"))


def test_lazy_listing_is_collect_inputs(archive: Path) -> None:
    inputs = [archive, archive / "sub" / "a.png", archive / "a.png"]
    assert list(iter_input_files(inputs)) == collect_inputs(inputs)
    stems = {(i.out_subdir, i.stem) for i in iter_items([archive])}
    assert len(stems) == len(GOOD) + len(BAD)  # unique output names
    assert ("", "clash_png") in stems and ("", "clash_jpg") in stems and ("sub/deeper", "c") in stems


def test_dask_rows_equal_serial(archive: Path, serial_rows: list[dict[str, str]], client, tmp_path: Path) -> None:
    out = tmp_path / "dask.csv"
    summary = run_archive([archive], out, settings(tmp_path), client=client, batch_size=2)
    assert (summary.files, summary.failed) == (len(GOOD) + len(BAD), len(BAD))
    rows = read_rows(out)
    assert rows == serial_rows
    assert {r["file"] for r in rows if r["error"]} == {str(archive / b) for b in BAD}
    assert all(str(archive / b) in r["error"] for b, r in zip(sorted(BAD), [r for r in rows if r["error"]],
                                                              strict=True))
    masks = sorted(p.relative_to(tmp_path / "masks").as_posix() for p in (tmp_path / "masks").rglob("*.png"))
    assert masks == ["a_mask.png", "b_mask.png", "clash_jpg_mask.png", "clash_png_mask.png", "sub/a_mask.png",
                     "sub/deeper/c_mask.png"]
    assert not (tmp_path / "dask.csv.journal").exists()


def test_errors_name_the_path_as_given(archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers read absolute paths; the rows still name the file as the user gave it."""
    monkeypatch.chdir(archive.parent)
    bad = [i for i in iter_items([Path("scans")]) if Path(i.file).name in BAD]
    rows = measure_batch(bad, settings())
    assert len(rows) == len(BAD)
    for item, row in zip(bad, rows, strict=True):
        assert row["file"] == item.file and row["error"].startswith(f"scans/{Path(item.file).name}: ")
        assert str(archive) not in row["error"]


def test_model_loads_once_per_worker(archive: Path, client, tmp_path: Path) -> None:
    run_archive([archive], tmp_path / "o.csv", settings(), client=client, batch_size=1)
    counts = client.run(model_load_count)
    # 9 one-file tasks on 2 workers (so one ran at least 5): each process loaded the model once
    assert len(counts) == 2 and max(counts.values()) == 1


def test_parquet_output_readable(archive: Path, serial_rows: list[dict[str, str]], client, tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    run_archive([archive], out, settings(), client=client, batch_size=4)
    assert sorted(p.name for p in out.iterdir()) == ["part-000000.parquet"]
    assert read_rows(out) == serial_rows


def test_killed_worker_is_replaced_and_its_tasks_rerun(archive: Path, serial_rows: list[dict[str, str]], client,
                                                       tmp_path: Path) -> None:
    pids = client.run(os.getpid)
    victim = next(iter(pids.values()))
    killed: list[int] = []

    def kill_once(n: int) -> None:
        if not killed:
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    out = tmp_path / "k.csv"
    summary = run_archive([archive], out, settings(), client=client, batch_size=1, max_in_flight=4,
                          on_batch=kill_once)
    assert killed and summary.files == len(GOOD) + len(BAD)
    assert read_rows(out) == serial_rows
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it
    assert victim not in client.run(os.getpid).values()


# --- resuming after a kill --------------------------------------------------------------------------


def _rows_of(files: list[str]) -> list[dict[str, object]]:
    return [{"file": f, "hc_mm": 100.0 + i, "status": "ok", "error": None} for i, f in enumerate(files)]


def test_csv_sink_recovers_from_a_kill_at_any_byte(tmp_path: Path) -> None:
    """Batch A committed, batch B cut at every byte (and its journal record cut too):
    resuming keeps exactly A's rows, truncates the rest and appends cleanly."""
    out = tmp_path / "x.csv"
    sink = CsvSink(out, resume=False)
    sink.write_batch(_rows_of(["a1", "a2"]))
    sink.abandon()
    committed = out.read_bytes()
    b = _csv_bytes(_rows_of(["b1", "b2", "b3"]), TABLE_COLUMNS)
    journal = out.with_name("x.csv.journal").read_bytes()
    for cut in range(0, len(b) + 1, 7):
        for torn_record in (b"", _record(len(committed) + cut)[:9]):
            out.write_bytes(committed + b[:cut])
            out.with_name("x.csv.journal").write_bytes(journal + torn_record)
            s = CsvSink(out, resume=True)
            assert "a1" in s.done and "a2" in s.done and "b1" not in s.done and len(s.done) == 2
            s.write_batch(_rows_of(["b1", "b2", "b3"]))
            s.close()
            assert [r["file"] for r in read_rows(out)] == ["a1", "a2", "b1", "b2", "b3"]


def test_csv_without_journal_drops_a_half_line(tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    write_table(out, _rows_of(["a1", "a2"]), TABLE_COLUMNS)
    out.write_bytes(out.read_bytes() + b"a3,12")  # a half-written last line
    s = CsvSink(out, resume=True)
    assert len(s.done) == 2 and "a3" not in s.done
    s.close()
    assert out.read_bytes().endswith(b"\n") and len(read_rows(out)) == 2


def test_resume_after_simulated_kill_gives_each_file_once(archive: Path, serial_rows: list[dict[str, str]],
                                                          tmp_path: Path) -> None:
    """A run killed with one batch committed and the next half written, then ``--resume``."""
    out = tmp_path / "r.csv"
    sink = CsvSink(out, resume=False)
    first = [r for r in serial_rows if r["file"].endswith(("a.png", "text.png"))]
    sink.write_batch(first)
    sink.abandon()
    with out.open("ab") as f:  # half of the next batch, never committed
        f.write(b"\n".join(",".join(r.values()).encode() for r in serial_rows[:3])[:-40])
    summary = run_archive([archive], out, settings(), resume=True, batch_size=4)
    assert summary.skipped == len(first) and summary.files == len(serial_rows) - len(first)
    rows = read_rows(out)
    assert Counter(r["file"] for r in rows) == Counter(r["file"] for r in serial_rows)
    assert rows == serial_rows


def test_parquet_resume_skips_whole_parts_and_ignores_half_ones(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    sink = ParquetSink(out, resume=False, rows_per_part=1)
    sink.write_batch([{"file": str(archive / "a.png"), "hc_mm": 1.0, "status": "ok"}])
    (out / ".part-000001.parquet.tmp").write_bytes(b"PAR1 half")  # killed while writing a part
    summary = run_archive([archive], out, settings(), resume=True, batch_size=4)
    assert summary.skipped == 1 and summary.files == len(GOOD) + len(BAD) - 1
    files = [r["file"] for r in read_rows(out)]
    assert sorted(files) == sorted(set(files)) and len(files) == len(GOOD) + len(BAD)


def test_done_set() -> None:
    done = DoneSet(["x.png", "dir/y.png", "x.png"])
    assert len(done) == 2 and "x.png" in done and "dir/y.png" in done and "y.png" not in done
    assert "anything" not in DoneSet()


def test_cli_resume_and_option_errors(archive: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fetalhc.cli import app

    out = tmp_path / "cli.csv"
    one = str(archive / "sub" / "deeper")  # one phantom, measured in this process
    res = CliRunner().invoke(app, ["measure", one, "--pixel-size", "0.2", "--out", str(out), "--resume"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["measure", one, "--pixel-size", "0.2", "--out", str(out), "--resume"])
    assert res.exit_code == 0 and "1 already in" in " ".join(res.output.split())
    assert len(read_rows(out)) == 1
    res = CliRunner().invoke(app, ["measure", one, "--workers", "2"])
    assert res.exit_code == 2 and "need --out" in " ".join(res.output.split())
    res = CliRunner().invoke(app, ["measure", one, "--workers", "2", "--scheduler", "tcp://x:1", "--out", str(out)])
    assert res.exit_code == 2 and "not both" in " ".join(res.output.split())
