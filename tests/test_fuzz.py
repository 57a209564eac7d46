"""The fuzz harness (mrczbench.fuzz): every reader under mutated inputs, and the harness
itself able to fail (planted bad readers run in the real child process)."""
from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import numpy as np
import pytest

from mrczbench import mrcz
from mrczbench.errors import MRCZError
from mrczbench.fuzz import READERS, Reader, run_fuzz

HERE = os.path.abspath(__file__)


# --- planted readers: loaded by the worker from this file ------------------------------

def planted_keyerror(path):
    raise KeyError("planted")


def planted_wrong_array(path):
    return mrcz.read(path)[:, :, ::-1].copy()


def planted_sleep(path):
    time.sleep(60)


def planted_allocate(path):
    return np.ones((64, 2**30), np.uint8)  # 64 GiB: far past the worker's memory limit


def planted_segfault(path):
    os.kill(os.getpid(), signal.SIGSEGV)


class _MultiLineMRCZError(MRCZError):
    """A documented error type whose message is not kept on one line (MrczbenchError's is)."""

    def __str__(self):
        return "first line\nsecond line"


def planted_multiline(path):
    raise _MultiLineMRCZError()


def planted_documented(path):
    raise MRCZError(f"{path}: planted one-line error")


def planted_in_the_callers_folder(path):
    if os.path.exists("movies.star"):  # e.g. a list entry "movies.star" would resolve to it
        raise RuntimeError("the worker reads the folder that mrczbench fuzz was started in")
    return mrcz.read(path)


def test_the_worker_runs_in_a_folder_of_its_own(tmp_path, monkeypatch):
    """`fuzz --readers lst` gave 6 unexpected outcomes in the README tour's folder (it holds a
    movies.star) and 0 in an empty one."""
    (tmp_path / "movies.star").write_text("data_\n")
    monkeypatch.chdir(tmp_path)
    report = _planted("in_the_callers_folder")
    assert report.findings == [] and sum(report.counts["planted-in_the_callers_folder"].values()) == 2


def _planted(name, **kwargs):
    reader = Reader(f"planted-{name}", f"{HERE}:planted_{name}", "mrczbench.errors.MRCZError", ("mrc",))
    return run_fuzz(seconds=None, max_inputs=2, seed=0, readers=[reader], **kwargs)


PLANTED = {"keyerror": "foreign-exception", "wrong_array": "wrong-array", "sleep": "hang",
           "allocate": "memory", "segfault": "crash", "multiline": "multi-line-error",
           "documented": "documented-error"}


def test_planted_readers_are_classified():
    # one run, one input (the unmutated seed) per planted reader, round-robin in one worker
    readers = [Reader(f"planted-{name}", f"{HERE}:planted_{name}", "mrczbench.errors.MRCZError",
                      ("mrc",)) for name in PLANTED]
    report = run_fuzz(seconds=None, max_inputs=len(PLANTED), seed=0, readers=readers, time_limit=2.0)
    assert {name: dict(report.counts[f"planted-{name}"]) for name in PLANTED} == \
        {name: {outcome: 1} for name, outcome in PLANTED.items()}
    assert sorted((f.reader, f.outcome, f.mutation) for f in report.findings) == sorted(
        (f"planted-{name}", outcome, "none") for name, outcome in PLANTED.items()
        if outcome != "documented-error")


def test_a_dead_worker_is_restarted_and_its_input_recorded(tmp_path):
    # a segfault on every input: each one is recorded and the next gets a fresh worker
    report = _planted("segfault", save_failures=tmp_path)
    assert [f.number for f in report.findings] == [0, 1]
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == ["planted-segfault-000000", "planted-segfault-000001"]
    info = json.loads((tmp_path / saved[0] / "finding.json").read_text())
    assert info["outcome"] == "crash" and "SIGSEGV" in info["detail"]
    # the saved input is the file the reader got: a valid seed, readable
    assert mrcz.read(tmp_path / saved[0] / info["seed_file"]).shape[0] == 3


def test_same_seed_same_inputs():
    first = run_fuzz(seconds=None, max_inputs=60, seed=7, readers=["mrcz", "star"])
    second = run_fuzz(seconds=None, max_inputs=60, seed=7, readers=["mrcz", "star"])
    other = run_fuzz(seconds=None, max_inputs=60, seed=8, readers=["mrcz", "star"])
    assert first.inputs == second.inputs
    assert [i[3] for i in first.inputs] != [i[3] for i in other.inputs]


def test_every_seed_reads_back_exactly():
    # the first inputs of each reader are its unmutated seeds: all must come back exactly
    report = run_fuzz(seconds=None, max_inputs=16 * len(READERS), seed=0)
    assert [f for f in report.findings if f.mutation == "none"] == []
    seeds = Counter((i[0], i[2]) for i in report.inputs if i[3] == "none" and i[4] == "ok")
    assert {reader for reader, _ in seeds} == set(READERS)
    assert len(seeds) == len({(i[0], i[2]) for i in report.inputs})  # every seed file


def test_every_reader_fuzzed_without_unexpected_outcomes():
    """A few thousand mutated inputs across all readers: only ok, the documented error, a
    change no checksum can catch, a reinterpretation or a warned change; never a crash,
    hang, memory blow-up, foreign exception, multi-line error or silently different array."""
    report = run_fuzz(seconds=50, max_inputs=3000, seed=1)
    assert set(report.counts) == set(READERS)
    assert all(sum(c.values()) >= 20 for c in report.counts.values()), report.counts
    assert all(c["ok"] >= 1 and c["documented-error"] >= 1 for c in report.counts.values()), report.counts
    lines = [f"{f.reader} {f.seed_file} {f.mutation}: {f.outcome}: {f.detail}"
             for f in report.findings]
    assert not lines, f"{len(lines)} unexpected outcomes:\n" + "\n".join(lines[:40])


def test_fuzz_command_exit_codes(tmp_path):
    from conftest import run_cli  # here: the fuzz worker loads this file by path, without tests/

    def cli(*args):
        return run_cli("fuzz", *args, timeout=300)
    bad = cli("--readers", "mrc,nope")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "nope" in bad.stderr
    assert cli("--seconds", "-1").returncode == 2
    done = cli("--seconds", "30", "--max-inputs", "30", "--seed", "3", "--readers", "framed,suite",
               "--save-failures", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()[1:3]}
    assert rows == {"framed": "15", "suite": "15"}
    assert "total: 30 inputs" in done.stdout and not list(tmp_path.iterdir())
