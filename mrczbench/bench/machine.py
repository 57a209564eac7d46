"""Environment capture for the run metadata file (what pyperf's _collect_metadata records,
plus what matters for compression and I/O: cache sizes, filesystem and device, libraries).
The machine facts it records come from mrczbench.system; reading a capture back from
run.json is mrczbench.store's.

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

from mrczbench.system import (cache_sizes, core_counts, cpu_frequency_policy, cpu_model,
                              filesystem_of, memory_bytes)

LIBRARIES = ("mrczbench", "numpy", "blosc", "blosc2", "zstandard", "lz4", "tifffile", "imagecodecs",
             "mrcfile", "mrcz", "h5py", "hdf5plugin", "orjson", "msgpack", "pandas", "scipy")


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
    from mrczbench.version import __version__

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


