"""Facts about this machine that any layer may ask: CPUs and cores, caches, memory, the
filesystem holding a path (and whether it is a network filesystem), the CPU frequency policy.

Everything is best effort: a value that cannot be read is None, never an exception. The run
capture that records these facts in run.json is bench/machine.py."""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model() -> str | None:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or None


def core_counts() -> dict[str, Any]:
    logical = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    physical = set()
    current = {}
    for line in (_read("/proc/cpuinfo") or "").splitlines() + [""]:
        if not line.strip():
            if "core id" in current:
                physical.add((current.get("physical id"), current["core id"]))
            current = {}
            continue
        key, _, value = line.partition(":")
        current[key.strip()] = value.strip()
    return {"logical_cpus": logical, "usable_cpus": usable, "physical_cores": len(physical) or None}


def usable_cores() -> int:
    """CPUs this process may run on: the 'cores' in suite expressions such as '2*cores'."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cache_sizes() -> dict[str, str]:
    """{'L1d': '32K', 'L1i': '32K', 'L2': '512K', 'L3': '32768K'} from cpu0's sysfs entries."""
    found = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        level = _read(index / "level")
        kind = _read(index / "type") or ""
        size = _read(index / "size")
        if not level or not size:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        found[f"L{level}{suffix}"] = size
    return found


def memory_bytes() -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


# Filesystems whose data lives on another machine: evicting this client's page cache leaves
# the server's cache (and any client-side caching layer) warm, so a "cold" read is client-cold.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "gpfs", "lustre", "beegfs", "ceph", "glusterfs",
    "afs", "9p", "panfs", "orangefs", "pvfs2", "davfs", "ncpfs", "virtiofs",
})


def is_network_filesystem(fstype: str | None) -> bool:
    """True for NFS, SMB/CIFS, parallel filesystems (GPFS, Lustre, BeeGFS, Ceph, ...) and any
    FUSE filesystem (fuse.sshfs, fuse.s3fs, ...: their data is usually remote)."""
    if not fstype:
        return False
    fstype = fstype.lower()
    return fstype in NETWORK_FILESYSTEMS or fstype.startswith("fuse.")


def parse_mountinfo(text: str) -> list[dict[str, Any]]:
    """The mounts of a /proc/<pid>/mountinfo text: mount_point, fstype, device, mount_options."""
    mounts = []
    for line in text.splitlines():
        # fields: id parent major:minor root mountpoint options ... - fstype source superopts
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 6 or len(tail) < 2:
            continue
        mounts.append({"mount_point": fields[4].replace("\\040", " "), "fstype": tail[0],
                       "device": tail[1], "mount_options": fields[5]})
    return mounts


def mount_of(path: str | Path, mounts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The mount holding `path` (longest mount-point prefix; the last such mount wins, as the
    kernel's later mounts hide earlier ones on the same point)."""
    target = os.path.realpath(path)
    best = None
    for mount in mounts:
        point = mount["mount_point"]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best["mount_point"])):
            best = mount
    return best


def filesystem_of(path: str | Path) -> dict[str, Any]:
    """Mount point, filesystem type, device holding `path`, and whether it is a network
    filesystem (then cold reads are client-cold only)."""
    best = mount_of(path, parse_mountinfo(_read("/proc/self/mountinfo") or ""))
    if best:
        best = dict(best, network=is_network_filesystem(best["fstype"]))
        block = Path("/sys/class/block") / os.path.basename(best["device"])
        rotational = _read(block / "queue" / "rotational")
        if rotational is not None:
            best["rotational"] = rotational == "1"
        best["scheduler"] = _read(block / "queue" / "scheduler")
    return best or {"mount_point": None, "fstype": None, "device": None, "network": None}


def cpu_frequency_policy() -> dict[str, Any]:
    base = Path("/sys/devices/system/cpu/cpu0/cpufreq")
    return {"governor": _read(base / "scaling_governor"),
            "boost": _read("/sys/devices/system/cpu/cpufreq/boost")}


def available_memory() -> int | None:
    """Bytes a new allocation can take now (MemAvailable; free physical pages else; None
    where neither is known)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
