"""In-process byte-stream coders: `zstd` (zstandard) and `lz4` (lz4.frame); `_StreamFormat`,
their base, is also the base of `bzip2` (mrczbench.formats.bzip2).

lzbench-style baselines: the raw frames as one byte stream, no shuffle or other filter, so
they show what a general-purpose coder alone gives and what MRCZ's bitshuffle adds. They are
timed in memory like the other codecs; the command-line tools, timed as processes with their
file I/O, are the separate contenders `zstd-cli` and `lz4-cli` (mrczbench.formats.tools).

The file is one zstd frame (.mrc.zst) or one LZ4 frame (.mrc.lz4) of a plain MRC file (header
+ frames), as the command-line contenders write it, so `zstd -d` / `lz4 -d` gives a movie any
MRC reader opens. In memory only the frames are coded (like every other in-memory codec).
Threads: zstandard's own multi-threaded compression (ZSTD_c_nbWorkers; 1 thread = none); the
LZ4 frame format and zstd decompression are single-threaded.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mrczbench.atomic import atomic_output
from mrczbench.errors import FormatError
from mrczbench.formats import mrcraw
from mrczbench.formats.base import Format, FormatConfig, integer, param


def _raw_size(stack: np.ndarray) -> int:
    return mrcraw.HEADER_BYTES + stack.size * stack.dtype.itemsize


def _frames_from(raw: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise FormatError(f"decoded {len(raw)} bytes; {dtype.name} {tuple(shape)} needs {expected}")
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(shape).astype(dtype)


class _StreamFormat(Format):
    has_memory_codec = True
    lossless_dtypes = tuple(mrcraw.MODES)

    def compress(self, data: bytes) -> bytes:
        raise NotImplementedError

    def decompress(self, blob: bytes) -> bytes:
        raise NotImplementedError

    def encode(self, stack: np.ndarray) -> bytes:
        self.require_data(stack)
        return self.compress(mrcraw.data_bytes(stack))

    def decode(self, blob: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return _frames_from(self.decompress(blob), shape, dtype)

    def read(self, path: Path) -> np.ndarray:
        path = Path(path)
        if not path.is_file():
            raise FormatError(f"{path}: {'not a regular file' if path.exists() else 'no such file'}")
        try:
            return mrcraw.from_bytes(self.decompress(path.read_bytes()))
        except FormatError as exc:
            raise FormatError(f"{path}: {exc}") from None


@dataclasses.dataclass(frozen=True)
class ZstdConfig(FormatConfig):
    level: int = param(1, "integer 1-22 (1 as MRCZ's zstd-1; zstd's own default is 3)",
                       integer(1, 22))


class ZstdFormat(_StreamFormat):
    name = "zstd"
    description = "zstd in process (zstandard), one stream of the raw frames, no shuffle"
    suffix = ".mrc.zst"
    Config = ZstdConfig
    threads_note = ("zstandard multi-threaded compression (nbWorkers = threads; 1 = none); "
                    "decompression is single-threaded")

    def label(self) -> str:
        return f"zstd-{self.config.level} stream"

    def _compressor(self):
        import zstandard

        threads = self.config.threads
        return zstandard.ZstdCompressor(level=self.config.level,
                                        threads=threads if threads > 1 else 0)

    def compress(self, data: bytes) -> bytes:
        return self._compressor().compress(data)

    def decompress(self, blob: bytes) -> bytes:
        import zstandard

        reader = zstandard.ZstdDecompressor().decompressobj()
        try:
            raw = reader.decompress(blob)
        except zstandard.ZstdError as exc:
            raise FormatError(f"not a valid zstd stream ({exc})") from None
        if not reader.eof:
            raise FormatError("truncated zstd stream (the frame does not end)")
        return raw

    def write(self, path: Path, stack: np.ndarray) -> int:
        self.require_data(stack)
        with atomic_output(path) as out:
            # size= records the content size in the frame header, as one-shot compress() does
            with self._compressor().stream_writer(out, size=_raw_size(stack),
                                                  closefd=False) as writer:
                writer.write(mrcraw.header_bytes(stack.shape, stack.dtype))
                for frame in stack:
                    writer.write(mrcraw.data_bytes(frame))
        return Path(path).stat().st_size


@dataclasses.dataclass(frozen=True)
class Lz4Config(FormatConfig):
    level: int = param(1, "integer 1-16 (1-2: lz4 fast, lz4's default; 3-16: lz4hc)",
                       integer(1, 16))


class Lz4Format(_StreamFormat):
    name = "lz4"
    description = "LZ4 frame format in process (python-lz4), one stream of the raw frames, no shuffle"
    suffix = ".mrc.lz4"
    Config = Lz4Config
    threads_note = "ignored: the LZ4 frame format is single-threaded"

    def label(self) -> str:
        return f"lz4-{self.config.level} stream"

    def compress(self, data: bytes) -> bytes:
        import lz4.frame

        return lz4.frame.compress(data, compression_level=self.config.level, store_size=True)

    def decompress(self, blob: bytes) -> bytes:
        import lz4.frame

        reader = lz4.frame.LZ4FrameDecompressor()
        try:
            raw = reader.decompress(blob)
        except RuntimeError as exc:
            raise FormatError(f"not a valid LZ4 frame ({exc})") from None
        if not reader.eof:
            raise FormatError("truncated LZ4 frame (the frame does not end)")
        return raw

    def write(self, path: Path, stack: np.ndarray) -> int:
        import lz4.frame

        self.require_data(stack)
        compressor = lz4.frame.LZ4FrameCompressor(compression_level=self.config.level)
        with atomic_output(path) as out:
            out.write(compressor.begin(source_size=_raw_size(stack)))
            out.write(compressor.compress(mrcraw.header_bytes(stack.shape, stack.dtype)))
            for frame in stack:
                out.write(compressor.compress(mrcraw.data_bytes(frame)))
            out.write(compressor.flush())
        return Path(path).stat().st_size
