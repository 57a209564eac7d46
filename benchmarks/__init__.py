"""asv (airspeed velocity) benchmarks for mrczbench's own code.

Layout: one bench_*.py module per area. Shared pieces live here: the test data, the
`require` import guard and the page-cache eviction used by cold reads.

Rules every benchmark here follows:
- module import is cheap and imports no mrczbench submodule: `asv continuous` discovers the
  benchmarks of the working tree and runs them against older commits too, where a module
  may not exist yet. Benchmarks call `require("mrczbench.x")` in `setup`, which skips them
  (NotImplementedError -> "n/a") on such commits. With MRCZBENCH_ASV_STRICT=1 (set by
  .ci/asv-smoke) a missing module is an error instead, so CI cannot pass by skipping.
- data is moderate (10 frames of 1024x1024, 10 MiB as int8) so each benchmark stays fast.
- benchmarks/scripts/ holds standalone scripts and has no __init__.py, so asv does not
  collect it (pkgutil only descends into packages).
"""
import functools
import importlib
import os

import numpy as np

FRAMES = 10
SHAPE = (1024, 1024)
DOSE = 1.0  # e/px/frame, counting-mode dose
SEED = 7
CODECS = ("blosclz", "lz4", "lz4hc", "zlib", "zstd")  # = mrczbench.mrcz.CODECS (contract)


def optional(name):
    """Import a module by name, or None on commits (or installs) that lack it.

    For setup_cache, which must not raise (asv marks the whole class failed)."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        if os.environ.get("MRCZBENCH_ASV_STRICT"):
            raise
        return None
    check_tree(module)
    return module


def check_tree(module):
    """With MRCZBENCH_ASV_TREE set (by .ci/asv-gate), an mrczbench module must come from that
    source tree: measuring the installed copy instead would compare a commit with itself."""
    tree = os.environ.get("MRCZBENCH_ASV_TREE")
    if tree and module.__name__.split(".")[0] == "mrczbench":
        found = os.path.realpath(module.__file__)
        if not found.startswith(os.path.join(os.path.realpath(tree), "")):
            raise RuntimeError(f"{module.__name__} comes from {found}, not from {tree}")


def require(name):
    """Import a module by name; on commits that lack it, skip the benchmark (for setup)."""
    module = optional(name)
    if module is None:
        raise NotImplementedError(f"{name} is not importable here")
    return module


@functools.lru_cache(maxsize=None)
def movie(frames=FRAMES, dtype="int8"):
    """The benchmark stack: seeded Poisson counts, (frames, 1024, 1024).

    Plain numpy on purpose, so the MRCZ benchmarks do not depend on mrczbench.movies.synthetic
    (which has benchmarks of its own). Cached per process; do not modify the array."""
    rng = np.random.default_rng(SEED)
    return rng.poisson(DOSE, (frames,) + SHAPE).astype(dtype)


def iter_movie_frames(frames, dtype="int8"):
    """The same kind of data one frame at a time (for large stacks written by streaming)."""
    rng = np.random.default_rng(SEED)
    for _ in range(frames):
        yield rng.poisson(DOSE, SHAPE).astype(dtype)


def evict(path):
    """Drop `path` from the page cache, off the clock (called in `setup`).

    fsync then posix_fadvise(POSIX_FADV_DONTNEED) on the file: needs no privileges and only
    touches this file (drop_caches would disturb everything else on the machine). Uses
    mrczbench.bench.timing's fadvise_dontneed and residency check when this commit has them; a
    file that stays cached (e.g. on tmpfs) skips the benchmark rather than time a warm read
    as a cold one."""
    timing = optional("mrczbench.bench.timing")
    if timing is not None:
        timing.fadvise_dontneed(path)
        left = timing.residency(path)
        if left > timing.COLD_RESIDENCY_LIMIT:
            raise NotImplementedError(f"cannot evict {path}: {left:.0%} still in page cache")
        return
    # Older commits without mrczbench.bench.timing: the same fsync + fadvise, inline.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
