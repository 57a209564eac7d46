"""`mrczbench convert --follow`: a real writer process (tests/detector_writer.py) producing MRC
and TIFF movies frame by frame, with temporary names and renames, and a real follower process
(filesystem events and polling); kill -9 at random moments then a restart; --delete-source;
incomplete movies; SIGTERM. Also issue 26.2a/2b for `convert` (workers die with their parent,
an output that verifies is adopted; no writing through a symlink that leaves --out) and files
under --out never taken as inputs."""
from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tifffile

from mrczbench import mrcz
from mrczbench.argtypes import EER_GROUPING
from mrczbench.cli import main
from mrczbench.convert import manifest
from mrczbench.convert.follow import Monitor, source_problem

sys.path.insert(0, str(Path(__file__).parent))
from detector_writer import stack  # noqa: E402

WRITER = Path(__file__).parent / "detector_writer.py"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def follower(folder, out, *options, env=ENV, **popen):
    command = [sys.executable, "-m", "mrczbench", "convert", "--follow", str(folder), "--out", str(out),
               "--settle", "0.6", *options]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def writer(folder, movies, *options):
    return subprocess.Popen([sys.executable, str(WRITER), str(folder), "--movies", str(movies), *options],
                            env=ENV, stdout=subprocess.PIPE, text=True)


def done_lines(out: Path) -> Counter:
    """How often each output was recorded as converted, over every manifest line."""
    lines = (json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines() if line.strip())
    return Counter(r["output"] for r in lines if r["status"] == "done" and not r.get("source_deleted"))


def check_outputs(out: Path, written: list[dict], folder_name: str, frames: int, shape):
    for movie in written:
        output = out / folder_name / Path(movie["name"]).with_suffix(".mrcz")
        np.testing.assert_array_equal(mrcz.read(output), stack(movie["seed"], frames, shape))
    assert done_lines(out) == Counter({f"{folder_name}/{Path(m['name']).with_suffix('.mrcz')}": 1
                                       for m in written})
    leftovers = [p for p in out.rglob("*") if p.is_file() and p.suffix not in (".mrcz", ".jsonl", ".tsv")]
    assert not leftovers, leftovers


@pytest.mark.parametrize("mode", ["events", "polling"])
def test_each_movie_converted_once_bit_exact_while_it_is_written(tmp_path, mode):
    folder = tmp_path / "in"
    folder.mkdir()
    # polling: --out inside the watched folder, whose files must never become inputs
    out = folder / "conv" if mode == "polling" else tmp_path / "out"
    options = ["--poll", "--poll-interval", "0.3"] if mode == "polling" else []
    proc = follower(folder, out, "--exit-when-idle", "3", "--status", str(tmp_path / "status.json"), *options)
    time.sleep(1.0)
    written = writer(folder, 4, "--fps", "30", "--gap", "0.2")
    lines, _ = written.communicate(timeout=120)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    movies = [json.loads(line) for line in lines.splitlines()]
    assert len(movies) == 4
    check_outputs(out, movies, "in", 6, (64, 48))
    assert not list(out.rglob(".*part*")) and not list(out.rglob("*.tmp*"))
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["done"] == 4 and status["backlog"] == 0 and status["state"] == "idle"
    assert status["latency_s"]["median"] > 0
    assert ("polling" in err) == (mode == "polling")
    assert main(["verify", str(out)]) == 0


def _living(token: str) -> list[int]:
    """Processes (of this user) whose environment holds `token`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _wait_gone(token: str, before: list[int], seconds: float = 10.0) -> list[int]:
    """Processes holding `token`, or listed in `before` and not yet reaped (a zombie has no
    environment but still holds its pid, and atomic.py keeps temporaries of living pids)."""
    deadline = time.monotonic() + seconds

    def left():
        return sorted(set(_living(token)) | {p for p in before if Path(f"/proc/{p}").exists()})
    while left() and time.monotonic() < deadline:
        time.sleep(0.05)
    return left()


def started(proc, seconds: float = 60.0) -> None:
    """Wait for the follower's first line (it has read the manifest and started its workers)."""
    deadline = time.monotonic() + seconds
    while True:
        ready, _, _ = select.select([proc.stderr], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, "the follower did not start"
        line = proc.stderr.readline()
        assert line, "the follower exited"
        if "watching" in line:
            return


def test_kill_9_at_random_moments_then_restart_converts_each_movie_once(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    out = tmp_path / "out"
    token = f"MRCZBENCH_FOLLOW_TEST_{os.getpid()}_{time.monotonic_ns()}"
    env = {**ENV, token: "1"}
    rng = random.Random(24)
    arrivals = writer(folder, 12, "--fps", "200", "--gap", "0.8", "--frames", "16", "--shape", "256", "192")
    for trial in range(10):
        polling = ["--poll", "--poll-interval", "0.3"] if trial % 2 else []  # both modes
        proc = follower(folder, out, "--jobs", "2", *polling, env=env)
        started(proc)
        time.sleep(rng.uniform(0.0, 2.0))
        before = _living(token)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert not _wait_gone(token, before), f"trial {trial}: worker processes outlived the follower"
        for record in manifest.records(out) if (out / "manifest.jsonl").exists() else []:
            if record["status"] == "done":  # never a half file under a final name
                assert (out / record["output"]).stat().st_size == record["output_bytes"]
    lines, _ = arrivals.communicate(timeout=120)
    proc = follower(folder, out, "--jobs", "2", "--exit-when-idle", "2", env=env)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    movies = [json.loads(line) for line in lines.splitlines()]
    assert len(movies) == 12
    check_outputs(out, movies, "in", 16, (256, 192))
    assert main(["verify", str(out)]) == 0


def test_delete_source_after_verification(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    out = tmp_path / "out"
    lines, _ = writer(folder, 2, "--fps", "1000").communicate(timeout=60)
    proc = follower(folder, out, "--delete-source", "--exit-when-idle", "2")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert not [p for p in folder.rglob("*") if p.is_file()]  # both originals removed
    records = manifest.records(out)
    assert len(records) == 2 and all(r["source_deleted"] and r["status"] == "done" for r in records)
    for movie in map(json.loads, lines.splitlines()):
        np.testing.assert_array_equal(mrcz.read(out / "in" / Path(movie["name"]).with_suffix(".mrcz")),
                                      stack(movie["seed"], 6, (64, 48)))
    assert main(["verify", str(out)]) == 0


def test_an_eer_source_is_checked_at_the_runs_grouping(tmp_path, monkeypatch):
    """The follower reads EER inputs at the run's grouping: to judge them complete (8 internal
    frames at the default 32 were "being written" for ever) and to check them before
    --delete-source (re-read at 32 they differ, and were kept for good)."""
    from test_readers_strict import eer_file
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    eer_file(tmp_path / "in/e.eer", frames=8)
    assert main(["convert", "in", "--out", "o", "--eer-grouping", "4"]) == 0
    (record,) = manifest.records(tmp_path / "o")
    assert record["frames"] == 2
    assert source_problem(record, str(tmp_path / "o"), eer_grouping=4) is None
    assert "changed since" in source_problem(record, str(tmp_path / "o"), eer_grouping=2)
    assert source_problem(record, str(tmp_path / "o"), EER_GROUPING)  # 32: more than 8 frames
    # the follower passes its grouping on: the EER source is deleted once verified
    (tmp_path / "live").mkdir()
    eer_file(tmp_path / "live/e.eer", frames=8)
    proc = follower(tmp_path / "live", tmp_path / "o4", "--eer-grouping", "4", "--delete-source",
                    "--exit-when-idle", "2")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    (record,) = manifest.records(tmp_path / "o4")
    assert record["source_deleted"] and not (tmp_path / "live/e.eer").exists()


def test_a_source_whose_output_does_not_verify_is_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    mrcz.write(tmp_path / "in/a.mrc", stack(5, 4, (32, 32)))
    assert main(["convert", "in", "--out", "o"]) == 0
    record = manifest.records(tmp_path / "o")[0]
    assert source_problem(record, str(tmp_path / "o"), EER_GROUPING) is None
    target = tmp_path / "o/in/a.mrcz"
    data = bytearray(target.read_bytes())
    data[-20] ^= 0x10
    target.write_bytes(bytes(data))
    assert "does not verify" in source_problem(record, str(tmp_path / "o"), EER_GROUPING)
    target.unlink()
    assert source_problem(record, str(tmp_path / "o"), EER_GROUPING)  # a missing output: kept too
    assert main(["convert", "in", "--out", "o2"]) == 0
    record = manifest.records(tmp_path / "o2")[0]
    mrcz.write(tmp_path / "in/a.mrc", stack(6, 4, (32, 32)))  # the original changed afterwards
    assert "changed since" in source_problem(record, str(tmp_path / "o2"), EER_GROUPING)
    # the follower meets an output (with no manifest row) that does not match its input: kept
    (tmp_path / "o3/in").mkdir(parents=True)
    (tmp_path / "o3/in/a.mrcz").write_bytes(b"not written by mrczbench")
    proc = follower(tmp_path / "in", tmp_path / "o3", "--delete-source", "--exit-when-idle", "1.5")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert (tmp_path / "in/a.mrc").exists()
    (record,) = manifest.records(tmp_path / "o3")
    assert record["status"] == "failed" and not record.get("source_deleted")


def test_incomplete_movie_is_reported_then_converted_when_it_completes(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    whole = tmp_path / "whole.mrc"
    mrcz.write(whole, stack(9, 6, (32, 32)))
    raw = whole.read_bytes()
    (folder / "cut.mrc").write_bytes(raw[:-3 * 32 * 32])  # the detector stopped after 3 frames
    proc = follower(folder, tmp_path / "out", "--incomplete-timeout", "1", "--exit-when-idle", "1.5")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    (record,) = manifest.records(tmp_path / "out")
    assert record["status"] == "incomplete" and "cut.mrc" in record["input"]
    assert not (tmp_path / "out/in/cut.mrcz").exists()
    assert main(["verify", str(tmp_path / "out")]) == 1
    (folder / "cut.mrc").write_bytes(raw)
    proc = follower(folder, tmp_path / "out", "--incomplete-timeout", "1", "--exit-when-idle", "1.5")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    np.testing.assert_array_equal(mrcz.read(tmp_path / "out/in/cut.mrcz"), stack(9, 6, (32, 32)))


@pytest.mark.parametrize("signals", [1, 2])
def test_sigterm_finishes_or_abandons_the_movie_in_flight(tmp_path, signals):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        mrcz.write(folder / f"m{i}.mrc", stack(i, 16, (512, 512)))
    out = tmp_path / "out"
    proc = follower(folder, out, "--codec", "zlib", "--level", "9")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(out.rglob(".m*.tmp")):
        time.sleep(0.02)  # a temporary output: a movie is in flight
    for _ in range(signals):
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.05)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == (0 if signals == 1 else 130), err
    recorded = {r["output"] for r in manifest.records(out)} if (out / "manifest.jsonl").exists() else set()
    finals = {str(p.relative_to(out)) for p in out.rglob("*.mrcz")}
    assert finals == recorded  # nothing renamed into place without its manifest line
    assert not list(out.rglob("*.tmp"))
    if signals == 1:
        assert recorded  # the movie in flight was finished
    proc = follower(folder, out, "--exit-when-idle", "1.5")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert done_lines(out) == Counter({f"in/m{i}.mrcz": 1 for i in range(3)})


def test_backlog_warning_and_keep_up_margin():
    monitor = Monitor(jobs=1, started=0.0)
    assert monitor.backlog_warning(0.0, 3) is None
    assert monitor.backlog_warning(30.0, 5) is None       # less than a window of history
    warning = monitor.backlog_warning(61.0, 6)
    assert warning and "6 movies waiting" in warning and "was 3" in warning
    assert monitor.backlog_warning(70.0, 9) is None       # one warning per window
    assert monitor.backlog_warning(200.0, 9) is None       # steady: not growing
    for t in (0.0, 60.0, 120.0):
        monitor.arrived(t)                                 # one movie a minute
    for _ in range(3):
        monitor.converted({"status": "done", "seconds": 20.0, "raw_bytes": 20 * 2 ** 20}, 25.0)
    rates = monitor.rates()
    assert rates["arrivals_per_min"] == pytest.approx(1.0) and rates["capacity_per_min"] == pytest.approx(3.0)
    assert rates["keep_up_margin"] == pytest.approx(3.0) and rates["mib_per_s"] == pytest.approx(1.0)
    assert "keeps up x3.0" in Monitor.line(monitor.status(0.0, "running", 0, 0, 0))


def test_config_from_recommend_json(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    mrcz.write(tmp_path / "in/a.mrc", stack(1, 3, (32, 32)))
    config = {"format": "mrcz", "codec": "lz4", "level": 3, "filter": "shuffle", "blocksize": None}
    (tmp_path / "rec.json").write_text(json.dumps({"recommended": {**config, "config": config, "threads": 1}}))
    assert main(["convert", "in", "--out", "o", "--config", "rec.json"]) == 0
    assert mrcz.read_header(tmp_path / "o/in/a.mrcz").codec == "lz4"
    assert manifest.records(tmp_path / "o")[0]["config"]["level"] == 3
    (tmp_path / "bad.json").write_text(json.dumps({"recommended": {"format": "bzip2", "level": 9}}))
    assert main(["convert", "in", "--out", "o3", "--config", "bad.json"]) == 2
    assert "bzip2" in capsys.readouterr().err


# ---- issue 24: files under --out are never inputs; issue 26.2a / 2b for `convert` -----------

def test_outputs_under_out_are_never_inputs_on_a_rerun(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in/sub").mkdir(parents=True)
    mrcz.write(tmp_path / "in/sub/a.mrc", stack(2, 3, (32, 32)))
    assert main(["convert", "in", "--out", "in/conv"]) == 0
    assert main(["convert", "in", "--out", "in/conv"]) == 0
    assert not (tmp_path / "in/conv/in/conv").exists()
    assert [p.name for p in (tmp_path / "in/conv").rglob("*.mrcz")] == ["a.mrcz"]
    err = capsys.readouterr().err
    assert err.count("files under --out are never taken as inputs") == 2  # once per run


def test_an_output_without_a_manifest_row_that_verifies_is_adopted(tmp_path, monkeypatch, capsys):
    """A conversion killed between renaming its output and writing the manifest line."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    for i in range(2):
        mrcz.write(tmp_path / f"in/m{i}.mrc", stack(i, 3, (32, 32)))
    assert main(["convert", "in", "--out", "o"]) == 0
    (tmp_path / "o/manifest.jsonl").unlink()
    (tmp_path / "o/in/m1.mrcz").write_bytes((tmp_path / "o/in/m0.mrcz").read_bytes())  # not m1's frames
    assert main(["convert", "in", "--out", "o", "--only-unfinished"]) == 1
    records = {r["output"]: r for r in manifest.records(tmp_path / "o")}
    assert records["in/m0.mrcz"]["status"] == "done" and records["in/m0.mrcz"]["adopted"]
    assert records["in/m1.mrcz"]["status"] == "failed" and "differs" in records["in/m1.mrcz"]["error"]
    np.testing.assert_array_equal(mrcz.read(tmp_path / "o/in/m1.mrcz"), stack(0, 3, (32, 32)))  # left alone


def test_killed_convert_leaves_no_worker_running(tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(4):
        mrcz.write(folder / f"m{i}.mrc", stack(i, 24, (1024, 1024)))
    token = f"MRCZBENCH_CONVERT_TEST_{os.getpid()}_{time.monotonic_ns()}"
    out = tmp_path / "R"
    process = subprocess.Popen([sys.executable, "-m", "mrczbench", "convert", str(folder), "--out", str(out),
                                "--jobs", "2", "--codec", "zlib", "--level", "9"],
                               env={**ENV, token: "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(out.rglob(".m*.tmp")):
        time.sleep(0.02)  # a worker is writing a movie
    before = _living(token)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not _wait_gone(token, before, 3.0), "worker processes outlived the killed convert"
    finals = {str(p.relative_to(out)) for p in out.rglob("*.mrcz")}
    recorded = {r["output"] for r in manifest.records(out)} if (out / "manifest.jsonl").read_text().strip() else set()
    assert finals <= recorded


def test_no_write_through_a_symlink_that_leaves_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data/sub").mkdir(parents=True)
    mrcz.write(tmp_path / "data/sub/m.mrc", stack(3, 3, (32, 32)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "O/data").mkdir(parents=True)
    (tmp_path / "O/data/sub").symlink_to(elsewhere)
    assert main(["convert", "data", "--out", "O"]) == 1
    assert not list(elsewhere.iterdir())
    (record,) = manifest.records(tmp_path / "O")
    assert record["status"] == "failed" and "symlink" in record["error"]


def test_without_watchfiles_the_follower_polls(tmp_path):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['watchfiles'] = None\n")
    folder = tmp_path / "in"
    folder.mkdir()
    mrcz.write(folder / "a.mrc", stack(4, 3, (32, 32)))
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(hide), os.environ.get("PYTHONPATH", "")])}
    proc = follower(folder, tmp_path / "out", "--exit-when-idle", "1", env=env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "watchfiles is not installed: polling" in err
    np.testing.assert_array_equal(mrcz.read(tmp_path / "out/in/a.mrcz"), stack(4, 3, (32, 32)))


def test_a_refused_output_stays_refused_on_the_next_run(tmp_path, monkeypatch):
    """A failed record for an output is no licence to overwrite the file found there."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    mrcz.write(tmp_path / "in/a.mrc", stack(7, 3, (32, 32)))
    (tmp_path / "o/in").mkdir(parents=True)
    (tmp_path / "o/in/a.mrcz").write_bytes(b"someone else's file")
    assert main(["convert", "in", "--out", "o"]) == 1
    assert main(["convert", "in", "--out", "o"]) == 1
    assert (tmp_path / "o/in/a.mrcz").read_bytes() == b"someone else's file"


def test_follow_on_a_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    folder = tmp_path / "in"
    folder.mkdir()
    mrcz.write(folder / "a.mrc", stack(8, 3, (32, 32)))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        proc = follower(folder, tmp_path / "out", "--scheduler", cluster.scheduler_address,
                        "--exit-when-idle", "1")
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    (record,) = manifest.records(tmp_path / "out")
    assert record["status"] == "done"
    np.testing.assert_array_equal(mrcz.read(tmp_path / "out/in/a.mrcz"), stack(8, 3, (32, 32)))


def test_a_preallocated_mrc_is_taken_only_once_filled_in(tmp_path):
    """Its size matches the header from the start: the follower must wait for the writes to stop."""
    folder = tmp_path / "in"
    folder.mkdir()
    proc = follower(folder, tmp_path / "out", "--exit-when-idle", "2")
    started(proc)
    lines, _ = writer(folder, 1, "--kinds", "mrc", "--preallocate", "--frames", "12", "--fps", "10").communicate(timeout=60)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    check_outputs(tmp_path / "out", [json.loads(lines)], "in", 12, (64, 48))
