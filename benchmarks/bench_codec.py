"""In-memory MRCZ compress/decompress (the "mrcz" format's encode/decode: the chunks an
MRCZ file holds, without file I/O), 10 frames of 1024x1024 int8, level 1."""
import functools

from benchmarks import CODECS, movie, require
from benchmarks.bench_mrcz import THREADS


@functools.lru_cache(maxsize=None)
def encoded(codec):
    """The compressed chunks of the benchmark stack (the bytes do not depend on threads)."""
    formats = require("mrczbench.formats")
    return formats.get_format("mrcz", codec=codec, level=1, threads=1).encode(movie())


class Memory:
    params = (CODECS, THREADS)
    param_names = ["codec", "threads"]

    def setup(self, codec, threads):
        formats = require("mrczbench.formats")
        self.format = formats.get_format("mrcz", codec=codec, level=1, threads=threads)
        self.data = movie()
        self.blob = encoded(codec)

    def time_compress(self, codec, threads):
        self.format.encode(self.data)

    def time_decompress(self, codec, threads):
        self.format.decode(self.blob, self.data.shape, self.data.dtype)
