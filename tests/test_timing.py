import os
import time

import pytest

from mrczbench.bench import timing


def test_calibrated_batch_reaches_the_minimum_duration():
    def work():
        return sum(range(200))

    loops = timing.calibrate_loops(work, 0.02)
    assert loops > 1
    seconds, cpu_seconds, result = timing.time_batch(work, loops)
    assert seconds >= 0.015  # allow a little scheduling noise below the 20 ms target
    assert result == sum(range(200))


def test_slow_call_needs_a_single_loop():
    assert timing.calibrate_loops(lambda: time.sleep(0.03), 0.02) == 1


def test_residency_of_a_freshly_read_file_is_one(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(1 << 20))
    path.read_bytes()
    assert timing.residency(path) == pytest.approx(1.0)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert timing.residency(empty) == 0.0


def _filesystem_type(path) -> str:
    """The type of the filesystem holding `path` (longest mount point prefix in /proc/mounts)."""
    path = os.path.realpath(path)
    best, kind = "", ""
    with open("/proc/mounts") as mounts:
        for line in mounts:
            _, point, fstype, *_ = line.split()
            point = point.replace("\\040", " ")
            if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                best, kind = point, fstype
    return kind


# where the page cache *is* the storage, nothing can be evicted
MEMORY_FILESYSTEMS = ("tmpfs", "ramfs")


@pytest.mark.parametrize("method", ["fadvise", "drop_caches"])
def test_eviction_empties_the_page_cache_for_the_file(tmp_path, method):
    if _filesystem_type(tmp_path) in MEMORY_FILESYSTEMS:
        pytest.skip(f"{tmp_path} is on {_filesystem_type(tmp_path)}: no backing store to evict to")
    if method == "drop_caches" and not os.environ.get("MRCZBENCH_TEST_DROP_CACHES"):
        # it empties the page cache of the whole machine, other users' jobs included
        pytest.skip("drop_caches is tested only with MRCZBENCH_TEST_DROP_CACHES=1 (dedicated machine)")
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(2 << 20))
    path.read_bytes()
    try:
        timing.evict(path, method)
    except PermissionError:
        pytest.skip(f"{method} not permitted here (not root?)")
    assert timing.residency(path) <= timing.COLD_RESIDENCY_LIMIT
    path.read_bytes()
    assert timing.residency(path) == pytest.approx(1.0)


def test_the_probe_chooses_a_method_that_evicts_or_says_none_does(tmp_path):
    method, note = timing.probe_eviction(tmp_path)
    assert not list(tmp_path.iterdir())  # probe file removed
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(1 << 20))
    path.read_bytes()
    if method == "none":
        assert "cold reads are marked invalid" in note
        try:
            timing.evict(path, "fadvise")
        except OSError:
            return
        assert timing.residency(path) > timing.COLD_RESIDENCY_LIMIT  # the probe was right
    else:
        timing.evict(path, method)
        assert timing.residency(path) <= timing.COLD_RESIDENCY_LIMIT
    assert timing.probe_eviction(tmp_path, "none") == ("none", "eviction disabled: cold reads are marked invalid")


def test_unknown_eviction_method_is_rejected(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="drop_caches, fadvise, none"):
        timing.evict(path, "magic")


# --- safe defaults and platforms without posix_fadvise / mincore ---------------------------

def test_auto_eviction_is_fadvise_and_never_drops_the_whole_cache(tmp_path, monkeypatch):
    def forbidden():
        raise AssertionError("auto must not empty the page cache of the whole machine")

    monkeypatch.setattr(timing, "drop_caches", forbidden)
    method, note = timing.probe_eviction(tmp_path)
    assert method in ("fadvise", "none")
    assert note.startswith("fadvise: ")
    assert not list(tmp_path.iterdir())


def test_probe_without_posix_fadvise_marks_cold_reads_not_measurable(tmp_path, monkeypatch):
    # macOS and Windows have no os.posix_fadvise: simulate that platform
    monkeypatch.delattr(os, "posix_fadvise")
    method, note = timing.probe_eviction(tmp_path)
    assert method == "none"
    assert "posix_fadvise is not available" in note and "not measurable" in note
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 4096)
    with pytest.raises(OSError, match="posix_fadvise is not available"):
        timing.evict(path, "fadvise")
    assert not list(tmp_path.glob(".evict-probe-*"))


def test_probe_without_mincore_marks_cold_reads_not_measurable(tmp_path, monkeypatch):
    # no mincore (Windows): the lazily loaded C library is absent
    monkeypatch.setattr(timing, "_LIBC", [None])
    method, note = timing.probe_eviction(tmp_path)
    assert method == "none"
    assert "mincore(2) is not available" in note
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(8192))
    # unknown residency counts as cached: a cold read is never claimed
    assert timing.residency(path) == 1.0
    assert timing.residency(path) > timing.COLD_RESIDENCY_LIMIT


def test_probe_on_a_network_filesystem_says_cold_reads_are_client_cold(tmp_path, monkeypatch):
    from mrczbench import system

    real = system.filesystem_of(tmp_path)
    assert real["network"] is False  # the test folder is local here
    monkeypatch.setattr(system, "filesystem_of",
                        lambda path: dict(real, fstype="nfs4", mount_point="/data", network=True))
    method, note = timing.probe_eviction(tmp_path)
    assert "nfs4 at /data is a network filesystem" in note
    assert "client-cold only" in note
