"""The MRC family, written by the reference codec `mrczbench.mrcz`: `mrc`, `mrcz`, `mrc-uint4`.

- `mrc`: plain MRC, the uncompressed baseline. In memory it is a copy of the frames.
- `mrcz`: MRCZ, one blosc chunk per frame. In memory it produces exactly the chunks the file
  holds after its header and decodes them, through the same chunk layer as
  mrczbench.mrcz.write/read (mrczbench.mrc.chunks: same blocksize, frames in parallel, each
  chunk header checked, each chunk decoded straight into its frame).
- `mrc-uint4`: IMOD/SerialEM mode 101, two 4-bit pixels per byte, left pixel in the low
  nibble, rows padded to (nx+1)//2 bytes. Values outside 0-15 cannot be stored: check_data
  says so and write/encode refuse (IMOD would clamp them silently; this benchmark never does).
  Reading gives uint8 (python-mrcz and IMOD read mode 101 as unsigned): for int8 counts 0-15
  these are the same bytes.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mrczbench.errors import FormatError, MRCZError
from mrczbench.formats import mrcraw
from mrczbench.formats.base import (Format, FormatConfig, blocksize, blosc_label, integer, one_of,
                                    param)

from mrczbench.mrc.header import CODECS, DTYPE_MODES

FILTERS = ("bitshuffle", "shuffle", "none")
# what mrczbench.mrcz stores exactly; uint8 goes in as mode 0 (the same bytes as int8)
MRC_DTYPES = tuple(dtype.name for dtype in DTYPE_MODES)


def _codec_module():
    import mrczbench.mrcz as codec

    return codec


class _MrcFamily(Format):
    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            _codec_module()
        except ImportError as exc:
            return f"the reference codec mrczbench.mrcz cannot be imported: {exc}"
        return None

    def read(self, path: Path) -> np.ndarray:
        try:
            return _codec_module().read(Path(path), threads=self.config.threads)
        except MRCZError as exc:
            raise FormatError(str(exc)) from None


# --- mrc ----------------------------------------------------------------------------------
class MrcFormat(_MrcFamily):
    name = "mrc"
    description = "plain MRC (mrczbench.mrcz, no compression): the uncompressed baseline"
    suffix = ".mrc"
    native_readers = ("relion", "cryosparc", "motioncor", "imod")
    sweep_contenders = {"mrc": {}}
    Config = FormatConfig
    has_memory_codec = True
    lossless_dtypes = MRC_DTYPES
    threads_note = "ignored: plain MRC is a copy"

    def label(self) -> str:
        return "mrc"

    def encode(self, stack: np.ndarray) -> bytes:
        self.require_data(stack)
        return mrcraw.data_bytes(stack)

    decodes_into = True

    def decode(self, blob: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        return np.frombuffer(blob, dtype=dtype.newbyteorder("<")).reshape(shape).astype(dtype)

    def decode_into(self, blob: bytes, out: np.ndarray) -> None:
        stored = np.frombuffer(blob, dtype=out.dtype.newbyteorder("<"))
        if stored.size != out.size:
            raise FormatError(f"mrc: {len(blob)} bytes hold {stored.size} values; expected {out.size}")
        np.copyto(out, stored.reshape(out.shape))

    def write(self, path: Path, stack: np.ndarray) -> int:
        self.require_data(stack)
        _codec_module().write(Path(path), stack, codec=None, threads=self.config.threads)
        return Path(path).stat().st_size


# --- mrcz ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MrczConfig(FormatConfig):
    codec: str = param("zstd", " | ".join(CODECS), one_of(*CODECS))
    level: int = param(1, "integer 1-9 (the paper: 1 for processing, 3 zstd / 5 zlib to archive)",
                       integer(1, 9))
    blocksize: int = param(0, "0 (automatic: MRCZ's rule, min(64 KiB, pixels per frame // "
                              "threads)) or bytes 1024-2147483647 (paper: 16 KB-4 MB)",
                           blocksize())
    filter: str = param("bitshuffle", "bitshuffle | shuffle | none (shuffle of int8 is a no-op)",
                        one_of(*FILTERS))


class MrczFormat(_MrcFamily):
    name = "mrcz"
    description = "MRCZ (mrczbench.mrcz): MRC header + one blosc chunk per frame"
    suffix = ".mrcz"
    sweep_contenders = {  # RELION does not read MRCZ: no native readers
        "mrcz zstd-1": {"codec": "zstd", "level": 1},
        "mrcz zstd-5": {"codec": "zstd", "level": 5},
        "mrcz lz4-1": {"codec": "lz4", "level": 1},
        "mrcz zlib-1": {"codec": "zlib", "level": 1},
    }
    archive_contenders = {"mrcz zstd-9": {"codec": "zstd", "level": 9}}
    Config = MrczConfig
    has_memory_codec = True
    lossless_dtypes = MRC_DTYPES
    threads_note = "blosc nthreads (compress and decompress)"

    def label(self) -> str:
        return blosc_label("mrcz", self.config)

    def blocksize_for(self, stack: np.ndarray) -> int:
        """The blosc block in bytes. 0 means MRCZ's automatic rule (python-mrcz's, used by
        mrczbench.mrcz): min(64 KiB, pixels per frame // threads). Computed here once so the
        file and the in-memory chunks use the same number."""
        if self.config.blocksize:
            return self.config.blocksize
        from mrczbench.mrc.chunks import DEFAULT_BLOCK_CAP

        return min(DEFAULT_BLOCK_CAP, (stack.shape[1] * stack.shape[2]) // self.config.threads)

    def encode(self, stack: np.ndarray) -> bytes:
        """The chunks the file holds after its header, compressed the way mrczbench.mrcz
        does it (mrczbench.mrc.chunks.encode_frames): frames in parallel, the threads
        shared among them (the bytes do not depend on the thread count)."""
        from mrczbench.mrc import chunks
        from mrczbench.mrc.header import FILTERS as FILTER_IDS

        self.require_data(stack)
        stack = np.ascontiguousarray(stack, dtype=stack.dtype.newbyteorder("<"))
        if stack.dtype == np.uint8:
            stack = stack.view(np.int8)  # mode 0, as the file stores it
        threads = self.config.threads
        return b"".join(chunks.encode_frames(
            stack, self.config.codec, self.config.level, FILTER_IDS[self.config.filter], threads,
            self.blocksize_for(stack), frame_count=len(stack)))

    def decode(self, blob: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Walk and check the chunk headers (mrczbench.mrc.chunks.chunk_table) and decode
        each chunk straight into its frame, parallel over frames like mrczbench.mrcz.read."""
        dtype = np.dtype(dtype)
        out = np.empty(shape, dtype=dtype.newbyteorder("<"))
        self.decode_into(blob, out)
        return out.astype(dtype, copy=False)

    decodes_into = True

    def decode_into(self, blob: bytes, out: np.ndarray) -> None:
        from mrczbench.mrc import chunks

        if out.dtype.byteorder == ">":
            raise FormatError("mrcz: decode_into needs a little-endian or native output")
        frame_bytes = out[0].nbytes if len(out) else 0
        try:
            table = chunks.chunk_table(blob, 0, len(blob), len(out), frame_bytes,
                                       out.dtype.itemsize, self.config.codec, "mrcz")
            end = table[-1][0] + table[-1][1] if table else 0
            if end != len(blob):
                raise FormatError(f"mrcz: {len(blob) - end} bytes after the last frame")
            chunks.decode_into(blob, table, range(len(out)), out, self.config.threads, "mrcz",
                               self.config.codec)
        except MRCZError as exc:
            raise FormatError(str(exc)) from None

    def write(self, path: Path, stack: np.ndarray) -> int:
        self.require_data(stack)
        _codec_module().write(
            Path(path), stack, codec=self.config.codec, level=self.config.level,
            threads=self.config.threads,
            # 0 = MRCZ's automatic rule, which mrczbench.mrcz applies itself for None (the
            # same number blocksize_for gives; it may be below the 1 KiB explicit minimum)
            blocksize=self.config.blocksize or None, filter=self.config.filter)
        return Path(path).stat().st_size


# --- mrc-uint4 ----------------------------------------------------------------------------
class MrcUint4Format(_MrcFamily):
    name = "mrc-uint4"
    description = "IMOD/SerialEM 4-bit MRC (mode 101), two pixels per byte; counts 0-15 only"
    suffix = ".mrc"
    # CryoSPARC: mode 101 unsupported; MotionCor2: not confirmed, so left out
    native_readers = ("relion", "imod")
    sweep_contenders = {"mrc uint4": {}}
    Config = FormatConfig
    has_memory_codec = True  # the packing itself
    # 8-bit counts; read() returns uint8 (mode 101 is unsigned), the same bytes as int8 0-15
    lossless_dtypes = ("int8", "uint8")
    threads_note = "ignored: 4-bit packing is a single-threaded numpy pass"

    def label(self) -> str:
        return "mrc-uint4"

    def check_data(self, stack: np.ndarray) -> str | None:
        reason = super().check_data(stack)
        if reason or stack.size == 0:
            return reason
        low, high = int(stack.min()), int(stack.max())
        if low < 0 or high > 15:
            outside = int(np.count_nonzero((stack < 0) | (stack > 15)))
            return (f"mrc-uint4 stores 0-15 only: {outside} of {stack.size} pixels are "
                    f"outside (min {low}, max {high}); packing would clip them (lossy)")
        return None

    def _refuse(self, stack: np.ndarray, error: Exception) -> FormatError:
        # the packer found values outside 0-15 (it checks as it packs, so the happy path
        # pays no extra pass); say how many, never clip
        return FormatError(self.check_data(stack) or str(error))

    def encode(self, stack: np.ndarray) -> bytes:
        reason = Format.check_data(self, stack)  # dtype and shape; values as we pack
        if reason:
            raise FormatError(reason)
        codec = _codec_module()
        try:
            return b"".join(codec.pack_4bit(frame).tobytes() for frame in stack)
        except MRCZError as exc:
            raise self._refuse(stack, exc) from None

    def decode(self, blob: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        z, y, x = shape
        packed = np.frombuffer(blob, dtype=np.uint8).reshape(z, y, (x + 1) // 2)
        out = np.empty(shape, dtype=np.uint8)
        for index in range(z):
            out[index] = _codec_module().unpack_4bit(packed[index], x)
        return out.view(np.dtype(dtype)) if np.dtype(dtype).itemsize == 1 else out.astype(dtype)

    def write(self, path: Path, stack: np.ndarray) -> int:
        reason = Format.check_data(self, stack)
        if reason:
            raise FormatError(reason)
        try:
            _codec_module().write(Path(path), stack, mode101=True, clip=False,
                                  threads=self.config.threads)
        except MRCZError as exc:
            raise self._refuse(stack, exc) from None
        return Path(path).stat().st_size
