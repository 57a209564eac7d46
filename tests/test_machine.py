import json
import os

from mrczbench.bench import machine


def test_capture_is_json_ready_and_describes_this_machine(tmp_path):
    info = machine.capture(tmp_path)
    json.dumps(info)  # must serialise
    assert info["logical_cpus"] == os.cpu_count()
    assert info["usable_cpus"] >= 1
    assert info["memory_bytes"] and info["memory_bytes"] > 0
    assert info["kernel"].startswith(os.uname().sysname)
    assert info["libraries"]["numpy"]
    assert info["filesystem"]["fstype"]
    assert "commit" in info["git"]


def test_cache_sizes_come_from_sysfs():
    sizes = machine.cache_sizes()
    if not os.path.isdir("/sys/devices/system/cpu/cpu0/cache"):
        assert sizes == {}
        return
    assert any(level.startswith("L1") for level in sizes)
    assert all(value[-1] in "KMG" for value in sizes.values())


def test_filesystem_of_root_is_found():
    found = machine.filesystem_of("/")
    assert found["mount_point"] == "/"
    assert found["fstype"]
