"""Compression ratio and efficiency vs the Shannon bound (track_*: one value, no timing).

Conventions as everywhere in mrczbench: ratio = stored/raw (0.37 = 37 % of the raw size,
header included in stored); efficiency = bound_ratio / ratio (1.0 = as small as any lossless
coder can get on i.i.d. counts). A ratio that grows, or an efficiency that drops, between
commits is a compression regression.
"""
import os

from benchmarks import CODECS, movie, require
from benchmarks.bench_mrcz import LEVELS


class Ratio:
    """mrczbench.mrcz's files per codec and level (python-mrcz's ratio, for comparison, is
    bench_mrcz.VsPythonMRCZ.track_ratio)."""

    params = (CODECS, LEVELS)
    param_names = ["codec", "level"]

    def setup(self, codec, level):
        entropy = require("mrczbench.movies.entropy")
        mrcz = require("mrczbench.mrcz")
        data = movie()
        path = os.path.abspath(f"ratio-{codec}-{level}.mrcz")
        mrcz.write(path, data, codec=codec, level=level, threads=2)
        self.ratio = os.path.getsize(path) / data.nbytes
        os.remove(path)
        self.bound = entropy.bound_ratio(data)

    def track_ratio(self, codec, level):
        return self.ratio

    track_ratio.unit = "stored/raw"

    def track_efficiency(self, codec, level):
        return self.bound / self.ratio

    track_efficiency.unit = "bound/stored"


def track_bound_ratio():
    """The Shannon bound of the benchmark stack itself (changes only with the data)."""
    return require("mrczbench.movies.entropy").bound_ratio(movie())


track_bound_ratio.unit = "stored/raw"
