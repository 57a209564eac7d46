import json
import os
import subprocess
from pathlib import Path

import pytest

from mrczbench import system
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
    assert info["mrczbench"]["version"]
    assert info["filesystem"]["network"] is False  # pytest's tmp_path is on a local disk here


def test_cache_sizes_come_from_sysfs():
    sizes = system.cache_sizes()
    if not os.path.isdir("/sys/devices/system/cpu/cpu0/cache"):
        assert sizes == {}
        return
    assert any(level.startswith("L1") for level in sizes)
    assert all(value[-1] in "KMG" for value in sizes.values())


def test_filesystem_of_root_is_found():
    found = system.filesystem_of("/")
    assert found["mount_point"] == "/"
    assert found["fstype"]


MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:35 / /data rw,relatime shared:20 - nfs4 server:/export rw,vers=4.2
41 40 0:36 / /data/local rw - xfs /dev/sdb1 rw
42 22 0:37 / /mnt/my\\040share rw - cifs //nas/share rw
43 22 0:38 / /home/me/remote rw - fuse.sshfs me@host:/ rw
44 22 0:39 / /scratch rw - lustre 10.0.0.1@tcp:/fs rw
"""


@pytest.mark.parametrize("fstype, network", [
    ("nfs", True), ("nfs4", True), ("cifs", True), ("smb3", True), ("gpfs", True),
    ("lustre", True), ("beegfs", True), ("ceph", True), ("fuse.sshfs", True), ("fuse.s3fs", True),
    ("ext4", False), ("xfs", False), ("btrfs", False), ("tmpfs", False), ("overlay", False),
    ("fuseblk", False), ("", False), (None, False)])
def test_network_filesystems_are_recognised(fstype, network):
    assert system.is_network_filesystem(fstype) is network


@pytest.mark.parametrize("path, mount_point, fstype", [
    ("/data/run1", "/data", "nfs4"), ("/data/local/x", "/data/local", "xfs"),
    ("/mnt/my share/a", "/mnt/my share", "cifs"), ("/home/me/remote", "/home/me/remote", "fuse.sshfs"),
    ("/scratch/u/r", "/scratch", "lustre"), ("/database", "/", "ext4"), ("/home/me", "/", "ext4")])
def test_mount_of_a_path_is_the_longest_mount_prefix(path, mount_point, fstype):
    found = system.mount_of(path, system.parse_mountinfo(MOUNTINFO))
    assert (found["mount_point"], found["fstype"]) == (mount_point, fstype)


def test_this_machines_mountinfo_parses_and_classifies():
    text = Path("/proc/self/mountinfo").read_text() if Path("/proc/self/mountinfo").exists() else ""
    if not text:
        pytest.skip("no /proc/self/mountinfo (not Linux)")
    mounts = system.parse_mountinfo(text)
    assert len(mounts) == len([line for line in text.splitlines() if " - " in line])
    assert any(m["mount_point"] == "/" for m in mounts)
    found = system.filesystem_of("/")
    assert found["network"] == system.is_network_filesystem(found["fstype"])


def test_version_comes_from_the_package_not_the_current_folder(tmp_path, monkeypatch):
    # run from inside another git repository: its commit must not be recorded as ours
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-q", "--allow-empty", "-m", "other project"], check=True)
    other = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"],
                           capture_output=True, text=True, check=True).stdout.strip()
    monkeypatch.chdir(tmp_path)
    source = machine.mrczbench_source()
    assert source["commit"] != other
    package_root = Path(machine.__file__).resolve().parents[2]
    ours = subprocess.run(["git", "-C", str(package_root), "rev-parse", "HEAD"],
                          capture_output=True, text=True)
    if (package_root / "pyproject.toml").is_file() and ours.returncode == 0:
        assert source["commit"] == ours.stdout.strip()
