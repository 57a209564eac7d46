"""Environment capture for the run metadata file (what pyperf's _collect_metadata records,
plus what matters for compression and I/O: cache sizes, filesystem and device, libraries).

Everything is best effort: a value that cannot be read is None, never an exception."""
from __future__ import annotations

import json
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


def library_versions() -> dict[str, str | None]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _checkout_state(folder: Path) -> dict[str, Any] | None:
    """commit and dirty flag of `folder` when it is the top of a git checkout, else None (a
    package folder inside someone else's repository is not our checkout)."""
    top = _git(folder, "rev-parse", "--show-toplevel")
    if not top or Path(top).resolve() != folder.resolve():
        return None
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return {"commit": _git(folder, "rev-parse", "HEAD"),
            "dirty": bool(status) if status is not None else None}


def _direct_url() -> dict[str, Any] | None:
    """The installed distribution's PEP 610 direct_url.json (pip install . / -e / git+URL)."""
    try:
        text = metadata.distribution("mrczbench").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def mrczbench_source() -> dict[str, Any]:
    """Which mrczbench ran: version, and commit where known. Taken from the package itself,
    never from the current folder: (1) the imported package is in a checkout of mrczbench
    (source tree, PYTHONPATH or editable install): that checkout's HEAD and dirty flag;
    (2) installed from a VCS URL: the commit PEP 610's direct_url.json records; (3) installed
    from a folder or wheel: its URL, commit None."""
    from mrczbench import __version__

    info: dict[str, Any] = {"version": __version__, "commit": None, "dirty": None, "from": None}
    package_root = Path(__file__).resolve().parents[2]
    if (package_root / "pyproject.toml").is_file():
        state = _checkout_state(package_root)
        if state:
            return {**info, **state, "from": f"checkout {package_root}"}
    direct = _direct_url() or {}
    if direct.get("url"):
        info["from"] = direct["url"]
        vcs = direct.get("vcs_info") or {}
        if vcs.get("commit_id"):
            info["commit"] = vcs["commit_id"]
    return info


def cpu_frequency_policy() -> dict[str, Any]:
    base = Path("/sys/devices/system/cpu/cpu0/cpufreq")
    return {"governor": _read(base / "scaling_governor"),
            "boost": _read("/sys/devices/system/cpu/cpufreq/boost")}


def capture(results_dir: str | Path | None = None) -> dict[str, Any]:
    """A JSON-ready description of this machine and software stack."""
    uname = platform.uname()
    source = mrczbench_source()
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
        "mrczbench": source,
        # kept for readers of older run files: the same commit, of mrczbench, not of the cwd
        "git": {"commit": source["commit"], "dirty": source["dirty"]},
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
