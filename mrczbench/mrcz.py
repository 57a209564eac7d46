"""The reference MRCZ codec: MRC2014 files whose frames are stored as blosc chunks.

Byte-compatible both ways with python-mrcz (the `mrcz` package, >= 0.5):

- 1024-byte little-endian MRC header; compressed files use mode = MRC mode + 1000 * codec id
  (1 blosclz, 2 lz4, 3 lz4hc, 4 snappy, 5 zlib, 6 zstd) and hold the total chunk bytes
  ("packedBytes") as int64 at byte 144.
- one blosc1 chunk (format version 2) per z-slice, bitshuffle, typesize = itemsize. The chunk
  header holds nbytes/blocksize/cbytes at bytes 4/8/12, so walking the headers gives a frame
  index and any frame can be read without decompressing the others.
- metadata in the extended header: JSON under exttyp b'json' (what python-mrcz reads), or
  msgpack under exttyp b'mpk ' (our choice; python-mrcz skips it and still reads the pixels).

Choices this module makes, on top of python-mrcz:

- uint8 input is stored as mode 0 with the same bytes (as python-mrcz does), marked twice:
  the metadata records "dtype": "uint8", and the header carries IMOD's stamp with the
  signed-bytes flag clear (bytes 152-159), so `read`, `iter_frames`, `read_header().dtype`
  and IMOD/3dmod give uint8 back. MRC2014 defines mode 0 as int8: python-mrcz, mrcfile,
  RELION and other readers that ignore both see int8 (values above 127 appear negative;
  `.view(np.uint8)` restores them). Mode-0 files with neither mark (python-mrcz's) read as
  int8; int8 data carries no stamp, so its header stays python-mrcz's byte for byte.
- compressed files record the compression level in the JSON metadata as "clevel" (blosc
  chunks do not store it); python-mrcz then reports it as header['clevel'] too.
  `record_level=False` leaves the metadata untouched (byte-identical to python-mrcz).
- compressed headers are python-mrcz's, byte for byte: quick statistics (first frame
  min/max, mean = (min+max)/2, no RMS), mx = my = mz = 0. Plain MRC headers follow MRC2014
  for image stacks as mrcfile writes them (mx = nx, my = ny, mz = 1, nversion 20140, exact
  min/max/mean/RMS), so legacy software gets the pixel size right and plain output passes
  `mrcfile.validate` (unless it has JSON/msgpack metadata or is mode 101: mrcfile's
  validator knows neither that exttyp nor mode 101). python-mrcz reads plain files as a
  list of 2-D frames (it takes mz as "slices per frame"), with the same pixels. Mode-101
  files keep python-mrcz's mx = my = mz = 0, the only way python-mrcz unpacks them (and it
  only unpacks even widths correctly).
- the label is b'MRCZ0.6.0': python-mrcz reads the format version from it (< 0.5 changes
  how it reads the file), and 0.6.0 is the python-mrcz format these files reproduce.
- with threads > 1 the frames are compressed in parallel, one blosc thread per frame, so the
  bytes do not depend on the thread count (blosc's own threads write blocks in completion
  order, which makes python-mrcz's multi-threaded output vary from run to run).

No payload checksum: MRCZ (like python-mrcz and blosc1 chunks) stores no checksum of the
pixel data. Structural damage (truncation, bad sizes, bad headers, undecodable chunks)
raises MRCZError, but a flipped bit inside a chunk's compressed payload can decode silently
to wrong pixel values. Keep a checksum beside the file (e.g. sha256sum) when integrity
matters; the format is left unchanged for compatibility.
"""
from __future__ import annotations

import itertools
import json
import mmap
import operator
import os
import struct
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import blosc
import blosc2
import numpy as np

from mrczbench.atomic import atomic_output
from mrczbench.errors import MRCZError

__all__ = [
    "CODECS", "FILTERS", "META_FORMATS", "Header", "MRCZError", "write", "read", "read_header",
    "iter_frames", "async_write", "async_read", "pack_4bit", "unpack_4bit",
]

CODECS = ("blosclz", "lz4", "lz4hc", "zlib", "zstd")
CODEC_IDS = {"blosclz": 1, "lz4": 2, "lz4hc": 3, "snappy": 4, "zlib": 5, "zstd": 6}
CODEC_NAMES = {value: name for name, value in CODEC_IDS.items()}
FILTERS = {"none": blosc.NOSHUFFLE, "shuffle": blosc.SHUFFLE, "bitshuffle": blosc.BITSHUFFLE}
META_FORMATS = {"json": b"json", "msgpack": b"mpk "}
EXTTYP_FORMATS = {value: name for name, value in META_FORMATS.items()}

HEADER_BYTES = 1024
CHUNK_HEADER_BYTES = 16
MODE_4BIT = 101
MRC_COMP_RATIO = 1000
LABEL = b"MRCZ0.6.0"
MRC_VERSION = 20140
# MRC mode -> dtype as read back. Mode 101 is unpacked to one uint8 per pixel.
MODE_DTYPES = {0: np.dtype(np.int8), 1: np.dtype(np.int16), 2: np.dtype(np.float32),
               4: np.dtype(np.complex64), 6: np.dtype(np.uint16), MODE_4BIT: np.dtype(np.uint8)}
# Metadata key recording uint8 input stored as mode 0 (MRC2014 mode 0 is int8).
DTYPE_KEY = "dtype"
# IMOD's convention for mode 0 signedness (bytes 152-159: imodStamp, imodFlags bit 0 = signed
# bytes): uint8 files carry it, so IMOD/3dmod show the right values without our metadata.
IMOD_STAMP = 1146047817
IMOD_SIGNED_BYTES = 1
DTYPE_MODES = {np.dtype(np.int8): 0, np.dtype(np.uint8): 0, np.dtype(np.int16): 1,
               np.dtype(np.float32): 2, np.dtype(np.complex64): 4, np.dtype(np.uint16): 6}
# blosc1 cannot hold more than INT_MAX - overhead bytes in one chunk.
MAX_CHUNK_NBYTES = 2**31 - 1 - 32
# No codec blosc offers packs more than ~2^15:1 (zstd RLE blocks); a chunk header claiming
# more than 2^16:1 is corrupt, and trusting it could make us allocate terabytes.
MAX_CHUNK_RATIO = 2**16
# python-mrcz's default blocksize rule caps the block at 64 KiB.
DEFAULT_BLOCK_CAP = 2**16
# Explicit blosc block sizes: 0 (automatic) or MIN_BLOCKSIZE..MAX_BLOCKSIZE bytes (as the
# formats layer documents); only python-mrcz's own rule (blocksize=None) may pick less.
MIN_BLOCKSIZE = 1024
MAX_BLOCKSIZE = 2**31 - 1

# Let blosc drop the GIL while it works, so frames compress and decompress in parallel
# threads and file I/O overlaps with them (python-mrcz sets the same on import).
blosc.set_releasegil(True)
blosc2.set_releasegil(True)


@dataclass(frozen=True)
class Header:
    """What the header and extended header of an MRC/MRCZ file say."""

    path: str
    shape: tuple[int, int, int]          # (z, y, x) pixels
    dtype: np.dtype                      # dtype `read` returns (native byte order)
    mode: int                            # MRC mode without the codec part: 0 1 2 4 6 101
    codec: str | None                    # None for plain MRC
    level: int | None                    # compression level, when the file recorded it
    byte_order: str                      # '<' or '>' as stored
    data_offset: int                     # bytes before the first pixel / chunk
    extended_bytes: int                  # nsymbt
    exttyp: bytes
    meta: dict | None                    # decoded JSON/msgpack metadata
    meta_format: str | None              # 'json', 'msgpack' or None
    packed_bytes: int                    # total chunk bytes (compressed), else 0
    file_bytes: int                      # size on disk
    voltage: float
    C3: float
    gain: float
    pixelsize: tuple[float, float, float]  # (z, y, x) in Angstrom
    dmin: float
    dmax: float
    dmean: float
    label: str
    blosc_format: int | None = None      # chunk format version byte of chunk 0 (2 = blosc1)
    filter: str | None = None            # shuffle filter of chunk 0
    blocksize: int | None = None         # blocksize of chunk 0, bytes
    stored_dtype: np.dtype = field(default=None, repr=False)  # with the file's byte order

    @property
    def frame_bytes(self) -> int:
        """Bytes of one decoded frame as stored (packed for mode 101)."""
        ny, nx = self.shape[1:]
        if self.mode == MODE_4BIT:
            return ny * ((nx + 1) // 2)
        return ny * nx * self.dtype.itemsize

    @property
    def raw_bytes(self) -> int:
        """Bytes of the decoded stack in memory (one byte per pixel for mode 101)."""
        return int(np.prod(self.shape)) * self.dtype.itemsize

    @property
    def ratio(self) -> float:
        """File bytes / raw bytes (0.37 = 37 % of the raw stack), headers included, as the
        results' `ratio` column."""
        return self.file_bytes / self.raw_bytes


# ---------------------------------------------------------------- writing

def write(path: str | os.PathLike, data, codec: str | None = None, level: int = 1,
          threads: int | None = None, blocksize: int | None = None, meta: dict | None = None,
          meta_format: str = "json", voltage: float = 0.0, C3: float = 0.0, gain: float = 1.0,
          pixelsize=(1.0, 1.0, 1.0), mode101: bool = False, clip: bool = False,
          filter: str = "bitshuffle", record_level: bool = True, record_dtype: bool = True,
          fsync: bool = False) -> int:
    """Write `data` as plain MRC (codec=None) or MRCZ; return the bytes written.

    data: a 2-D (y, x) or 3-D (z, y, x) array, or an iterable of 2-D frames, consumed one
      at a time (the whole stack never needs to be in memory). Dtypes: int8, uint8, int16,
      uint16, float32, complex64. uint8 is stored as mode 0 (the same bytes, as python-mrcz)
      with "dtype": "uint8" in the metadata and IMOD's unsigned stamp, so `read` (and IMOD)
      return uint8; python-mrcz and mrcfile still see mode 0 as int8 (values above 127
      negative).
    codec: None or one of CODECS; level 1-9; threads: compression threads (default: all
      cores); blocksize: blosc block in bytes, 0 (blosc's automatic choice) or
      1024-2147483647 (None = python-mrcz's rule, min(65536, pixels per frame // threads)).
    filter: 'bitshuffle' (MRCZ's, the default), 'shuffle' or 'none'.
    meta: a dict stored in the extended header as JSON, or msgpack with meta_format='msgpack'.
    voltage (kV), C3 (mm), gain (counts/electron); pixelsize in Angstrom, scalar or (z, y, x).
    mode101: store plain 4-bit MRC (IMOD layout); values outside 0..15 raise MRCZError
      unless clip=True. record_level: store "clevel" in the metadata of compressed files.
    record_dtype: store "dtype": "uint8" in the metadata of uint8 data (False: the file is
      byte-identical to python-mrcz's and reads back as int8).
    The file appears atomically: on any error there is no file (and no temp file) at `path`.
    """
    path = Path(path)
    codec, level, threads, filter_id = _check_codec_options(path, codec, level, threads,
                                                          blocksize, filter, mode101)
    if meta_format not in META_FORMATS:
        raise MRCZError(f"{path}: unknown meta_format {meta_format!r}; use 'json' or 'msgpack'")
    if meta is not None and not isinstance(meta, dict):
        raise MRCZError(f"{path}: meta must be a dict, not {type(meta).__name__}")
    if codec is not None and record_level:
        meta = {**(meta or {}), "clevel": level}
    cell_pixel = _pixelsize_xyz(path, pixelsize)

    # The first frame is peeked before anything is written: its dtype decides the mode and
    # (for uint8) the metadata, both of which precede the pixels in the file.
    frames = _frames_of(path, data)
    first = next(frames, None)
    if first is None:
        raise MRCZError(f"{path}: no frames to write")
    first = _check_frame(path, first, None, 0)
    ny, nx = first.shape
    if mode101:
        if first.dtype.kind not in "iu":
            raise MRCZError(f"{path}: mode101 needs integer pixels, got {first.dtype}")
        mode = MODE_4BIT
    else:
        mode = DTYPE_MODES[first.dtype]
        meta = _with_dtype(path, meta, first.dtype, record_dtype)
    extended = _encode_meta(path, meta, meta_format)
    if codec is not None and ny * nx * first.dtype.itemsize > MAX_CHUNK_NBYTES:
        raise MRCZError(f"{path}: a {ny}x{nx} {first.dtype} frame is too big for one blosc chunk")
    all_frames = _checked(path, itertools.chain([first], frames), first)

    with atomic_output(path, fsync=fsync) as f:
        f.write(bytes(HEADER_BYTES))
        f.write(extended)
        if codec is None:
            nz, stats = _write_plain(f, all_frames, path, mode101, clip)
            packed = 0
        else:
            if blocksize is None:
                blocksize = min(DEFAULT_BLOCK_CAP, (ny * nx) // threads)
            single = isinstance(data, np.ndarray) and (data.ndim == 2 or data.shape[0] == 1)
            nz, packed, stats = _write_compressed(f, all_frames, codec, level, threads,
                                                  blocksize, filter_id, single)
        header = _pack_header(nx=nx, ny=ny, nz=nz, mode=mode, codec=codec, cell_pixel=cell_pixel,
                              stats=stats, extended=extended, meta_format=meta_format,
                              voltage=voltage, C3=C3, gain=gain, packed=packed,
                              unsigned_bytes=mode == 0 and first.dtype == np.uint8)
        f.seek(0)
        f.write(header)
        return f.seek(0, os.SEEK_END)


def async_write(*args, **kwargs) -> Future:
    """`write` in a background thread; the Future's result is the bytes written."""
    return _async_pool().submit(write, *args, **kwargs)


def _with_dtype(path, meta, dtype, record_dtype):
    """The metadata with "dtype": "uint8" for uint8 data stored as mode 0."""
    if meta is not None and meta.get(DTYPE_KEY) == "uint8" and dtype != np.uint8:
        raise MRCZError(f"{path}: meta[{DTYPE_KEY!r}] = 'uint8' but the data are {dtype}; "
                        f"the {DTYPE_KEY!r} key is reserved for uint8 data stored as mode 0")
    if dtype == np.uint8 and record_dtype:
        return {**(meta or {}), DTYPE_KEY: "uint8"}
    return meta


def _check_codec_options(path, codec, level, threads, blocksize, filter, mode101):
    if codec is not None:
        codec = str(codec).lower()
        if codec not in CODECS:
            raise MRCZError(f"unknown codec {codec!r}; choose from {', '.join(CODECS)}")
        if mode101:
            raise MRCZError(f"{path}: mode101 (4-bit) files cannot be compressed (python-mrcz "
                            "refuses them too); use codec=None")
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not 1 <= level <= 9:
        raise MRCZError(f"level must be an integer 1-9, got {level!r}")
    # Parameter errors name the parameter, not the file: they are not about the file.
    if threads is None:
        threads = _cpu_count()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise MRCZError(f"threads must be a positive integer, got {threads!r}")
    if blocksize is not None and (isinstance(blocksize, bool)
                                  or not isinstance(blocksize, (int, np.integer))
                                  or not (blocksize == 0
                                          or MIN_BLOCKSIZE <= blocksize <= MAX_BLOCKSIZE)):
        raise MRCZError(f"blocksize must be 0 (automatic) or {MIN_BLOCKSIZE}-{MAX_BLOCKSIZE} "
                        f"bytes, got {blocksize!r}")
    if filter not in FILTERS:
        raise MRCZError(f"unknown filter {filter!r}; choose from {', '.join(FILTERS)}")
    return codec, int(level), int(threads), FILTERS[filter]


def _cpu_count() -> int:
    from mrczbench.bench.machine import usable_cores  # on first use: keeps `import mrcz` light
    return usable_cores()


def _frames_of(path, data) -> Iterator[np.ndarray]:
    """Frames of an array (2-D or 3-D, also array-likes such as memmaps) or an iterable."""
    if isinstance(data, (str, bytes, dict)):
        raise MRCZError(f"{path}: data must be an array or an iterable of 2-D frames")
    ndim = getattr(data, "ndim", None)
    if ndim is not None and hasattr(data, "shape") and hasattr(data, "__getitem__"):
        if ndim == 2:
            return iter([np.asarray(data)])
        if ndim == 3:
            return (np.asarray(data[z]) for z in range(data.shape[0]))
        raise MRCZError(f"{path}: data must be 2-D (y, x) or 3-D (z, y, x), got {ndim}-D")
    try:
        return iter(data)
    except TypeError:
        raise MRCZError(f"{path}: data must be an array or an iterable of 2-D frames, "
                        f"not {type(data).__name__}") from None


def _check_frame(path, frame, first, index) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype.byteorder == ">" or (frame.dtype.byteorder == "=" and not np.little_endian):
        frame = frame.astype(frame.dtype.newbyteorder("<"))  # MRCZ files are little-endian
    if first is None:
        if frame.ndim != 2:
            raise MRCZError(f"{path}: frame {index} must be 2-D, got shape {frame.shape}")
        if frame.dtype not in DTYPE_MODES:
            raise MRCZError(f"{path}: unsupported dtype {frame.dtype}; MRC(Z) stores int8, "
                            "uint8 (as mode 0), int16, uint16, float32 and complex64")
        if frame.shape[0] < 1 or frame.shape[1] < 1:
            raise MRCZError(f"{path}: empty frame of shape {frame.shape}")
    elif frame.shape != first.shape or frame.dtype != first.dtype:
        raise MRCZError(f"{path}: frame {index} is {frame.shape} {frame.dtype}, but frame 0 is "
                        f"{first.shape} {first.dtype}")
    return np.ascontiguousarray(frame)


def _checked(path, frames, first) -> Iterator[np.ndarray]:
    for index, frame in enumerate(frames):
        yield first if index == 0 else _check_frame(path, frame, first, index)


def _pixelsize_xyz(path, pixelsize) -> np.ndarray:
    sizes = np.atleast_1d(np.asarray(pixelsize, dtype=np.float64)).ravel()
    if sizes.size == 1:
        sizes = np.repeat(sizes, 3)
    if sizes.size != 3 or not np.all(np.isfinite(sizes)) or np.any(sizes < 0):
        raise MRCZError(f"{path}: pixelsize must be one or three (z, y, x) non-negative numbers "
                        f"in Angstrom, got {pixelsize!r}")
    return sizes[::-1]


def _json_default(value: Any) -> Any:
    # As python-mrcz: numpy scalars and arrays become lists/numbers.
    if hasattr(value, "__array_interface__"):
        return value.tolist()
    raise TypeError(f"cannot store a {type(value).__name__} in JSON metadata")


def _encode_meta(path, meta, meta_format) -> bytes:
    if meta is None:
        return b""
    try:
        if meta_format == "json":
            # Same serializer settings as python-mrcz with the standard json module.
            return json.dumps(meta, default=_json_default).encode("utf-8")
        import msgpack
        return msgpack.packb(meta, default=_json_default, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise MRCZError(f"{path}: metadata cannot be stored as {meta_format}: {exc}") from None


class _Stats:
    """Exact min/max/mean/RMS over a stream of frames, for plain MRC headers."""

    def __init__(self, dtype: np.dtype):
        self.histogram = None
        self.kind = dtype.kind
        if dtype.kind in "iu" and dtype.itemsize <= 2:
            # A histogram gives exact statistics for 8/16-bit pixels in one pass.
            self.unsigned = np.dtype(f"u{dtype.itemsize}")
            self.values = np.arange(2 ** (8 * dtype.itemsize), dtype=np.int64).astype(
                self.unsigned).view(dtype).astype(np.float64)
            self.histogram = np.zeros(self.values.size, dtype=np.int64)
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = np.inf
        self.max = -np.inf

    def update(self, frame: np.ndarray) -> None:
        if self.histogram is not None:
            self.histogram += np.bincount(frame.view(self.unsigned).ravel(),
                                          minlength=self.histogram.size)
            return
        if self.kind == "c":
            return
        n = frame.size
        mean = float(frame.mean(dtype=np.float64))
        m2 = float(frame.var(dtype=np.float64)) * n
        delta = mean - self.mean
        total = self.count + n
        # Chan et al.'s pairwise update keeps the variance accurate over many frames.
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total
        self.min = min(self.min, float(frame.min()))
        self.max = max(self.max, float(frame.max()))

    def result(self) -> tuple[float, float, float, float]:
        """(dmin, dmax, dmean, rms); MRC2014's 'undetermined' values for complex data."""
        if self.histogram is not None:
            present = np.nonzero(self.histogram)[0]
            values = self.values[present]
            counts = self.histogram[present].astype(np.float64)
            total = counts.sum()
            mean = float(values @ counts / total)
            var = float(((values - mean) ** 2) @ counts / total)
            return float(values.min()), float(values.max()), mean, var ** 0.5
        if self.kind == "c" or self.count == 0:
            return 0.0, -1.0, -2.0, -1.0
        return self.min, self.max, self.mean, (self.m2 / self.count) ** 0.5


def _quick_stats(frame: np.ndarray) -> tuple[float, float, float, None]:
    """python-mrcz's quickStats: first frame only, mean = (min + max) / 2, no RMS."""
    real = frame.real
    low, high = float(real.min()), float(real.max())
    return low, high, 0.5 * (high + low), None


def pack_4bit(frame: np.ndarray, clip: bool = False, path="<array>") -> np.ndarray:
    """Pack a 2-D integer frame to IMOD mode 101: two pixels per byte, the left pixel in the
    low nibble, each row padded to (nx + 1) // 2 bytes. Values outside 0..15 raise MRCZError
    unless clip=True (then they are clipped to 0..15)."""
    frame = np.asarray(frame)
    if frame.ndim != 2 or frame.dtype.kind not in "iu":
        raise MRCZError(f"{path}: 4-bit packing needs a 2-D integer frame, got "
                        f"{frame.shape} {frame.dtype}")
    if clip:
        values = np.clip(frame, 0, 15).astype(np.uint8)
    else:
        low, high = frame.min(), frame.max()
        if low < 0 or high > 15:
            raise MRCZError(f"{path}: 4-bit (mode 101) pixels must be 0..15, found values "
                            f"{low}..{high}; pass clip=True to clip them")
        values = frame.astype(np.uint8)
    ny, nx = values.shape
    if nx % 2:
        values = np.concatenate([values, np.zeros((ny, 1), np.uint8)], axis=1)
    return values[:, 0::2] | (values[:, 1::2] << 4)


def unpack_4bit(packed: np.ndarray, nx: int) -> np.ndarray:
    """Inverse of pack_4bit: (ny, (nx + 1) // 2) bytes -> (ny, nx) uint8 pixels."""
    packed = np.asarray(packed, dtype=np.uint8)
    out = np.empty((packed.shape[0], 2 * packed.shape[1]), np.uint8)
    out[:, 0::2] = packed & 0x0F
    out[:, 1::2] = packed >> 4
    return out[:, :nx]


def _write_plain(f, frames, path, mode101, clip):
    stats = None
    nz = 0
    for frame in frames:
        if mode101:
            nx = frame.shape[1]
            frame = pack_4bit(frame, clip, path)
            stats = stats or _Stats(np.dtype(np.uint8))
            stats.update(unpack_4bit(frame, nx))  # statistics of what is stored
        else:
            if frame.dtype == np.uint8:
                frame = frame.view(np.int8)  # mode 0 is int8: same bytes, int8 statistics
            stats = stats or _Stats(frame.dtype)
            stats.update(frame)
        f.write(_bytes_of(frame))
        nz += 1
    return nz, stats.result()


def _bytes_of(array: np.ndarray) -> memoryview:
    """A flat byte view of a C-contiguous array (no copy)."""
    return memoryview(array.reshape(-1).view(np.uint8))


class _BloscSettings:
    """python-blosc takes nthreads and blocksize from process-wide globals, read when a
    compress call starts. Calls with the same settings may run together; a call with other
    settings waits until they are done. Defaults are restored when nobody is compressing,
    so other code calling blosc.compress is not surprised by our blocksize."""

    def __init__(self):
        self._cond = threading.Condition()
        self._current = None
        self._active = 0
        self._saved_threads = None

    def compress(self, frame, typesize, level, codec, filter_id, nthreads, blocksize) -> bytes:
        key = (nthreads, blocksize)
        with self._cond:
            while self._active and self._current != key:
                self._cond.wait()
            if not self._active:
                self._saved_threads = blosc.set_nthreads(nthreads)
                blosc.set_blocksize(blocksize)
                blosc.set_releasegil(True)
                self._current = key
            self._active += 1
        try:
            return blosc.compress(frame, typesize, clevel=level, shuffle=filter_id, cname=codec)
        finally:
            with self._cond:
                self._active -= 1
                if not self._active:
                    blosc.set_blocksize(0)
                    blosc.set_nthreads(self._saved_threads)
                    self._current = None
                    self._cond.notify_all()


_BLOSC = _BloscSettings()


def _write_compressed(f, frames, codec, level, threads, blocksize, filter_id, single):
    """Compress frames in `threads` worker threads (one blosc thread each, so the bytes do not
    depend on thread timing) while this thread writes finished chunks in order."""
    blosc_threads = threads if single else 1  # one frame: let blosc split it instead
    workers = 1 if single else threads
    packed = 0
    nz = 0
    stats = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mrcz-compress") as pool:
        in_flight: deque[Future] = deque()
        try:
            for frame in frames:
                if frame.dtype == np.uint8:
                    frame = frame.view(np.int8)
                if stats is None:
                    stats = _quick_stats(frame)
                in_flight.append(pool.submit(_BLOSC.compress, frame, frame.dtype.itemsize,
                                             level, codec, filter_id, blosc_threads, blocksize))
                nz += 1
                # Keep a bounded number of frames in memory: a streamed stack stays streamed.
                while len(in_flight) > workers:
                    packed += _write_chunk(f, in_flight.popleft())
            while in_flight:
                packed += _write_chunk(f, in_flight.popleft())
        except BaseException:
            for future in in_flight:
                future.cancel()
            raise
    return nz, packed, stats


def _write_chunk(f, future: Future) -> int:
    chunk = future.result()
    f.write(chunk)
    return len(chunk)


def _pack_header(*, nx, ny, nz, mode, codec, cell_pixel, stats, extended, meta_format,
                 voltage, C3, gain, packed, unsigned_bytes=False) -> bytes:
    """The 1024-byte header, laid out as python-mrcz writes it (plus nversion/RMS for plain
    files so that they are valid MRC2014)."""
    header = bytearray(HEADER_BYTES)
    full_mode = mode + (MRC_COMP_RATIO * CODEC_IDS[codec] if codec else 0)
    struct.pack_into("<4i", header, 0, nx, ny, nz, full_mode)
    if codec or mode == MODE_4BIT:
        # mx, my, mz stay 0 as python-mrcz writes them (its mz = 0 means "one volume", so
        # it returns an array), and cella = pixel size * (nx, ny, nz). Mode 101 too: python-
        # mrcz can only unpack 4-bit files it reads as one volume.
        sampling = (nx, ny, nz)
    else:
        # Plain files are for legacy software, which takes the pixel size as cella / m:
        # use MRC2014's image-stack convention, as mrcfile does (mx = nx, my = ny, mz = 1).
        # python-mrcz then returns a list of 2-D frames (its mz means "slices per frame").
        sampling = (nx, ny, 1)
        struct.pack_into("<3i", header, 28, *sampling)
    cella = cell_pixel * np.array(sampling, dtype=np.float64)
    struct.pack_into("<3f", header, 40, *cella.astype(np.float32))
    struct.pack_into("<3f3i", header, 52, 90.0, 90.0, 90.0, 1, 2, 3)
    dmin, dmax, dmean, rms = stats
    struct.pack_into("<3f", header, 76, *np.array([dmin, dmax, dmean], dtype=np.float32))
    if extended:
        struct.pack_into("<i", header, 92, len(extended))
        header[104:108] = META_FORMATS[meta_format]
    struct.pack_into("<3f", header, 132, voltage, C3, gain)
    if codec:
        struct.pack_into("<q", header, 144, packed)
    else:
        struct.pack_into("<i", header, 108, MRC_VERSION)
        struct.pack_into("<f", header, 216, rms)
    if unsigned_bytes:
        struct.pack_into("<2i", header, 152, IMOD_STAMP, 0)  # stamped, signed-bytes flag clear
    header[208:212] = b"MAP "
    header[212:214] = bytes([0x44, 0x41])
    struct.pack_into("<i", header, 220, 1)
    header[224:224 + len(LABEL)] = LABEL
    return bytes(header)


# ---------------------------------------------------------------- reading

def read_header(path: str | os.PathLike) -> Header:
    """Parse and validate the header, extended header and (compressed) first chunk header."""
    path = Path(path)
    with open(path, "rb") as f:
        return _read_header(f, path)


def read(path: str | os.PathLike, frames=None, threads: int | None = None) -> np.ndarray:
    """Read the stack as a (z, y, x) array (always 3-D, native byte order).

    frames: None (all), an int, a slice or a list of ints (negative counts from the end);
      compressed files read only the chunks of those frames.
    Mode 0 comes back as int8, or as uint8 when the metadata says "dtype": "uint8" (what
    `write` records for uint8 data); mode 101 as uint8.
    """
    path = Path(path)
    if threads is None:
        threads = _cpu_count()
    with open(path, "rb") as f:
        header = _read_header(f, path)
        indices = _frame_indices(path, frames, header.shape[0])
        ny, nx = header.shape[1:]
        if header.codec is None:
            out = np.empty((len(indices), ny, nx), header.stored_dtype)
            for slot, index in enumerate(indices):
                out[slot] = _read_plain_frame(f, header, index)
        else:
            chunks = _chunk_table(f, header, max(indices, default=-1) + 1)
            out = np.empty((len(indices), ny, nx), header.stored_dtype)
            _decompress_into(f, header, chunks, indices, out, threads)
    return _native(out)


def iter_frames(path: str | os.PathLike, frames=None) -> Iterator[np.ndarray]:
    """Yield frames one at a time as 2-D arrays (same `frames` choices as `read`)."""
    path = Path(path)
    with open(path, "rb") as f:
        header = _read_header(f, path)
        indices = _frame_indices(path, frames, header.shape[0])
        if header.codec is None:
            for index in indices:
                yield _native(_read_plain_frame(f, header, index))
            return
        chunks = []
        threads = _cpu_count()
        for index in indices:
            if index >= len(chunks):  # walk the chunk headers only as far as needed
                chunks = _chunk_table(f, header, index + 1, chunks)
            out = np.empty((1,) + header.shape[1:], header.stored_dtype)
            _decompress_into(f, header, chunks, [index], out, threads)
            yield _native(out[0])


def async_read(*args, **kwargs) -> Future:
    """`read` in a background thread; the Future's result is the array."""
    return _async_pool().submit(read, *args, **kwargs)


_ASYNC_POOL = None
_ASYNC_LOCK = threading.Lock()


def _async_pool() -> ThreadPoolExecutor:
    # One background worker, as python-mrcz: disks rarely gain from parallel file writes.
    global _ASYNC_POOL
    with _ASYNC_LOCK:
        if _ASYNC_POOL is None:
            _ASYNC_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mrcz-async")
        return _ASYNC_POOL


def _native(array: np.ndarray) -> np.ndarray:
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and not np.little_endian):
        return array.astype(array.dtype.newbyteorder("="))
    return array


def _frame_indices(path, frames, nz) -> list[int]:
    if frames is None:
        return list(range(nz))
    if isinstance(frames, slice):
        return list(range(nz))[frames]
    if isinstance(frames, (int, np.integer)) and not isinstance(frames, bool):
        frames = [frames]
    try:
        wanted = [_frame_number(z) for z in frames]
    except TypeError:
        raise MRCZError(f"{path}: frames must be None, an int, a slice or a list of ints, "
                        f"got {frames!r}") from None
    indices = []
    for z in wanted:
        if not -nz <= z < nz:
            raise MRCZError(f"{path}: frame {z} is out of range; the file has {nz} frames")
        indices.append(z % nz)
    return indices


def _frame_number(value) -> int:
    if isinstance(value, bool):
        raise TypeError("bool is not a frame index")
    return operator.index(value)


def _read_header(f, path) -> Header:
    file_bytes = os.fstat(f.fileno()).st_size
    raw = f.read(HEADER_BYTES)
    if len(raw) < HEADER_BYTES:
        raise MRCZError(f"{path}: only {len(raw)} bytes, too short for the 1024-byte MRC header")

    # The machine stamp gives the byte order; files without one get python-mrcz's test
    # (a byte-swapped mode number is huge).
    stamp = raw[212:214]
    if stamp in (b"\x44\x41", b"\x44\x44"):
        order = "<"
    elif stamp == b"\x11\x11":
        order = ">"
    else:
        order = ">" if struct.unpack("<i", raw[12:16])[0] > 16_000_000 else "<"
    nx, ny, nz, full_mode = struct.unpack(order + "4i", raw[0:16])
    stamped = raw[208:212] == b"MAP "

    def not_mrc(detail: str) -> MRCZError:
        # Without the MAP stamp a nonsense header is most likely another kind of file
        # (TIFF, EER, ...): say that rather than reporting a strange MRC mode.
        if stamped:
            return MRCZError(f"{path}: {detail}")
        return MRCZError(f"{path}: not an MRC file (no 'MAP ' stamp at byte 208; {detail})")

    if full_mode < 0 or full_mode % MRC_COMP_RATIO not in MODE_DTYPES:
        if not stamped:
            raise not_mrc(f"mode word {full_mode}")
        raise MRCZError(f"{path}: unknown or unsupported MRC mode "
                        f"{full_mode % MRC_COMP_RATIO if full_mode >= 0 else full_mode} "
                        f"(supported: {', '.join(map(str, sorted(MODE_DTYPES)))})")
    for name, size in (("nx", nx), ("ny", ny), ("nz", nz)):
        if size < 1:
            raise not_mrc(f"bad dimension {name} = {size} in the header")
    codec_id, mode = divmod(full_mode, MRC_COMP_RATIO)
    codec = None
    if codec_id:
        codec = CODEC_NAMES.get(codec_id)
        if codec is None:
            raise MRCZError(f"{path}: unknown MRCZ codec id {codec_id} (mode {full_mode}); "
                            f"known ids: {', '.join(f'{k} {v}' for k, v in CODEC_NAMES.items())}")
        if mode == MODE_4BIT:
            raise MRCZError(f"{path}: compressed mode 101 (4-bit) is not a valid MRCZ file")
    dtype = MODE_DTYPES[mode]
    stored_dtype = dtype.newbyteorder(order) if dtype.itemsize > 1 else dtype

    extended_bytes = struct.unpack(order + "i", raw[92:96])[0]
    if extended_bytes < 0 or HEADER_BYTES + extended_bytes > file_bytes:
        raise MRCZError(f"{path}: extended header length {extended_bytes} does not fit in the "
                        f"{file_bytes}-byte file")
    data_offset = HEADER_BYTES + extended_bytes
    exttyp = bytes(raw[104:108])
    meta, meta_format = None, None
    if extended_bytes and exttyp in EXTTYP_FORMATS:
        meta_format = EXTTYP_FORMATS[exttyp]
        meta = _decode_meta(path, f.read(extended_bytes), meta_format)

    frame_bytes = ny * ((nx + 1) // 2) if mode == MODE_4BIT else ny * nx * dtype.itemsize
    blosc_format = filter_name = blocksize = None
    packed = 0
    if codec is None:
        expected = data_offset + nz * frame_bytes
        if file_bytes != expected:
            raise MRCZError(f"{path}: the header describes {nz}x{ny}x{nx} mode-{mode} pixels "
                            f"({expected} bytes with the header) but the file has {file_bytes} "
                            "bytes (truncated, or wrong dimensions/mode)")
    else:
        if frame_bytes > MAX_CHUNK_NBYTES:
            raise MRCZError(f"{path}: a {ny}x{nx} frame is too big for one blosc chunk; the "
                            "dimensions are corrupt")
        packed = struct.unpack(order + "q", raw[144:152])[0]
        if packed < CHUNK_HEADER_BYTES * nz or data_offset + packed != file_bytes:
            raise MRCZError(f"{path}: packedBytes = {packed} does not match the file: "
                            f"{file_bytes - data_offset} bytes of chunks follow the header for "
                            f"{nz} frames (truncated or corrupt)")
        f.seek(data_offset)
        first = f.read(CHUNK_HEADER_BYTES)
        blosc_format = first[0]
        flags = first[2]
        filter_name = ("bitshuffle" if flags & 0x04 and not flags & 0x01 else
                       "shuffle" if flags & 0x01 else "none")
        blocksize = struct.unpack("<I", first[8:12])[0]

    imod_stamp, imod_flags = struct.unpack(order + "2i", raw[152:160])
    imod_unsigned = imod_stamp == IMOD_STAMP and not imod_flags & IMOD_SIGNED_BYTES
    if mode == 0 and (imod_unsigned or (meta is not None and meta.get(DTYPE_KEY) == "uint8")):
        dtype = stored_dtype = np.dtype(np.uint8)  # uint8 stored as mode 0 (ours, or IMOD's flag)

    level = None
    if codec and meta is not None:
        value = meta.get("clevel")
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
            level = value

    cella = np.frombuffer(raw[40:52], dtype=order + "f4").astype(np.float64)
    sampling = struct.unpack(order + "3i", raw[28:40])
    if min(sampling) < 1:  # python-mrcz leaves mx, my, mz at 0: cella spans (nx, ny, nz)
        sampling = (nx, ny, nz)
    pixel_xyz = cella / np.array(sampling, dtype=np.float64)
    voltage, C3, gain = struct.unpack(order + "3f", raw[132:144])
    dmin, dmax, dmean = struct.unpack(order + "3f", raw[76:88])
    label = raw[224:304].split(b"\0", 1)[0].decode("ascii", "replace").strip()
    return Header(
        path=str(path), shape=(nz, ny, nx), dtype=dtype, mode=mode, codec=codec, level=level,
        byte_order=order, data_offset=data_offset, extended_bytes=extended_bytes, exttyp=exttyp,
        meta=meta, meta_format=meta_format, packed_bytes=packed, file_bytes=file_bytes,
        voltage=voltage, C3=C3, gain=gain, pixelsize=tuple(float(p) for p in pixel_xyz[::-1]),
        dmin=dmin, dmax=dmax, dmean=dmean, label=label, blosc_format=blosc_format,
        filter=filter_name, blocksize=blocksize, stored_dtype=stored_dtype)


def _decode_meta(path, blob: bytes, meta_format: str) -> dict:
    try:
        if meta_format == "json":
            meta = json.loads(blob.decode("utf-8"))
        else:
            import msgpack
            meta = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    except Exception as exc:  # any decoder failure means corrupt metadata
        raise MRCZError(f"{path}: corrupt {meta_format} metadata in the extended header: "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not isinstance(meta, dict):
        raise MRCZError(f"{path}: {meta_format} metadata must be an object/map, "
                        f"found {type(meta).__name__}")
    return meta


def _read_plain_frame(f, header: Header, index: int) -> np.ndarray:
    ny, nx = header.shape[1:]
    f.seek(header.data_offset + index * header.frame_bytes)
    if header.mode == MODE_4BIT:
        packed = np.empty((ny, (nx + 1) // 2), np.uint8)
        _read_exactly(f, packed, header, index)
        return unpack_4bit(packed, nx)
    frame = np.empty((ny, nx), header.stored_dtype)
    _read_exactly(f, frame, header, index)
    return frame


def _read_exactly(f, array: np.ndarray, header: Header, index: int) -> None:
    view = _bytes_of(array)
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            raise MRCZError(f"{header.path}: truncated: frame {index} ends after {got} of "
                            f"{len(view)} bytes")
        got += n


def _chunk_table(f, header: Header, count: int, known=None) -> list[tuple[int, int]]:
    """(offset, cbytes) of chunks 0..count-1, from their 16-byte headers, each checked."""
    chunks = list(known or [])
    end = header.data_offset + header.packed_bytes
    offset = chunks[-1][0] + chunks[-1][1] if chunks else header.data_offset
    path = header.path
    for index in range(len(chunks), count):
        if offset + CHUNK_HEADER_BYTES > end:
            raise MRCZError(f"{path}: truncated: chunk {index} starts at byte {offset}, past the "
                            f"end of the chunk data ({end}); packedBytes or a chunk is wrong")
        f.seek(offset)
        head = f.read(CHUNK_HEADER_BYTES)
        if len(head) < CHUNK_HEADER_BYTES:
            raise MRCZError(f"{path}: truncated: chunk {index} header at byte {offset}")
        version = head[0]
        nbytes, blocksize, cbytes = struct.unpack("<3I", head[4:16])
        if version not in (2, 3, 4, 5):
            raise MRCZError(f"{path}: chunk {index} at byte {offset} is not a blosc chunk "
                            f"(format version byte {version})")
        if nbytes != header.frame_bytes:
            raise MRCZError(f"{path}: chunk {index} decodes to {nbytes} bytes but a "
                            f"{header.shape[1]}x{header.shape[2]} {header.dtype} frame has "
                            f"{header.frame_bytes}")
        if (cbytes < CHUNK_HEADER_BYTES or cbytes > nbytes + 32 or blocksize == 0
                or nbytes > cbytes * MAX_CHUNK_RATIO):
            raise MRCZError(f"{path}: chunk {index} at byte {offset} has an impossible header "
                            f"(nbytes {nbytes}, blocksize {blocksize}, cbytes {cbytes})")
        if offset + cbytes > end:
            raise MRCZError(f"{path}: truncated: chunk {index} needs {cbytes} bytes at byte "
                            f"{offset} but the chunk data ends at {end}")
        chunks.append((offset, cbytes))
        offset += cbytes
    if count == header.shape[0] and offset != end:
        raise MRCZError(f"{path}: packedBytes says {header.packed_bytes} bytes of chunks but the "
                        f"{count} chunks hold {offset - header.data_offset}")
    return chunks


def _decompress_into(f, header: Header, chunks, indices, out: np.ndarray, threads: int) -> None:
    """Decompress the chunks of `indices` straight into out[0], out[1], ...: parallel over
    frames (one blosc thread each), reading the chunks through a memory map of the file, so
    blosc decodes from the page cache without a copy (~10 % less CPU than reading into
    buffers). A file truncated by someone else while we map it could still fault; sizes are
    checked against the file when it is opened."""
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        size = len(mapped)

        def one(slot: int, index: int, nthreads: int) -> None:
            offset, cbytes = chunks[index]
            if offset + cbytes > size:
                raise MRCZError(f"{header.path}: truncated: chunk {index} needs bytes "
                                f"{offset}..{offset + cbytes} of a {size}-byte file")
            blob = memoryview(mapped)[offset:offset + cbytes]
            try:
                # nbytes was checked against the frame size: blosc2 writes exactly
                # out[slot].nbytes bytes.
                blosc2.decompress2(blob, dst=out[slot], nthreads=nthreads)
            except Exception as exc:
                raise MRCZError(f"{header.path}: chunk {index} at byte {offset} is corrupt "
                                f"({header.codec}): {exc}") from None
            finally:
                blob.release()  # the map can only close once no view of it is left

        if len(indices) <= 1 or threads <= 1:
            for slot, index in enumerate(indices):
                one(slot, index, threads)
            return
        with ThreadPoolExecutor(max_workers=min(threads, len(indices)),
                                thread_name_prefix="mrcz-decompress") as pool:
            futures = [pool.submit(one, slot, index, 1) for slot, index in enumerate(indices)]
            for future in futures:
                future.result()
