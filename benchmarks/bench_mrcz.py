"""MRCZ files: write and read through mrczbench.mrcz, warm and cold, beside python-mrcz.

Data: 10 frames of 1024x1024 int8 Poisson counts (10 MiB raw), see benchmarks/__init__.py.
"""
import os

from benchmarks import CODECS, evict, movie, optional, require

LEVELS = [1, 5]
THREADS = [1, 2]
IMPLS = ["mrczbench", "python-mrcz"]  # ours and the peer, on the same data and parameters
MODULES = {"mrczbench": "mrczbench.mrcz", "python-mrcz": "mrcz"}
PEER_THREADS = 2  # the peer comparisons use both cores of the CI machine


def write_with(impl, path, data, codec, level=1, threads=PEER_THREADS):
    if impl == "mrczbench":
        require(MODULES[impl]).write(path, data, codec=codec, level=level, threads=threads)
    else:
        require(MODULES[impl]).writeMRC(data, path, compressor=codec, clevel=level, n_threads=threads)


def read_with(impl, path, threads=PEER_THREADS):
    if impl == "mrczbench":
        return require(MODULES[impl]).read(path, threads=threads)
    return require(MODULES[impl]).readMRC(path, n_threads=threads)[0]


def write_files(impls, codecs, levels):
    """setup_cache helper: one file per (impl, codec, level) in asv's cache folder.

    Returns {"impl codec level": absolute path}, or {} when a module is missing (setup then
    skips; setup_cache itself must not raise)."""
    if any(optional(MODULES[impl]) is None for impl in impls):
        return {}
    data = movie()
    paths = {}
    for impl in impls:
        for codec in codecs:
            for level in levels:
                path = os.path.abspath(f"{impl}-{codec}-{level}.mrcz")
                write_with(impl, path, data, codec, level)
                paths[f"{impl} {codec} {level}"] = path
    return paths


class Write:
    """Write the stack to an MRCZ file (into the page cache; atomic rename included)."""

    params = (CODECS, LEVELS, THREADS)
    param_names = ["codec", "level", "threads"]

    def setup(self, codec, level, threads):
        self.mrcz = require("mrczbench.mrcz")
        self.data = movie()
        self.path = os.path.abspath(f"write-{codec}-{level}-{threads}.mrcz")

    def time_write(self, codec, level, threads):
        self.mrcz.write(self.path, self.data, codec=codec, level=level, threads=threads)


class Read:
    """Read the whole stack back (warm: the file is in the page cache), level 1."""

    params = (CODECS, THREADS)
    param_names = ["codec", "threads"]

    def setup_cache(self):
        return write_files(["mrczbench"], CODECS, [1])

    def setup(self, paths, codec, threads):
        self.mrcz = require("mrczbench.mrcz")
        self.path = paths[f"mrczbench {codec} 1"]

    def time_read(self, paths, codec, threads):
        self.mrcz.read(self.path, threads=threads)


class ReadFrame:
    """Random access: one frame out of the middle of the stack (zstd, level 1)."""

    def setup_cache(self):
        return write_files(["mrczbench"], ["zstd"], [1])

    def setup(self, paths):
        self.mrcz = require("mrczbench.mrcz")
        self.path = paths["mrczbench zstd 1"]

    def time_read_one_frame(self, paths):
        self.mrcz.read(self.path, frames=5)


class ColdRead:
    """Read the whole stack with the file evicted from the page cache before each sample.

    Eviction happens in setup, which asv repeats before every sample, so it is off the
    clock; number = 1 so each sample is exactly one cold read."""

    params = (IMPLS, CODECS)
    param_names = ["impl", "codec"]
    number = 1
    repeat = 6
    warmup_time = 0

    def setup_cache(self):
        return write_files(IMPLS, CODECS, [1])

    def setup(self, paths, impl, codec):
        require("mrczbench.mrcz")
        require("mrcz")
        self.path = paths[f"{impl} {codec} 1"]
        evict(self.path)

    def time_read_cold(self, paths, impl, codec):
        read_with(impl, self.path)


class VsPythonMRCZ:
    """Our writer and reader beside python-mrcz's writeMRC/readMRC, same data and settings
    (level 1, 2 threads), so a regression against the peer shows up in the same run."""

    params = (IMPLS, CODECS)
    param_names = ["impl", "codec"]

    def setup_cache(self):
        return write_files(IMPLS, CODECS, [1])

    def setup(self, paths, impl, codec):
        require("mrczbench.mrcz")
        require("mrcz")
        self.data = movie()
        self.path = paths[f"{impl} {codec} 1"]
        self.out = os.path.abspath(f"peer-out-{impl}-{codec}.mrcz")

    def time_write(self, paths, impl, codec):
        write_with(impl, self.out, self.data, codec)

    def time_read(self, paths, impl, codec):
        read_with(impl, self.path)

    def track_ratio(self, paths, impl, codec):
        return os.path.getsize(self.path) / self.data.nbytes

    track_ratio.unit = "stored/raw"
