"""End-to-end runs of tiny suites written in tmp folders.

Test-only contenders are real Format plugins registered in the real registry (the way a third
party registers one); the worker process is forked, so it sees them too."""
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from mrczbench import formats, load_results
from mrczbench import store
from mrczbench.bench import timing
from mrczbench.atomic import atomic_output
from mrczbench.cli import main
from mrczbench.errors import SuiteError
from mrczbench.formats.base import Format
from mrczbench.bench.plan import order_cases
from mrczbench.bench.runner import run_suite
from mrczbench.bench.suites import load_suite
from mrczbench.analysis import stats
from mrczbench.bench.worker import HarnessError

REPO = Path(__file__).resolve().parent.parent


class RawFormat(Format):
    """Uncompressed bytes behind a 12-byte shape header: the simplest honest contender."""

    name = "test-raw"
    suffix = ".raw"
    has_memory_codec = True

    def encode(self, stack):
        return np.ascontiguousarray(stack).tobytes()

    def decode(self, blob, shape, dtype):
        return np.frombuffer(blob, dtype=dtype).reshape(shape).copy()

    def write(self, path, stack):
        with atomic_output(path) as handle:
            handle.write(np.array(stack.shape, "<i4").tobytes())
            handle.write(np.ascontiguousarray(stack).tobytes())
        return 12 + stack.nbytes

    def read(self, path):
        blob = Path(path).read_bytes()
        shape = tuple(np.frombuffer(blob[:12], "<i4"))
        return np.frombuffer(blob[12:], np.int8).reshape(shape).copy()


class BrokenFormat(RawFormat):
    name = "test-broken"

    def encode(self, stack):
        raise RuntimeError("encoder exploded\nwith a traceback-like second line")

    def write(self, path, stack):
        raise RuntimeError("writer exploded")


class LossyFormat(RawFormat):
    name = "test-lossy"

    def decode(self, blob, shape, dtype):
        out = super().decode(blob, shape, dtype)
        out.flat[0] ^= 1
        return out

    def read(self, path):
        out = super().read(path)
        out.flat[0] ^= 1
        return out


class CrashingFormat(RawFormat):
    name = "test-crash"

    def encode(self, stack):
        os.kill(os.getpid(), signal.SIGSEGV)


class HangingFormat(RawFormat):
    name = "test-hang"

    def encode(self, stack):
        time.sleep(60)


class UnavailableFormat(RawFormat):
    name = "test-unavailable"

    @classmethod
    def unavailable_reason(cls):
        return "libtest is not installed"


@pytest.fixture(autouse=True)
def test_formats(monkeypatch):
    for cls in (RawFormat, BrokenFormat, LossyFormat, CrashingFormat, HangingFormat, UnavailableFormat):
        monkeypatch.setitem(formats.BUILTIN, cls.name, f"{__name__}:{cls.__name__}")


def tiny_suite(tmp_path, contenders, ops=("encode", "decode", "write", "read_warm"), timeout=30,
               extra_sweep="", repeats=2, name="tiny"):
    table = "\n".join(f'"{c}" = {{ format = "{c}" }}' for c in contenders)
    text = f"""
        description = "tiny test suite"
        ops = {json.dumps(list(ops))}
        repeats = {repeats}
        precision = 0             # a fixed count: the rows' numbers do not depend on timing
        min_batch_seconds = 0.002
        timeout = {timeout}

        [dataset]
        kind = "poisson"
        frames = 2
        shape = [48, 40]
        dose = 1.0
        dtype = "int8"

        [contenders]
        {table}

        [sweep]
        contender = {json.dumps(list(contenders))}
        {extra_sweep}
        """
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(text))
    return path


def run(tmp_path, suite_path, **kwargs):
    kwargs.setdefault("out", tmp_path / "out")
    kwargs.setdefault("cache_dir", tmp_path / "cache")
    kwargs.setdefault("progress", False)
    kwargs.setdefault("summary", False)
    path = run_suite(str(suite_path), **kwargs)
    return path, list(store.iter_rows(path))


def test_the_summary_is_printed_by_the_command_and_the_public_run_suite_not_the_harness(tmp_path, capsys):
    import mrczbench
    suite = tiny_suite(tmp_path, ["test-raw"])
    path, _ = run(tmp_path, suite, out=tmp_path / "harness", summary=True)
    assert capsys.readouterr().out == ""  # bench/ announces on stderr only
    path = mrczbench.run_suite(str(suite), out=tmp_path / "public", cache_dir=tmp_path / "cache",
                               progress=False)
    out = capsys.readouterr().out
    assert "ratio (stored/raw)" in out and out.rstrip().endswith(f"results: {path}")
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "cli"), "--cache-dir",
                 str(tmp_path / "cache"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "ratio (stored/raw)" in out and "results: " + str(tmp_path / "cli") in out


def test_good_contender_rows_follow_the_schema(tmp_path):
    path, rows = run(tmp_path, tiny_suite(tmp_path, ["test-raw"]))
    assert {r["op"] for r in rows} == {"encode", "decode", "write", "read_warm"}
    assert len(rows) == 4 * 2
    for row in rows:
        assert set(row) == set(store.COLUMNS)
        assert row["error"] is None and row["valid"] and row["lossless"]
        assert row["raw_bytes"] == 2 * 48 * 40 and row["frames"] == 2 and row["ny"] == 48
        assert row["seconds"] > 0 and row["mib_per_s"] > 0
        assert 0 < row["bound_ratio"] < 1
        assert row["label"] == "test-raw" and row["format"] == "test-raw"
    memory = [r for r in rows if r["op"] in ("encode", "decode")]
    assert all(r["regime"] == "memory" and r["loops"] >= 1 for r in memory)
    assert all(r["ratio"] == 1.0 for r in memory)
    meta = store.read_run_metadata(path)
    assert meta["suite"] == "tiny" and meta["machine"]["cpu_model"] is not None
    assert meta["case_order"] == ["contender=test-raw"]
    assert not list((tmp_path / "out").glob(".scratch-*"))  # scratch removed
    frame = load_results(tmp_path / "out")
    assert len(frame) == 8


def test_failing_contenders_become_error_rows_and_the_run_goes_on(tmp_path):
    names = ["test-broken", "test-lossy", "test-crash", "test-unavailable", "test-raw", "test-hang"]
    suite = tiny_suite(tmp_path, names, ops=("encode", "decode", "write"), timeout=3, repeats=1)
    _, rows = run(tmp_path, suite)
    by_format = {}
    for row in rows:
        by_format.setdefault(row["format"], []).append(row)
    broken = {r["op"]: r["error"] for r in by_format["test-broken"]}
    assert broken["encode"] == "RuntimeError: encoder exploded with a traceback-like second line"
    assert broken["write"] == "RuntimeError: writer exploded"
    lossy = by_format["test-lossy"]
    assert all(r["error"] == "round trip not bit-exact" and r["lossless"] is False for r in lossy)
    assert all(r["seconds"] is None for r in lossy)
    assert by_format["test-crash"][-1]["error"] == "worker killed by signal SIGSEGV"
    assert by_format["test-unavailable"][0]["error"] == "unavailable: libtest is not installed"
    assert by_format["test-hang"][-1]["error"].startswith("timed out after 3 s (limit per case: --timeout 3;")
    assert all(r["error"] is None for r in by_format["test-raw"])  # ran after the crash
    errors = [r for r in rows if r["error"]]
    assert all(not r["valid"] for r in errors)


@pytest.mark.parametrize("contender, message", [
    ('{ format = "no-such-format" }', "unknown format 'no-such-format'; valid: mrc, mrcz"),
    ('{ format = "mrcz", codec = "zsdt" }', "codec: expected one of"),
    ('{ format = "mrcz", levle = 1 }', "unknown parameter(s) levle; valid:"),
])
def test_a_typo_in_a_contender_stops_show_and_run_before_any_dataset_exists(
        tmp_path, capsys, contender, message):
    text = tiny_suite(tmp_path, ["test-raw"]).read_text().replace('{ format = "test-raw" }', contender)
    suite = tmp_path / "typo.toml"
    suite.write_text(text)
    assert main(["suites", "show", str(suite)]) == 2
    err = capsys.readouterr().err
    assert message in err and "case contender=test-raw" in err and len(err.strip().splitlines()) == 1
    cache, out = tmp_path / "cache", tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--cache-dir", str(cache)]) == 2
    assert message in capsys.readouterr().err
    assert not cache.exists() and not out.exists()  # no dataset generated, no run started


def test_mrc_uint4_on_counts_above_15_is_a_lossy_error_row(tmp_path):
    text = tiny_suite(tmp_path, ["mrc-uint4"], ops=("encode",)).read_text().replace("dose = 1.0", "dose = 40.0")
    path = tmp_path / "uint4.toml"
    path.write_text(text)
    _, rows = run(tmp_path, path)
    assert len(rows) == 1
    assert rows[0]["error"].startswith("lossy:") and rows[0]["lossless"] is False


def test_cold_reads_are_cold_and_warm_reads_are_not(tmp_path):
    method, note = timing.probe_eviction(tmp_path)
    if method == "none":
        pytest.skip(note)
    suite = tiny_suite(tmp_path, ["test-raw"], ops=("write", "read_warm", "write_fsync", "read_cold"),
                       repeats=3)
    path, rows = run(tmp_path, suite)
    cold = [r for r in rows if r["op"] == "read_cold"]
    warm = [r for r in rows if r["op"] == "read_warm"]
    assert len(cold) == 3 and len(warm) == 3
    for row in cold:
        assert row["eviction"] == method
        assert row["residency"] is not None and row["residency"] <= timing.COLD_RESIDENCY_LIMIT
        assert row["valid"] and row["lossless"]
    assert all(r["residency"] is None and r["valid"] for r in warm)
    assert store.read_run_metadata(path)["eviction"]["method"] == method


def test_without_eviction_cold_samples_are_marked_invalid(tmp_path):
    suite = tiny_suite(tmp_path, ["test-raw"], ops=("write", "read_cold"), repeats=2)
    _, rows = run(tmp_path, suite, eviction="none")
    cold = [r for r in rows if r["op"] == "read_cold"]
    assert cold and all(r["residency"] > 0.5 and r["valid"] is False for r in cold)
    assert all(r["eviction"] == "none" for r in rows)


def test_case_order_is_seeded_shuffled_and_grouped_by_dataset(tmp_path):
    suite = load_suite(tiny_suite(tmp_path, ["test-raw", "test-lossy", "test-broken"],
                                  extra_sweep="dose = [0.5, 1, 2, 4]"))
    cases = suite.cases()
    first = [c.case_id for c in order_cases(cases, seed=1)]
    assert first == [c.case_id for c in order_cases(cases, seed=1)]
    assert first != [c.case_id for c in order_cases(cases, seed=2)]
    assert first != [c.case_id for c in cases]
    doses = [c.dataset["dose"] for c in order_cases(cases, seed=1)]
    runs_of_same_dose = sum(1 for a, b in zip(doses, doses[1:]) if a != b) + 1
    assert runs_of_same_dose == 4  # each dataset is loaded once


def test_resume_after_sigkill_completes_without_duplicates(tmp_path):
    # A metadata suite needs no test plugin, so a real CLI subprocess can run it.
    suite = tmp_path / "meta.toml"
    suite.write_text(textwrap.dedent("""
        ops = ["encode", "decode", "write", "read_warm"]
        repeats = 3
        precision = 0
        min_batch_seconds = 0.02
        [dataset]
        kind = "metadata"
        megabytes = 0.2
        [format]
        format = "metadata"
        level = 1
        [sweep]
        serializer = ["json", "orjson", "msgpack"]
        compressor = ["none", "lz4", "zstd"]
        """))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "mrczbench", "run", "--suite", str(suite), "--out", str(out),
               "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout, not an installed copy
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=env)
    deadline = time.monotonic() + 60
    run_file = None
    while time.monotonic() < deadline:
        files = list(out.glob("*.jsonl"))
        if files and files[0].stat().st_size > 0:
            run_file = files[0]
            break
        time.sleep(0.02)
    assert run_file is not None, process.stderr.read().decode()
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = store.case_progress(run_file)
    runs_before = sum(len(progress.rounds) for progress in before.values())
    assert 1 <= runs_before < 27  # 9 cases x 3 rounds
    done_before = [case for case, progress in before.items() if len(progress.rounds) == 3]
    time.sleep(0.2)  # the worker dies with its parent (PR_SET_PDEATHSIG)

    resumed = subprocess.run(command + ["--resume"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=60, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert (f"{9 - len(done_before)} of 9 cases to run ({27 - runs_before} case rounds of 27)"
            in resumed.stderr)
    assert list(out.glob("*.jsonl")) == [run_file]  # the same run continued
    rows = list(store.iter_rows(run_file))
    per_case = {}
    for row in rows:
        per_case.setdefault(row["case_id"], set()).add((row["op"], row["sample"]))
    assert len(per_case) == 9
    assert all(samples == {(op, n) for op in ("encode", "decode", "write", "read_warm")
                           for n in range(3)} for samples in per_case.values())
    counts = {}
    for row in rows:
        key = (row["case_id"], row["op"], row["sample"])
        counts[key] = counts.get(key, 0) + 1
    assert set(counts.values()) == {1}  # no duplicated samples
    meta = store.read_run_metadata(run_file)
    assert meta["resumed"][0]["cases_done_before"] == len(done_before)
    assert not list(out.glob(".scratch-*"))
    assert "json+zstd" in resumed.stdout  # the summary table


def test_resume_needs_an_earlier_run_with_the_same_profile(tmp_path):
    suite = tiny_suite(tmp_path, ["test-raw"], ops=("encode",))
    with pytest.raises(SuiteError, match="no earlier run of suite 'tiny'"):
        run(tmp_path, suite, resume=True)
    run(tmp_path, suite)
    with pytest.raises(SuiteError, match="used profile 'full'"):
        run(tmp_path, suite, resume=True, quick=True)
    path, rows = run(tmp_path, suite, resume=True)
    assert len(rows) == 2  # nothing left to do, nothing duplicated
    # a run made case by case (mrczbench before rounds) cannot be continued in rounds
    meta = store.read_run_metadata(path)
    assert meta["timing"]["sampling"] == "rounds"
    del meta["timing"]["sampling"]
    store.write_run_metadata(path, meta)
    with pytest.raises(SuiteError, match="was made case by case .* start a new run"):
        run(tmp_path, suite, resume=True)


def test_cli_run_prints_a_summary_with_units(tmp_path, capsys):
    suite = tiny_suite(tmp_path, ["test-raw", "test-broken"], ops=("encode", "write"), repeats=1)
    code = main(["run", "--suite", str(suite), "--out", str(tmp_path / "out"), "--cache-dir",
                 str(tmp_path / "cache"), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "ratio (stored/raw)" in out and "encode (MiB/s)" in out and "efficiency (%)" in out
    assert "! test-broken" in out
    assert main(["run", "--suite", str(suite), "--list-cases"]) == 0
    assert "contender=test-raw" in capsys.readouterr().out


def test_data_files_run_in_place_of_synthetic_data(tmp_path):
    import mrcfile
    movie = tmp_path / "mine.mrc"
    stack = np.random.default_rng(0).poisson(1.0, (3, 32, 24)).astype(np.int8)
    with mrcfile.new(movie) as handle:
        handle.set_data(stack)
    (tmp_path / "movies.lst").write_text("mine.mrc\n")
    _, rows = run(tmp_path, tiny_suite(tmp_path, ["test-raw"], ops=("encode",)),
                  data=[str(tmp_path / "movies.lst")])
    assert {r["dataset"] for r in rows} == {"mine"}
    assert rows[0]["dataset_kind"] == "user" and rows[0]["frames"] == 3 and rows[0]["error"] is None


def test_resume_refuses_other_settings_and_keeps_the_original_ones(tmp_path):
    suite = tiny_suite(tmp_path, ["test-raw"], ops=("encode",), extra_sweep="dose = [1.0, 2.0]")
    path, rows = run(tmp_path, suite, repeats=3, seed=7, eviction="fadvise")
    assert len({r["case_id"] for r in rows}) == 2
    with pytest.raises(SuiteError, match=r"--repeats 2 \(the original run used 3\)"):
        run(tmp_path, suite, resume=True, repeats=2)
    with pytest.raises(SuiteError, match=r"--seed 1 \(the original run used 7\)"):
        run(tmp_path, suite, resume=True, seed=1)
    with pytest.raises(SuiteError, match=r"--eviction none \(the original run used none\)|"
                                         r"--eviction fadvise \(the original run used none\)"):
        # no cold reads: the original method is "none"
        run(tmp_path, suite, resume=True, eviction="fadvise")
    with pytest.raises(SuiteError, match="used profile 'full'"):
        run(tmp_path, suite, resume=True, quick=True)
    # leave one case out, resume without options: the original repeats are used, not the suite's
    kept = [r for r in rows if r["case_id"] == rows[0]["case_id"]]
    path.write_text("".join(store.dumps_row(r) + "\n" for r in kept))
    path, rows = run(tmp_path, suite, resume=True)
    assert sorted(r["sample"] for r in rows if r["case_id"] != kept[0]["case_id"]) == [0, 1, 2]
    meta = store.read_run_metadata(path)
    assert meta["timing"]["repeats"] == 3 and meta["seed"] == 7


def test_busy_machine_is_warned_and_recorded(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    suite = tiny_suite(tmp_path, ["test-raw"], ops=("encode",), repeats=1)
    path, _ = run(tmp_path, suite, progress=True)
    err = capsys.readouterr().err
    assert re.search(r"warning: load average 64\.00 on \d+ cores: other work is running; "
                     r"timings will be noisy \(marked unstable\)", err)
    load = store.read_run_metadata(path)["load_at_start"]
    assert load["busy"] is True and load["load_average"] == 64.0
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    path, _ = run(tmp_path, suite, progress=True)
    assert "load average" not in capsys.readouterr().err
    assert store.read_run_metadata(path)["load_at_start"]["busy"] is False


def test_failed_starts_leave_no_empty_out_folder(tmp_path):
    suite = tiny_suite(tmp_path, ["test-raw"], ops=("encode",), repeats=1)
    out = tmp_path / "new" / "out"
    with pytest.raises(SuiteError, match="no earlier run"):
        run(tmp_path, suite, out=out, resume=True)
    assert not (tmp_path / "new").exists()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        run(tmp_path, suite, out=out, scratch=blocker / "scratch")
    assert not (tmp_path / "new").exists()
    assert main(["run", "--suite", str(suite), "--out", str(out), "--scratch", "/proc/s",
                 "--no-progress"]) == 2
    assert not (tmp_path / "new").exists()


def test_a_bug_in_the_harness_stops_the_run_instead_of_becoming_an_error_row(tmp_path, monkeypatch):
    def broken_calibration(func, min_seconds):
        raise ZeroDivisionError("harness bug planted by the test")

    # the worker is forked: it runs the broken harness function, the contender is fine
    monkeypatch.setattr(timing, "calibrate_loops", broken_calibration)
    suite = tiny_suite(tmp_path, ["test-raw"], ops=("encode",), repeats=1)
    with pytest.raises(HarnessError) as info:
        run(tmp_path, suite)
    text = str(info.value)
    assert "internal error in mrczbench's benchmark harness" in text and "not a failure of the contender" in text
    assert "ZeroDivisionError: harness bug planted by the test" in text and "broken_calibration" in text
    (run_file,) = (tmp_path / "out").glob("*.jsonl")
    assert list(store.iter_rows(run_file)) == []  # no error row blaming test-raw


def _holder(run_file):
    """A second process holding the run's lock, as a concurrent `run --resume` does."""
    code = ("import sys; from pathlib import Path; from mrczbench.bench.plan import RunLock; "
            "lock = RunLock(Path(sys.argv[1])); print('locked', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run_file)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_writer_of_the_same_run_is_refused(tmp_path, capsys):
    suite = tiny_suite(tmp_path, ["test-raw"], ops=("encode",), extra_sweep="dose = [1.0, 2.0]", repeats=1)
    path, rows = run(tmp_path, suite)
    kept = [r for r in rows if r["case_id"] == rows[0]["case_id"]]
    path.write_text("".join(store.dumps_row(r) + "\n" for r in kept))  # one case left to do
    holder = _holder(path)
    try:
        with pytest.raises(SuiteError, match="another mrczbench run is writing this run now"):
            run(tmp_path, suite, resume=True)
        capsys.readouterr()
        code = main(["run", "--suite", str(suite), "--out", str(tmp_path / "out"), "--resume",
                     "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and "another mrczbench run" in err
        assert list(store.iter_rows(path)) == kept  # nothing appended by the refused runs
    finally:
        holder.communicate("")
    _, rows = run(tmp_path, suite, resume=True)  # the lock went with the other process
    assert len(rows) == 2 and len({r["case_id"] for r in rows}) == 2


def _live_processes_mentioning(text):
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z" and int(entry.name) != os.getpid():
            found[int(entry.name)] = cmdline
    return found


def test_a_timed_out_case_leaves_no_command_line_compressor_running(tmp_path):
    import shutil
    import threading

    if shutil.which("xz") is None:
        pytest.skip("xz is not installed")
    text = tiny_suite(tmp_path, ["xz"], ops=("write",), timeout=1.5, repeats=1).read_text()
    text = text.replace('{ format = "xz" }', '{ format = "xz", level = 9, threads = 2 }')
    text = text.replace("frames = 2", "frames = 6").replace("shape = [48, 40]", "shape = [1024, 1024]")
    suite = tmp_path / "slow.toml"
    suite.write_text(text)
    # generate the dataset first so the case's time goes to xz (about 8 s of xz -9 here)
    from mrczbench.bench.measure import dataset_spec
    from mrczbench.movies.datasets import load_stack
    case = load_suite(suite).cases()[0]
    load_stack(dataset_spec(case.dataset), tmp_path / "cache", progress=False)

    seen, stop = {}, threading.Event()

    def watch():
        while not stop.is_set():
            seen.update({pid: cmd for pid, cmd in _live_processes_mentioning(str(tmp_path)).items()
                         if cmd.startswith("xz ")})
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        _, rows = run(tmp_path, suite)
    finally:
        stop.set()
        watcher.join()
    assert rows[-1]["error"].startswith("timed out after 1.5 s (limit per case: --timeout 1.5;")
    assert seen, "xz never started: the test did not exercise the timeout"
    time.sleep(0.2)
    still = {pid: cmd for pid, cmd in _live_processes_mentioning(str(tmp_path)).items() if pid in seen}
    assert still == {}


def test_cache_dir_naming_a_file_and_bad_numbers_are_one_line_errors(tmp_path, capsys):
    suite = tiny_suite(tmp_path, ["test-raw"], ops=("encode",), repeats=1)
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("x")
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--cache-dir", str(not_a_folder)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--cache-dir" in err and "not a folder" in err
    assert not out.exists()
    for option in ("--out", "--scratch"):
        arguments = ["run", "--suite", str(suite), "--out", str(out), option, str(not_a_folder)]
        assert main(arguments) == 2
        assert f"{option} {not_a_folder}: not a folder" in capsys.readouterr().err
        assert not out.exists()
    for option, value in (("--timeout", "1e309"), ("--timeout", "nan"), ("--timeout", "0"),
                          ("--repeats", "0"), ("--repeats", "2.5")):
        with pytest.raises(SystemExit) as info:
            main(["run", "--suite", str(suite), option, value])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and option in err and repr(value) in err


def test_resume_takes_the_original_runs_profile_without_quick_again(tmp_path):
    suite = tiny_suite(tmp_path, ["test-raw"], ops=("encode",), extra_sweep="dose = [1.0, 2.0]",
                       repeats=3)
    suite.write_text(suite.read_text() + "\n[quick]\nrepeats = 1\n[quick.dataset]\nframes = 1\n")
    path, rows = run(tmp_path, suite, quick=True)
    assert {r["frames"] for r in rows} == {1} and len(rows) == 2
    kept = [r for r in rows if r["case_id"] == rows[0]["case_id"]]
    path.write_text("".join(store.dumps_row(r) + "\n" for r in kept))
    path, rows = run(tmp_path, suite, resume=True)  # no quick=True
    assert len(rows) == 2 and {r["frames"] for r in rows} == {1}  # quick settings, not the suite's
    assert store.read_run_metadata(path)["profile"] == "quick"


def test_progress_advances_within_a_case(tmp_path, monkeypatch):
    from mrczbench.bench import runner
    from mrczbench.progress import Progress

    seen = []

    class Recording(Progress):
        def update(self, done, note="", bytes_done=None):
            seen.append((done, note))
            super().update(done, note, bytes_done)

    monkeypatch.setattr(runner, "Progress", Recording)
    suite = tiny_suite(tmp_path, ["test-raw"], ops=("encode", "write"), repeats=3)
    run(tmp_path, suite, progress=True)
    # 3 rounds of the one case, one step per sample row within each
    within = [(done, note) for done, note in seen if done % 1]
    assert len(within) == 6
    assert sorted(done for done, _ in within) == [done for done, _ in within]
    assert {note.split()[-1] for _, note in within} == {"encode", "write"}
    assert {note.split()[1] for _, note in within} == {"1/3", "2/3", "3/3"}
    assert seen[-1][0] == 3


# --- sampling to a precision -------------------------------------------------------------------

def precision_suite(tmp_path, extra):
    path = tiny_suite(tmp_path, ["test-raw", "mrc"], ops=("encode", "decode", "write"), repeats=2)
    text = path.read_text().replace("precision = 0 ", f"{extra}\n# ")
    path.write_text(text)
    return path


def test_a_case_takes_at_least_six_samples_and_leaves_when_its_budget_is_spent(tmp_path):
    # a budget of a microsecond is spent after the first round: every case stops at the
    # minimum of 6 samples, whatever the timings (repeats = 2 is raised to 6)
    path, rows = run(tmp_path, precision_suite(tmp_path, "precision = 0.05\nbudget = 0.000001"))
    timed = [r for r in rows if r["seconds"] is not None]
    per_series = {}
    for row in timed:
        per_series.setdefault((row["case_id"], row["op"]), set()).add(row["sample"])
    assert per_series and all(samples == set(range(6)) for samples in per_series.values())
    for row in rows:
        assert row["profile"] == "full" and row["precision_target"] == 0.05
        assert row["budget_s"] == 0.000001 and row["round_s"] > 0
    assert all(r["cpu_seconds"] is not None and r["cpu_seconds"] >= 0 for r in timed)
    meta = store.read_run_metadata(path)
    assert meta["timing"]["precision"] == 0.05
    assert sum(meta["timing"]["stopped"].values()) == 2
    assert set(meta["timing"]["stopped"]) <= {"target met", "budget spent"}


def test_a_case_short_of_an_unreachable_target_stops_at_the_most_samples(tmp_path):
    # ±1e-9 cannot be met by real timings: every case takes max_repeats rounds
    path, rows = run(tmp_path, precision_suite(
        tmp_path, "precision = 0.000000001\nmax_repeats = 7\nbudget = 0"))
    samples = {(r["case_id"], r["op"]): set() for r in rows}
    for row in rows:
        samples[(row["case_id"], row["op"])].add(row["sample"])
    assert all(s == set(range(7)) for s in samples.values())
    assert store.read_run_metadata(path)["timing"]["stopped"] == {"max samples": 2}


def test_decode_goes_into_a_reused_output_and_allocation_is_its_own_op(tmp_path):
    path, rows = run(tmp_path, tiny_suite(tmp_path, ["mrc", "test-raw"], ops=("encode", "decode", "alloc")))
    by_label = {}
    for row in rows:
        by_label.setdefault(row["label"], {}).setdefault(row["op"], []).append(row)
    assert {r["output"] for r in by_label["mrc"]["decode"]} == {"reused"}
    assert len(by_label["mrc"]["alloc"]) == 2 and all(r["seconds"] > 0 for r in by_label["mrc"]["alloc"])
    # a contender that decodes into new memory only: no alloc op, its decode rows say so
    assert {r["output"] for r in by_label["test-raw"]["decode"]} == {"fresh"}
    assert "alloc" not in by_label["test-raw"]


def test_quick_keeps_a_fixed_budget_and_repeats_alone_is_a_count(tmp_path):
    path = tiny_suite(tmp_path, ["test-raw"], ops=("encode",), repeats=3)
    path.write_text(path.read_text().replace("precision = 0 ", "# ") + "\n[quick]\nrepeats = 2\n")
    quick = load_suite(path, quick=True)
    assert quick.sampling().fixed and quick.sampling().min_samples == 2
    full = load_suite(path)
    assert full.sampling() == stats.SamplingRule(0.05, 6, 30, 120.0)
    _, rows = run(tmp_path, path, repeats=4)
    assert sorted(r["sample"] for r in rows) == [0, 1, 2, 3]
    assert {r["precision_target"] for r in rows} == {0.0}


def test_threads_at_all_vcpus_are_warned_about(tmp_path, monkeypatch):
    from mrczbench import system
    from mrczbench.bench import runner
    monkeypatch.setattr(system, "usable_cores", lambda: 2)
    suite = load_suite(tiny_suite(tmp_path, ["mrc"], extra_sweep="threads = [1, 2]"))
    warning = runner.threads_at_vcpus(suite.cases())
    assert warning.startswith("1 of 2 cases use 2 threads = all 2 vCPUs")
    assert runner.threads_at_vcpus(suite.cases()[:1] if suite.cases()[0].format["threads"] == 1
                                   else suite.cases()[1:]) is None


def test_the_terminal_summary_says_how_many_series_met_the_target():
    from mrczbench.analysis.summary import summary_table

    def rows(case_id, seconds, target):
        return [store.make_row(run_id="r", suite="s", case_id=case_id, sample=i, dataset="d",
                                 format="mrc", label=case_id, op="encode", raw_bytes=2**20,
                                 stored_bytes=2**20, seconds=s, precision_target=target)
                for i, s in enumerate(seconds)]
    steady = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98]
    wild = [1.0, 2.0, 0.5, 1.5, 0.7, 3.0]
    text = summary_table(rows("steady", steady, 0.05) + rows("wild", wild, 0.05))
    assert "1 of 2 series met the ±5 % target; † marks the others" in text
    wild_line = next(line for line in text.splitlines() if line.startswith("wild"))
    assert wild_line.endswith("†") and "±" in wild_line
    fixed = summary_table(rows("quick", steady[:3], 0))
    assert "fixed number of samples" in fixed and "†" not in fixed.splitlines()[2]


def test_the_terminal_summary_counts_met_targets_as_the_report_does():
    """The summary's intervals are of seconds, as stats.case_stats's (the report's): a series
    whose seconds interval meets ±5 % while its MiB/s interval does not (the 2026-12-05
    level sweep's zstd-7 decode: 4.98 % of seconds, 5.25 % of MiB/s) counts as met in both."""
    from mrczbench.analysis.stats import case_stats
    from mrczbench.analysis.summary import summary_table
    from mrczbench.analysis.results import normalise_rows
    from mrczbench.sampling import precision
    import pandas as pd
    seconds = [0.95, 1.0, 1.0, 1.0, 1.05, 1.05, 1.05, 1.05, 1.05, 1.1]
    rows = [store.make_row(run_id="r", suite="s", case_id="c", sample=i, dataset="d", format="mrc",
                           label="c", op="decode", raw_bytes=2**20, stored_bytes=2**20,
                           seconds=s, precision_target=0.05) for i, s in enumerate(seconds)]
    stats = case_stats(normalise_rows(pd.DataFrame(rows)))
    text = summary_table(rows)
    assert precision([1 / s for s in seconds]) > 0.05  # MiB/s's interval would miss it
    assert stats["precision"].iloc[0] <= 0.05 and bool(stats["met_target"].iloc[0])
    assert "1 of 1 series met the ±5 % target." in text
    line = next(line for line in text.splitlines() if line.startswith("c "))
    assert "†" not in line and f"{2**20 / 2**20 / stats['median_s'].iloc[0]:.3g}" in line
