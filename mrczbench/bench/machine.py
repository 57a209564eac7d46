"""Environment capture for the run metadata file (what pyperf's _collect_metadata records,
plus what matters for compression and I/O: cache sizes, filesystem and device, libraries).

Everything is best effort: a value that cannot be read is None, never an exception."""
from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("mrczbench", "numpy", "blosc", "blosc2", "zstandard", "lz4", "tifffile", "imagecodecs",
             "mrcfile", "mrcz", "h5py", "hdf5plugin", "orjson", "msgpack", "pandas", "scipy")


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


def filesystem_of(path: str | Path) -> dict[str, Any]:
    """Mount point, filesystem type and device holding `path` (longest mount prefix)."""
    target = os.path.realpath(path)
    best = None
    for line in (_read("/proc/self/mountinfo") or "").splitlines():
        # fields: id parent major:minor root mountpoint options ... - fstype source superopts
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 2:
            continue
        mount_point = fields[4].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and (best is None or len(mount_point) > len(best["mount_point"])):
            best = {"mount_point": mount_point, "fstype": tail[0], "device": tail[1],
                    "mount_options": fields[5]}
    if best:
        block = Path("/sys/class/block") / os.path.basename(best["device"])
        rotational = _read(block / "queue" / "rotational")
        if rotational is not None:
            best["rotational"] = rotational == "1"
        best["scheduler"] = _read(block / "queue" / "scheduler")
    return best or {"mount_point": None, "fstype": None, "device": None}


def library_versions() -> dict[str, str | None]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(folder: str | Path | None = None) -> dict[str, Any]:
    folder = folder or Path(__file__).resolve().parents[2]
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def cpu_frequency_policy() -> dict[str, Any]:
    base = Path("/sys/devices/system/cpu/cpu0/cpufreq")
    return {"governor": _read(base / "scaling_governor"),
            "boost": _read("/sys/devices/system/cpu/cpufreq/boost")}


def capture(results_dir: str | Path | None = None) -> dict[str, Any]:
    """A JSON-ready description of this machine and software stack."""
    uname = platform.uname()
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    info = {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        **core_counts(),
        "cache_sizes": cache_sizes(),
        "cpu_frequency": cpu_frequency_policy(),
        "memory_bytes": memory_bytes(),
        "kernel": f"{uname.system} {uname.release}",
        "kernel_version": uname.version,
        "machine": uname.machine,
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "libraries": library_versions(),
        "git": git_commit(),
        "load_average": list(load) if load else None,
    }
    if results_dir is not None:
        info["filesystem"] = filesystem_of(results_dir)
    return info


# --- reading a capture back from run.json ---------------------------------------------------
# A run's `<run-id>.run.json` holds capture() under "machine"; these read it by the keys
# capture() writes (runs recorded before a key existed give None for it).

def recorded(run_meta: dict[str, Any]) -> dict[str, Any]:
    """The machine capture of a run.json (an empty dict when it has none)."""
    machine = run_meta.get("machine") if isinstance(run_meta, dict) else None
    return machine if isinstance(machine, dict) else {}


def recorded_cpu_model(run_meta: dict[str, Any]) -> str | None:
    return recorded(run_meta).get("cpu_model") or None


def recorded_physical_cores(run_meta: dict[str, Any]) -> int | None:
    cores = recorded(run_meta).get("physical_cores")
    return int(cores) if isinstance(cores, (int, float)) and not isinstance(cores, bool) and cores > 0 else None


def recorded_cache_bytes(run_meta: dict[str, Any], level: str) -> int | None:
    """Size in bytes of cache `level` ('L2', 'L3', 'L1d') as cache_sizes() recorded it."""
    from mrczbench.units import parse_size
    sizes = recorded(run_meta).get("cache_sizes")
    return parse_size(sizes.get(level)) if isinstance(sizes, dict) else None


def recorded_columns(run_meta: dict[str, Any]) -> dict[str, Any]:
    """The machine columns results.load_results adds to every row of a run, to tell machines
    apart: host, cpu_model, kernel, fstype."""
    machine = recorded(run_meta)
    filesystem = machine.get("filesystem")
    return {"host": machine.get("hostname"), "cpu_model": machine.get("cpu_model"),
            "kernel": machine.get("kernel"),
            "fstype": filesystem.get("fstype") if isinstance(filesystem, dict) else None}
