"""Clocks, calibrated loops, page-cache eviction and residency (mincore).

Two regimes are measured separately (the design guide's "Measuring honestly", summarised in docs/DESIGN.md):
- in memory: a call is repeated in a loop calibrated so that one batch lasts at least
  `min_seconds` (the clock's resolution and call overhead then vanish); a sample is the batch
  time divided by the loop count;
- file I/O: one call per sample. Before a cold read the file's pages are evicted off the clock
  and the residency (fraction of the file's pages still in the page cache) is measured with
  mincore(2); a cold sample whose residency is above COLD_RESIDENCY_LIMIT is invalid.

Eviction is safe on shared machines by default: `fadvise` (fsync + posix_fadvise DONTNEED)
drops only the benchmark's own files. `drop_caches` empties the whole machine's page cache,
other users' jobs included, so it is used only when asked for (`--eviction drop_caches`).
Where posix_fadvise or mincore do not exist (macOS, Windows), `probe_eviction` says why and
cold reads are marked not measurable; nothing raises. On a network filesystem the client's
residency says nothing about the server's cache: the probe's note says so (and run.json's
machine.filesystem.network is true, mrczbench.system).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import gc
import math
import mmap
import os
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

clock = time.perf_counter
# CPU time of the whole process, all its threads (blosc's included): CPU/wall of a sample
# shows whether its threads ran or waited for a core (mrczbench.analysis.stats.starved_samples)
cpu_clock = time.process_time

# A cold read with more than this fraction of its pages cached is not cold.
COLD_RESIDENCY_LIMIT = 0.02

EVICTION_METHODS = ("drop_caches", "fadvise", "none")
DEFAULT_EVICTION = "fadvise"  # what 'auto' means: never the whole machine's cache unless asked
DROP_CACHES = "/proc/sys/vm/drop_caches"


# --- in-memory loops --------------------------------------------------------------------------

class Batch(NamedTuple):
    seconds: float       # wall seconds of all the loops
    cpu_seconds: float   # process CPU seconds of all the loops
    result: Any          # the last call's result


def time_batch(func: Callable[[], Any], loops: int) -> Batch:
    """Wall and CPU seconds for `loops` calls of func (garbage collection paused, as timeit
    does), and the last call's result so the caller can verify it off the clock."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        result = None
        cpu_start = cpu_clock()
        start = clock()
        for _ in range(loops):
            result = func()
        elapsed = clock() - start
        cpu = cpu_clock() - cpu_start
    finally:
        if gc_was_enabled:
            gc.enable()
    return Batch(elapsed, cpu, result)


def calibrate_loops(func: Callable[[], Any], min_seconds: float, max_loops: int = 1_000_000) -> int:
    """Smallest loop count whose batch lasts at least `min_seconds` (pyperf-style: grow the
    count until one batch is long enough). The calibration calls double as warm-up."""
    loops = 1
    while True:
        elapsed = time_batch(func, loops).seconds
        if elapsed >= min_seconds or loops >= max_loops:
            return loops
        if elapsed <= 0:
            loops *= 10
            continue
        # Aim 20 % above the target so the measured batches do not fall just short of it.
        wanted = math.ceil(loops * min_seconds * 1.2 / elapsed)
        loops = min(max_loops, max(loops * 2, wanted))


# --- residency (mincore) ----------------------------------------------------------------------

_MAP_FAILED = ctypes.c_void_p(-1).value
PAGE_SIZE = mmap.PAGESIZE
_LIBC: list = []  # [libc] once loaded, [None] where mincore cannot be called (loaded lazily)


def _mincore_libc():
    """The C library with mmap/munmap/mincore typed for ctypes, or None where any is missing
    (Windows has no libc of that name and no mincore; mmap.PROT_READ is POSIX only)."""
    if not _LIBC:
        libc = None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            libc.mmap.restype = ctypes.c_void_p
            libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                                  ctypes.c_int, ctypes.c_long]
            libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
            libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
            if not hasattr(mmap, "PROT_READ") or not hasattr(mmap, "MAP_SHARED"):
                libc = None
        except (OSError, TypeError, AttributeError):
            libc = None
        _LIBC.append(libc)
    return _LIBC[0]


def residency_unmeasurable() -> str | None:
    """None where residency() can measure, else why not (one line)."""
    if _mincore_libc() is None:
        return "mincore(2) is not available on this platform, so page-cache residency cannot be measured"
    return None


def residency(path: str | os.PathLike) -> float:
    """Fraction (0-1) of the file's pages resident in the page cache, via mmap + mincore.

    Mapping a file does not read it (no MAP_POPULATE), so measuring does not warm the cache.
    Where mincore does not exist the answer is 1.0: a file that cannot be shown to be out of
    the cache counts as cached, so no cold read is ever claimed there."""
    libc = _mincore_libc()
    if libc is None:
        return 1.0
    size = os.path.getsize(path)
    if size == 0:
        return 0.0
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, _MAP_FAILED):
            err = ctypes.get_errno()
            raise OSError(err, f"mmap failed: {os.strerror(err)}", str(path))
        try:
            pages = (size + PAGE_SIZE - 1) // PAGE_SIZE
            vector = (ctypes.c_ubyte * pages)()
            if libc.mincore(ctypes.c_void_p(address), size, vector) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"mincore failed: {os.strerror(err)}", str(path))
            resident = sum(1 for flag in vector if flag & 1)
        finally:
            libc.munmap(ctypes.c_void_p(address), size)
    finally:
        os.close(fd)
    return resident / pages


# --- eviction ---------------------------------------------------------------------------------

def fsync_path(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a folder so a rename inside it is durable too."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_caches() -> None:
    """`sync; echo 3 > /proc/sys/vm/drop_caches`: clean every page so all of them can go."""
    os.sync()
    with open(DROP_CACHES, "w") as handle:
        handle.write("3\n")


def fadvise_unavailable() -> str | None:
    """None where posix_fadvise exists (Linux, the BSDs), else why fadvise cannot evict."""
    if not hasattr(os, "posix_fadvise") or not hasattr(os, "POSIX_FADV_DONTNEED"):
        return "os.posix_fadvise is not available on this platform (macOS, Windows)"
    return None


def fadvise_dontneed(path: str | os.PathLike) -> None:
    """fsync (dirty pages cannot be dropped) then ask the kernel to drop the file's pages."""
    reason = fadvise_unavailable()
    if reason:
        raise OSError(errno.ENOTSUP, reason)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def evict(path: str | os.PathLike, method: str) -> None:
    """Evict `path` from the page cache with `method` (off the clock)."""
    if method == "drop_caches":
        drop_caches()
    elif method == "fadvise":
        fadvise_dontneed(path)
    elif method != "none":
        raise ValueError(f"eviction method: expected one of {', '.join(EVICTION_METHODS)}. Got {method!r}")


def probe_eviction(folder: str | os.PathLike, preferred: str = "auto") -> tuple[str, str]:
    """Find an eviction method that works on `folder`'s filesystem: (method, note).

    'auto' (the default) is fadvise: only the benchmark's own files leave the cache.
    drop_caches is tried only when asked for: it empties the page cache of the whole machine.
    A 4 MiB probe file is written and read (cached); the method is kept when the file's
    residency afterwards is below the limit. Otherwise, or where posix_fadvise or mincore do
    not exist, the method is 'none' and the note says why cold reads are not measurable."""
    if preferred == "none":
        return "none", "eviction disabled: cold reads are marked invalid"
    method = DEFAULT_EVICTION if preferred == "auto" else preferred
    if method not in EVICTION_METHODS:
        raise ValueError(f"eviction method: expected auto or one of {', '.join(EVICTION_METHODS)}. "
                         f"Got {preferred!r}")
    network = network_note(folder)
    cannot = residency_unmeasurable() or (fadvise_unavailable() if method == "fadvise" else None)
    if cannot:
        return "none", f"{method}: {cannot}: cold reads are not measurable here (marked invalid)"
    probe = Path(folder) / f".evict-probe-{os.getpid()}"
    try:
        probe.write_bytes(os.urandom(4 << 20))
        probe.read_bytes()  # make sure the pages are cached before trying
        try:
            evict(probe, method)
        except OSError as exc:
            problem = f"{method}: {exc.strerror or exc}"
        else:
            left = residency(probe)
            if left <= COLD_RESIDENCY_LIMIT:
                return method, f"{method}: residency {left:.1%} after eviction" + network
            problem = f"{method}: residency still {left:.0%}"
    finally:
        try:
            probe.unlink()
        except FileNotFoundError:
            pass
    return "none", f"{problem}: cold reads are marked invalid" + network


def network_note(folder: str | os.PathLike) -> str:
    """'' on a local filesystem; on a network one, why its cold reads are client-cold only."""
    from mrczbench.system import filesystem_of

    found = filesystem_of(folder)
    if not found.get("network"):
        return ""
    return (f"; {found['fstype']} at {found['mount_point']} is a network filesystem: eviction "
            f"empties this client's cache, not the server's, so cold reads are client-cold only")
