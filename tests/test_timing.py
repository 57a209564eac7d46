import os
import time

import pytest

from mrczbench.bench import timing


def test_calibrated_batch_reaches_the_minimum_duration():
    def work():
        return sum(range(200))

    loops = timing.calibrate_loops(work, 0.02)
    assert loops > 1
    seconds, result = timing.time_batch(work, loops)
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


@pytest.mark.parametrize("method", ["fadvise", "drop_caches"])
def test_eviction_empties_the_page_cache_for_the_file(tmp_path, method):
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(2 << 20))
    path.read_bytes()
    try:
        timing.evict(path, method)
    except PermissionError:
        pytest.skip(f"{method} not permitted here (not root?)")
    after = timing.residency(path)
    if after > timing.COLD_RESIDENCY_LIMIT:
        pytest.skip(f"{method} does not evict on this filesystem (residency {after:.0%})")
    assert after <= timing.COLD_RESIDENCY_LIMIT
    path.read_bytes()
    assert timing.residency(path) == pytest.approx(1.0)


def test_probe_reports_a_method_and_a_note(tmp_path):
    method, note = timing.probe_eviction(tmp_path)
    assert method in timing.EVICTION_METHODS
    assert note
    assert not list(tmp_path.iterdir())  # probe file removed
    assert timing.probe_eviction(tmp_path, "none")[0] == "none"


def test_unknown_eviction_method_is_rejected(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="drop_caches, fadvise, none"):
        timing.evict(path, "magic")
