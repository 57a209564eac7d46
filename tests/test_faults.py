"""Fault injection, for real: a full disk (a small tmpfs), a read-only folder (a read-only
bind mount), permission denied (the command run as `nobody`), and kill -9 in the middle of
`compress`, `run` and `convert`. Mounting and changing user need root: without it those
tests are skipped (chmod cannot stop root, so there is no honest stand-in).

Each CLI failure must be one line on stderr with exit status 2; a killed command must leave
no half file under the final name, keep every result row written before the kill, and resume
cleanly."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mrczbench import mrcz

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534
IS_ROOT = os.geteuid() == 0


# The interpreter here may live where `nobody` cannot read (root's pyenv): start as root, load
# the command's modules, then drop to `nobody` before the command touches any user file.
AS_USER = ("import os, sys\n"
           "import numpy, blosc, blosc2, mrcfile, tifffile\n"
           "import mrczbench.cli, mrczbench.commands.files, mrczbench.mrcz, mrczbench.movies.datasets\n"
           "parser = mrczbench.cli.build_parser()\n"
           "os.setgroups([]); os.setgid(int(sys.argv[1])); os.setuid(int(sys.argv[1]))\n"
           "sys.exit(mrczbench.cli.main(sys.argv[2:]))\n")


def cli(*args, user: int | None = None, timeout: float = 300, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "mrczbench"] if user is None else \
        [sys.executable, "-c", AS_USER, str(user)]
    return subprocess.run([*command, *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=cwd)


def start(*args, cwd=None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "mrczbench", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True, cwd=cwd)


def kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The single 'mrczbench CMD: error: ...' line of a failed command (exit 2, no traceback);
    progress and warning lines before it are allowed."""
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert proc.returncode == 2 and len(errors) == 1 and errors[0].startswith("mrczbench") \
        and "Traceback" not in proc.stderr, f"exit {proc.returncode}, stderr:\n{proc.stderr}"
    return errors[0]


def _mount(*args) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A 16 KiB tmpfs: a real ENOSPC."""
    where = tmp_path / "small"
    where.mkdir()
    if not IS_ROOT or not _mount("-t", "tmpfs", "-o", "size=16k", "tmpfs", str(where)):
        pytest.skip("needs root to mount a small tmpfs")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=True)


@pytest.fixture
def readonly_dir(tmp_path):
    """A read-only bind mount: a real EROFS, even for root."""
    where = tmp_path / "readonly"
    where.mkdir()
    if not IS_ROOT or not (_mount("--bind", str(where), str(where))
                           and _mount("-o", "remount,bind,ro", str(where))):
        pytest.skip("needs root for a read-only bind mount")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=True)


@pytest.fixture
def movie(tmp_path):
    rng = np.random.default_rng(5)
    stack = rng.poisson(2.0, (6, 128, 128)).astype(np.int16)
    path = tmp_path / "movie.mrc"
    mrcz.write(path, stack)
    return path, stack


# ----------------------------------------------------------------- full disk

def test_full_disk_compress_is_one_line_and_leaves_nothing(small_disk, movie):
    path, _ = movie
    out = small_disk / "movie.mrcz"
    line = one_line_error(cli("compress", path, out, "--level", "1"))
    assert "no space" in line.lower()
    assert list(small_disk.iterdir()) == []  # no half file, no temporary file


def test_full_disk_decompress_is_one_line_and_leaves_nothing(small_disk, movie, tmp_path):
    path, _ = movie
    packed = tmp_path / "movie.mrcz"
    assert cli("compress", path, packed).returncode == 0
    line = one_line_error(cli("decompress", packed, small_disk / "movie.mrc"))
    assert "no space" in line.lower()
    assert list(small_disk.iterdir()) == []


def test_full_disk_during_run_then_resume_on_a_bigger_disk(small_disk, tmp_path):
    out = small_disk / "results"
    args = ("run", "--suite", "level-sweep", "--quick", "--out", out, "--repeats", "1",
            "--no-progress", "--cache-dir", tmp_path / "cache")
    line = one_line_error(cli(*args))
    assert "no space" in line.lower()
    (run_file,) = out.glob("*.jsonl")
    before = _rows(run_file)
    for row in before:  # the complete lines are whole rows; a cut-off last line is skipped
        json.loads(row)
    assert subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk)]).returncode == 0
    resumed = cli(*args, "--resume", timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    after = _rows(run_file)
    assert after[:len(before)] == before
    keys = Counter((r["case_id"], r["op"], r["sample"]) for r in map(json.loads, after))
    assert max(keys.values()) == 1
    from mrczbench.bench.suites import load_suite
    cases = {case.case_id for case in load_suite("level-sweep", quick=True).cases()}
    assert {json.loads(r)["case_id"] for r in after} == cases


# ----------------------------------------------------------------- read-only folder


@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_readonly_folder_is_one_line(readonly_dir, movie, tmp_path, command):
    path, _ = movie
    source = path
    if command == "decompress":
        source = tmp_path / "movie.mrcz"
        assert cli("compress", path, source).returncode == 0
    suffix = ".mrcz" if command == "compress" else ".mrc"
    line = one_line_error(cli(command, source, readonly_dir / f"out{suffix}"))
    assert "read-only" in line.lower()
    assert list(readonly_dir.iterdir()) == []


def test_readonly_run_out_is_one_line(readonly_dir):
    proc = cli("run", "--suite", "level-sweep", "--quick", "--out", readonly_dir / "results",
               "--no-progress", "--repeats", "1")
    one_line_error(proc)


# ----------------------------------------------------------------- permission denied

@pytest.fixture
def as_nobody(tmp_path):
    if not IS_ROOT:
        pytest.skip("needs root to run a command as nobody")
    probe = cli("formats", "list", user=NOBODY)
    if probe.returncode != 0:
        pytest.skip(f"nobody cannot run mrczbench here: {probe.stderr.strip()[:200]}")
    os.chmod(tmp_path, 0o755)
    return NOBODY


def test_unreadable_input_as_nobody_is_one_line(as_nobody, movie):
    path, _ = movie
    os.chmod(path, 0o600)
    line = one_line_error(cli("info", path, user=as_nobody))
    assert "permission denied" in line.lower()


def test_unwritable_folder_as_nobody_is_one_line(as_nobody, movie, tmp_path):
    path, _ = movie
    os.chmod(path, 0o644)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o755)
    line = one_line_error(cli("compress", path, locked / "movie.mrcz", user=as_nobody))
    assert "permission denied" in line.lower()
    assert list(locked.iterdir()) == []


# ----------------------------------------------------------------- kill -9

def _wait_for(condition, proc, seconds=120.0, what="") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, f"the command ended (exit {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_kill_during_compress_leaves_no_half_file(tmp_path):
    rng = np.random.default_rng(9)
    big = rng.poisson(3.0, (16, 1024, 1024)).astype(np.int16)  # 32 MiB: seconds at level 9
    source = tmp_path / "big.mrc"
    mrcz.write(source, big)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "big.mrcz"
    proc = start("compress", source, target, "--level", "9", "--threads", "1")
    _wait_for(lambda: any(p.stat().st_size > 0 for p in out_dir.iterdir()), proc,
              what="a temporary file with data")
    kill_group(proc)
    assert not target.exists()  # no half file under the final name
    assert all(p.name.startswith(".") for p in out_dir.iterdir())  # only our hidden temporary
    done = cli("compress", source, target, "--level", "1")
    assert done.returncode == 0, done.stderr
    assert np.array_equal(mrcz.read(target), big)


def test_kill_during_compress_then_rerun_leaves_no_temporary(tmp_path):
    rng = np.random.default_rng(10)
    source = tmp_path / "big.mrc"
    mrcz.write(source, rng.poisson(3.0, (16, 1024, 1024)).astype(np.int16))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = start("compress", source, out_dir / "big.mrcz", "--level", "9", "--threads", "1")
    _wait_for(lambda: any(p.stat().st_size > 0 for p in out_dir.iterdir()), proc,
              what="a temporary file with data")
    kill_group(proc)
    assert cli("compress", source, out_dir / "big.mrcz").returncode == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["big.mrcz"]


def _rows(path: Path) -> list[str]:
    text = path.read_text() if path.exists() else ""
    return [line for line in text.split("\n")[:-1] if line]  # complete lines only


def test_kill_during_run_then_resume_loses_and_duplicates_nothing(tmp_path):
    out = tmp_path / "results"
    args = ("run", "--suite", "level-sweep", "--quick", "--out", out, "--repeats", "1",
            "--no-progress", "--cache-dir", tmp_path / "cache")
    proc = start(*args)

    def run_file():
        return next(iter(sorted(out.glob("*.jsonl"))), None) if out.exists() else None

    _wait_for(lambda: run_file() is not None and len(_rows(run_file())) >= 5, proc, 300,
              "5 result rows")
    kill_group(proc)
    before = _rows(run_file())
    resumed = cli(*args, "--resume", timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    after = _rows(run_file())
    assert after[:len(before)] == before  # every row written before the kill is kept
    keys = Counter((r["case_id"], r["op"], r["sample"]) for r in map(json.loads, after))
    assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1][:5]
    from mrczbench.bench.suites import load_suite
    suite = load_suite("level-sweep", quick=True)
    assert {json.loads(r)["case_id"] for r in after} == {case.case_id for case in suite.cases()}


def _killed_convert(tmp_path):
    """A batch of 8 movies killed -9 while a third movie is being written."""
    rng = np.random.default_rng(11)
    src = tmp_path / "src"
    src.mkdir()
    stacks = {}
    for number in range(8):
        stacks[f"m{number}"] = rng.poisson(2.0, (8, 512, 512)).astype(np.int16)
        mrcz.write(src / f"m{number}.mrc", stacks[f"m{number}"])
    out = tmp_path / "out"
    args = ("convert", src, "--out", out, "--jobs", "1", "--threads", "1", "--level", "9")
    proc = start(*args)
    manifest = out / "manifest.jsonl"

    def writing_third():
        # done rows, not any rows: the manifest may hold rows before the output folder exists
        done = sum(json.loads(row)["status"] == "done" for row in _rows(manifest))
        return done >= 2 and (out / "src").is_dir() and \
            any(p.name.startswith(".") for p in (out / "src").iterdir())

    _wait_for(writing_third, proc, 300, "2 converted movies and a third in progress")
    kill_group(proc)
    return out, stacks, args, manifest


def test_kill_during_convert_then_resume(tmp_path):
    out, stacks, args, manifest = _killed_convert(tmp_path)
    before = _rows(manifest)
    for path in out.rglob("*.mrcz"):  # whatever has a final name is complete and right
        assert np.array_equal(mrcz.read(path), stacks[path.stem]), path
    resumed = cli(*args, "--only-unfinished", timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    after = _rows(manifest)
    assert after[:len(before)] == before  # nothing recorded before the kill is lost
    done = [json.loads(r) for r in after if json.loads(r)["status"] == "done"]
    outputs = Counter(Path(r["output"]).name for r in done)
    assert sorted(outputs) == [f"m{n}.mrcz" for n in range(8)] and max(outputs.values()) == 1
    verified = cli("verify", out)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for name, stack in stacks.items():  # outputs mirror the inputs' folder under --out
        assert np.array_equal(mrcz.read(out / "src" / f"{name}.mrcz"), stack)


def test_kill_during_convert_then_resume_leaves_no_temporary(tmp_path):
    out, _, args, _ = _killed_convert(tmp_path)
    assert cli(*args, "--only-unfinished", timeout=600).returncode == 0
    assert [p.name for p in (out / "src").iterdir() if p.name.startswith(".")] == []


# ----------------------------------------------------------------- non-regular files

def _no_hang(*args, seconds=8.0) -> subprocess.CompletedProcess:
    try:
        return cli(*args, timeout=seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"mrczbench {' '.join(map(str, args))} still running after {seconds:g} s")


@pytest.mark.parametrize("command", [("info",), ("datasets", "inspect")])
def test_fifo_input_is_refused_not_read(tmp_path, command):
    fifo = tmp_path / "movie.mrc"
    os.mkfifo(fifo)
    line = one_line_error(_no_hang(*command, fifo))
    assert "not a regular file" in line.lower() or "fifo" in line.lower()


def test_fifo_output_is_refused_and_kept(tmp_path, movie):
    path, _ = movie
    packed = tmp_path / "movie.mrcz"
    assert cli("compress", path, packed).returncode == 0
    fifo = tmp_path / "out.mrc"
    os.mkfifo(fifo)
    proc = _no_hang("decompress", packed, fifo)
    assert fifo.is_fifo()  # never replaced by a regular file
    one_line_error(proc)
