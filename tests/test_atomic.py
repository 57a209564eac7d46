"""mrczbench.atomic: what an atomic write may replace, leftovers of killed writers, and
write errors of the place written to (issue 14 #2, #8, stale temporary files)."""
import os
import socket
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mrczbench import mrcz
from mrczbench.atomic import atomic_output, atomic_path, sweep_stale_temporaries
from mrczbench.cli import main
from mrczbench.errors import MrczbenchError


def special_files(tmp_path):
    """A FIFO, a socket and a symlink to a device, each under an output name."""
    fifo = tmp_path / "fifo.mrc"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock.mrc"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    device = tmp_path / "null.mrc"
    device.symlink_to("/dev/null")
    return {"FIFO": fifo, "socket": sock_path, "character device": device}, sock


@pytest.mark.parametrize("writer", ["atomic_output", "atomic_path"])
def test_non_regular_target_is_never_replaced(tmp_path, writer):
    targets, sock = special_files(tmp_path)
    try:
        for kind, target in targets.items():
            before = os.stat(target).st_mode
            with pytest.raises(MrczbenchError, match=f"is a {kind}.*not a regular file"):
                if writer == "atomic_output":
                    with atomic_output(target) as handle:
                        handle.write(b"data")
                else:
                    with atomic_path(target) as tmp:
                        tmp.write_bytes(b"data")
            assert os.stat(target).st_mode == before and not stat.S_ISREG(before)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.mrc", "null.mrc", "sock.mrc"]
    finally:
        sock.close()


def test_decompress_onto_a_device_or_fifo_is_one_line_exit_2(tmp_path, capsys):
    mrcz.write(tmp_path / "in.mrcz", np.ones((2, 8, 8), np.int16), codec="zstd")
    targets, sock = special_files(tmp_path)
    try:
        for kind, target in targets.items():
            assert main(["decompress", str(tmp_path / "in.mrcz"), str(target)]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"is a {kind}" in err
            assert not stat.S_ISREG(os.stat(target).st_mode)
    finally:
        sock.close()


# /dev/full itself is deliberately not a test target: run against a writer with the defect,
# the test would replace the machine's /dev/full with a regular file. A symlink to /dev/null
# (above) takes the same path through check_target.


# ---------------------------------------------------------------- killed writers


def test_leftover_of_a_killed_writer_is_removed_on_the_next_write(tmp_path, capsys):
    script = textwrap.dedent(f"""
        import os, signal
        from mrczbench.atomic import atomic_output
        with atomic_output({str(tmp_path / 'out.mrcz')!r}) as handle:
            handle.write(b"x" * 100000)
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        """)
    result = subprocess.run([sys.executable, "-c", script], env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert result.returncode == -9
    (leftover,) = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftover.name.startswith(".out.mrcz.") and not (tmp_path / "out.mrcz").exists()
    ours_alive = tmp_path / f".other.mrcz.{leftover.name.split('.')[3].split('-')[0]}-{os.getpid()}-abcdefgh.tmp"
    ours_alive.write_bytes(b"a write in progress")  # a live process: kept
    users = tmp_path / ".notes.tmp"
    users.write_bytes(b"not ours")  # another naming: kept
    removed = sweep_stale_temporaries(tmp_path)
    assert removed == [leftover] and ours_alive.exists() and users.exists()
    assert "removed 1 temporary file(s)" in capsys.readouterr().err


# ---------------------------------------------------------------- read-only and full places


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder where writing fails: a read-only tmpfs (as root) or a mode 555 folder."""
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "x").mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder, "permission denied"
        folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder, "read-only file system"
    subprocess.run(["umount", str(folder)], check=True)


def reference_results():
    from pathlib import Path
    folder = Path(__file__).resolve().parent.parent / "results" / "reference" / "dose-sweep"
    found = sorted(folder.glob("*.jsonl"))
    if not found:
        pytest.skip("results/reference/dose-sweep holds no result file")
    return found[0]


def test_read_only_place_is_one_line_for_every_writer(tmp_path, read_only_dir, capsys):
    folder, reason = read_only_dir
    mrcz.write(tmp_path / "in.mrcz", np.ones((2, 8, 8), np.int16), codec="zstd")
    result = str(reference_results())
    commands = [["compress", str(tmp_path / "in.mrcz"), str(folder / "o.mrcz")],
                ["decompress", str(tmp_path / "in.mrcz"), str(folder / "o.mrc")],
                ["report", result, "--out", str(folder / "report")],
                ["compare", result, result, "--csv", str(folder / "c.csv")],
                ["run", "--suite", "dose-sweep", "--quick", "--out", str(folder / "run"),
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress"]]
    for argv in commands:
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert err.count("\n") == 1 and reason in err and "Traceback" not in err, (argv, err)


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path, capsys):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        np.save(tmp_path / "big.npy", np.random.default_rng(0).integers(0, 2 ** 15, (4, 128, 128), np.int16))
        assert main(["decompress", str(tmp_path / "big.npy"), str(folder / "o.mrc")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no space left on device" in err and "o.mrc" in err
        assert list(folder.iterdir()) == []
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_out_naming_an_existing_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    result = str(reference_results())
    for argv in (["report", result, "--out", str(tmp_path / "file")],
                 ["run", "--suite", "dose-sweep", "--quick", "--out", str(tmp_path / "file"),
                  "--cache-dir", str(tmp_path / "cache"), "--no-progress"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "file" in err and "Traceback" not in err, err
    assert (tmp_path / "file").read_text() == "mine"
