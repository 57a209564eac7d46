"""`bzip2`: Python's bz2 module (libbz2) at levels 1-9.

The file is a bzip2 stream of a plain MRC file (header + frames), so `bunzip2 movie.mrc.bz2`
gives a movie any MRC reader opens, and `bzip2 -t` checks it. In memory, only the frames are
compressed (like every other in-memory codec here).
"""
from __future__ import annotations

import bz2
import dataclasses
from pathlib import Path

import numpy as np

from mrczbench.atomic import atomic_output
from mrczbench.errors import FormatError
from mrczbench.formats import mrcraw
from mrczbench.formats.base import FormatConfig, integer, param
from mrczbench.formats.streams import _StreamFormat


@dataclasses.dataclass(frozen=True)
class Bzip2Config(FormatConfig):
    level: int = param(9, "integer 1-9 (bzip2 block size in 100 kB; 9 is bzip2's default)",
                       integer(1, 9))


class Bzip2Format(_StreamFormat):
    name = "bzip2"
    description = "Python bz2 (libbz2) stream of a plain MRC file"
    suffix = ".mrc.bz2"
    native_readers = ("relion", "cryosparc")  # .mrc.bz2 movies
    sweep_contenders = {"bzip2-9": {"level": 9}}
    Config = Bzip2Config
    threads_note = "ignored: libbz2 is single-threaded (see lbzip2 for the parallel tool)"

    def label(self) -> str:
        return f"bzip2-{self.config.level}"

    def compress(self, data: bytes) -> bytes:
        return bz2.compress(data, compresslevel=self.config.level)

    def decompress(self, blob: bytes) -> bytes:
        try:
            return bz2.decompress(blob)
        except (OSError, EOFError, ValueError) as exc:
            raise FormatError(f"not a complete bzip2 stream ({exc})") from None

    def write(self, path: Path, stack: np.ndarray) -> int:
        self.require_data(stack)
        # frame by frame: memory stays at one frame, not a second copy of the stack
        compressor = bz2.BZ2Compressor(self.config.level)
        with atomic_output(path) as out:
            out.write(compressor.compress(mrcraw.header_bytes(stack.shape, stack.dtype)))
            for frame in stack:
                out.write(compressor.compress(mrcraw.data_bytes(frame)))
            out.write(compressor.flush())
        return Path(path).stat().st_size
