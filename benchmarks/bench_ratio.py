"""Compression ratio, stored bytes and efficiency vs the Shannon bound (track_*: one value,
no timing; deterministic: fixed seed, sizes and settings, so any change between two commits
is a change of the code and .ci/asv-gate fails on any regression).

Conventions as everywhere in mrczbench: ratio = stored/raw (0.37 = 37 % of the raw size,
header included in stored); efficiency = bound_ratio / ratio (1.0 = as small as any lossless
coder can get on i.i.d. counts). A ratio or stored size that grows, or an efficiency that
drops, between commits is a compression regression.
"""
import os

from benchmarks import CODECS, movie, optional, require
from benchmarks.bench_mrcz import LEVELS


class Ratio:
    """mrczbench.mrcz's files per codec and level, written with the default filter and block
    size (a changed default shows up here), 2 threads (python-mrcz's ratio, for comparison,
    is bench_mrcz.VsPythonMRCZ.track_ratio)."""

    params = (CODECS, LEVELS)
    param_names = ["codec", "level"]

    def setup_cache(self):
        # All files written once, in one process (each track_ would otherwise redo them).
        mrcz = optional("mrczbench.mrcz")
        entropy = optional("mrczbench.movies.entropy")
        if mrcz is None or entropy is None:
            return {}  # setup then skips (setup_cache itself must not raise)
        data = movie()
        stored = {}
        for codec in CODECS:
            for level in LEVELS:
                path = os.path.abspath(f"ratio-{codec}-{level}.mrcz")
                mrcz.write(path, data, codec=codec, level=level, threads=2)
                stored[f"{codec} {level}"] = os.path.getsize(path)
                os.remove(path)
        return {"stored": stored, "raw": data.nbytes, "bound": entropy.bound_ratio(data)}

    def setup(self, sizes, codec, level):
        if not sizes:
            raise NotImplementedError("mrczbench.mrcz or mrczbench.movies.entropy is missing")
        self.stored = sizes["stored"][f"{codec} {level}"]
        self.ratio = self.stored / sizes["raw"]
        self.bound = sizes["bound"]

    def track_ratio(self, sizes, codec, level):
        return self.ratio

    track_ratio.unit = "stored/raw"

    def track_stored_bytes(self, sizes, codec, level):
        return self.stored

    track_stored_bytes.unit = "bytes"

    def track_efficiency(self, sizes, codec, level):
        return self.bound / self.ratio

    track_efficiency.unit = "bound/stored"


def track_bound_ratio():
    """The Shannon bound of the benchmark stack itself (changes only with the data)."""
    return require("mrczbench.movies.entropy").bound_ratio(movie())


track_bound_ratio.unit = "stored/raw"
