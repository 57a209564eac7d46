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
- with threads > 1 the frames are compressed in parallel (parts of frames, joined back
  byte for byte, when there are fewer frames than threads), one blosc thread per call, and
  the workers write the chunks at their offsets; so the bytes do not depend on the thread
  count (blosc's own threads write blocks in completion order, which makes python-mrcz's
  multi-threaded output vary from run to run).

- mode 12 (float16) is read and written like the other modes (MRC2014's 2017 addition;
  mrcfile and IMOD read it, python-mrcz does not).
- `read` checks each chunk header against the MRC header (size, typesize, codec and filter
  flags) and refuses, before allocating, a stack larger than `max_bytes` (default: the
  memory available, or $MRCZBENCH_MAX_READ_BYTES); `iter_frames` streams with no limit.
  A plain file with bytes after the last frame is read with a warning, as mrcfile does.

The header table, constants and chunk walk live in `mrczbench.mrc` (shared with the MRC
contenders and the benchmarks); this module is the public API on top of them.

No payload checksum: MRCZ (like python-mrcz and blosc1 chunks) stores no checksum of the
pixel data. Structural damage (truncation, bad sizes, bad headers, undecodable chunks)
raises MRCZError, but a flipped bit inside a chunk's compressed payload can decode silently
to wrong pixel values. Keep a checksum beside the file (e.g. sha256sum) when integrity
matters; the format is left unchanged for compatibility.
"""
from __future__ import annotations

import itertools
import mmap
import operator
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np

from mrczbench.atomic import atomic_output
from mrczbench.errors import MRCZError
from mrczbench.mrc import checksums as _sums
from mrczbench.mrc import chunks as _chunks
from mrczbench.mrc.checksums import CHECKSUM_KEY, CountedFrames, frame_digest  # noqa: F401
from mrczbench.mrc import header as _hdr
# The format's constants and header live in mrczbench.mrc (one copy); the names imported
# here stay mrcz's API (mrcz.CODECS, mrcz.MIN_BLOCKSIZE, mrcz.Header, ...).
from mrczbench.mrc.chunks import (CHUNK_HEADER_BYTES, DEFAULT_BLOCK_CAP,  # noqa: F401
                                  MAX_BLOCKSIZE, MAX_CHUNK_NBYTES, MAX_CHUNK_RATIO, MIN_BLOCKSIZE)
from mrczbench.mrc.extended import encode_meta
from mrczbench.mrc.fourbit import pack_4bit, unpack_4bit, warn_if_padding_used
from mrczbench.mrc.header import Header
from mrczbench.mrc.header import read as _read_header
from mrczbench.mrc.header import (CODEC_IDS, CODEC_NAMES, CODECS, DTYPE_KEY,  # noqa: F401
                                  DTYPE_MODES, EXTTYP_FORMATS, FILTERS, HEADER_BYTES,
                                  IMOD_SIGNED_BYTES, IMOD_STAMP, LABEL, META_FORMATS,
                                  MODE_4BIT, MODE_DTYPES, MRC_COMP_RATIO, MRC_VERSION)

__all__ = [
    "CODECS", "FILTERS", "META_FORMATS", "Header", "MRCZError", "write", "read", "read_header",
    "iter_frames", "async_write", "async_read", "pack_4bit", "unpack_4bit", "MAX_READ_ENV",
]

# Whole-stack `read` refuses to allocate more than this many bytes unless told otherwise
# (max_bytes= or this environment variable, in bytes); the default is the memory available.
MAX_READ_ENV = "MRCZBENCH_MAX_READ_BYTES"


# ---------------------------------------------------------------- writing

def write(path: str | os.PathLike, data, codec: str | None = None, level: int = 1,
          threads: int | None = None, blocksize: int | None = None, meta: dict | None = None,
          meta_format: str = "json", voltage: float = 0.0, C3: float = 0.0, gain: float = 1.0,
          pixelsize=(1.0, 1.0, 1.0), mode101: bool = False, clip: bool = False,
          filter: str = "bitshuffle", record_level: bool = True, record_dtype: bool = True,
          fsync: bool = False, checksum: bool = False) -> int:
    """Write `data` as plain MRC (codec=None) or MRCZ; return the bytes written.

    data: a 2-D (y, x) or 3-D (z, y, x) array, or an iterable of 2-D frames, consumed one
      at a time (the whole stack never needs to be in memory). Dtypes: int8, uint8, int16,
      uint16, float32, complex64, float16 (mode 12: mrcfile and IMOD read it, python-mrcz
      does not). uint8 is stored as mode 0 (the same bytes, as python-mrcz)
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
    record_dtype: store "dtype": "uint8" in the metadata of uint8 data. With False the
      metadata is left as given, but the header still carries IMOD's unsigned stamp (bytes
      152-159), so the file still reads back as uint8 and differs from python-mrcz's in those
      8 bytes only. For python-mrcz's exact bytes, write `data.view(np.int8)` (which also
      reads back as int8).
    checksum: store a SHA-256 of each frame's pixels in the metadata (CHECKSUM_KEY, which
      python-mrcz ignores) so that `read(..., verify=True)` detects a corrupted chunk, which
      MRCZ alone cannot. Needs the frame count up front: an array or a sequence (len()).
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

    frames, first, mode = _peek_first(path, data, mode101)
    ny, nx = first.shape
    if not mode101:
        meta = _with_dtype(path, meta, first.dtype, record_dtype)
    checksums = _sums.Checksums(path, meta, data) if checksum else None
    meta = checksums.placeholder_meta if checksums else _sums.without_checksums(meta)
    extended = encode_meta(path, meta, meta_format)
    if codec is not None and ny * nx * first.dtype.itemsize > MAX_CHUNK_NBYTES:
        raise MRCZError(f"{path}: a {ny}x{nx} {first.dtype} frame is too big for one blosc chunk")
    all_frames = _checked(path, itertools.chain([first], frames), first)
    if checksums:
        all_frames = checksums.hashed(all_frames)

    with atomic_output(path, fsync=fsync) as f:
        f.write(bytes(HEADER_BYTES))
        f.write(extended)
        if codec is None:
            nz, stats = _write_plain(f, all_frames, path, mode101, clip)
            packed = 0
        else:
            if blocksize is None:
                blocksize = min(DEFAULT_BLOCK_CAP, (ny * nx) // threads)
            nz, packed, stats = _write_compressed(f, all_frames, codec, level, threads,
                                                  blocksize, filter_id, _frame_count(data),
                                                  isinstance(data, (np.ndarray, list, tuple)))
        header = _hdr.pack_mrcz_header(
            nx=nx, ny=ny, nz=nz, mode=mode, codec=codec, cell_pixel=cell_pixel, stats=stats,
            extended=extended, meta_format=meta_format, voltage=voltage, C3=C3, gain=gain,
            packed=packed, unsigned_bytes=mode == 0 and first.dtype == np.uint8)
        f.seek(0)
        f.write(header)
        if checksums:
            f.write(checksums.final_extended(meta_format))  # over the placeholders
        return f.seek(0, os.SEEK_END)


def _peek_first(path, data, mode101):
    """(frame iterator, checked first frame, MRC mode). The first frame is peeked before
    anything is written: its dtype decides the mode and (for uint8) the metadata, both of
    which precede the pixels in the file."""
    frames = _frames_of(path, data)
    first = next(frames, None)
    if first is None:
        raise MRCZError(f"{path}: no frames to write")
    first = _check_frame(path, first, None, 0)
    if not mode101:
        return frames, first, DTYPE_MODES[first.dtype]
    if first.dtype.kind not in "iu":
        raise MRCZError(f"{path}: mode101 needs integer pixels, got {first.dtype}")
    return frames, first, MODE_4BIT


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
    from mrczbench.system import usable_cores  # on first use: keeps `import mrcz` light
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


def _write_plain(f, frames, path, mode101, clip):
    stats = None
    nz = 0
    for frame in frames:
        if mode101:
            nx = frame.shape[1]
            frame = pack_4bit(frame, clip, path)
            stats = stats or _hdr.Stats(np.dtype(np.uint8))
            stats.update(unpack_4bit(frame, nx))  # statistics of what is stored
        else:
            if frame.dtype == np.uint8:
                frame = frame.view(np.int8)  # mode 0 is int8: same bytes, int8 statistics
            stats = stats or _hdr.Stats(frame.dtype)
            stats.update(frame)
        f.write(_bytes_of(frame))
        nz += 1
    return nz, stats.result()


def _bytes_of(array: np.ndarray) -> memoryview:
    """A flat byte view of a C-contiguous array (no copy)."""
    return memoryview(array.reshape(-1).view(np.uint8))


def _frame_count(data) -> int | None:
    """Frames in `data` when known before they are made (an array or a sequence), else None
    (an iterator: streamed)."""
    if isinstance(data, np.ndarray):
        return 1 if data.ndim == 2 else data.shape[0]
    return len(data) if isinstance(data, (list, tuple, CountedFrames)) else None


def _write_compressed(f, frames, codec, level, threads, blocksize, filter_id, frame_count,
                      in_memory):
    """Compress frames in parallel; the workers write each chunk at its offset (the sum of
    the chunks before it) as soon as those are compressed (mrczbench.mrc.chunks.write_frames);
    python-mrcz's quick statistics of frame 0. Leaves `f` positioned after the chunks."""
    first_stats = []

    def as_mode0(frames):
        for frame in frames:
            yield frame.view(np.int8) if frame.dtype == np.uint8 else frame

    f.flush()
    start = f.tell()
    nz, packed = _chunks.write_frames(f.fileno(), start, as_mode0(frames), codec, level,
                                      filter_id, threads, blocksize, frame_count=frame_count,
                                      in_memory=in_memory,
                                      on_first=lambda frame: first_stats.append(
                                          _hdr.quick_stats(frame)))
    f.seek(start + packed)
    return nz, packed, first_stats[0]


# ---------------------------------------------------------------- reading

def _open_file(path: Path):
    """The file opened for reading; a folder is an MRCZError (as every other unreadable
    input), not a bare IsADirectoryError."""
    try:
        return open(path, "rb")
    except IsADirectoryError:
        raise MRCZError(f"{path}: is a folder, not an MRC/MRCZ file") from None


def read_header(path: str | os.PathLike) -> Header:
    """Parse and validate the header, extended header and (compressed) first chunk header."""
    path = Path(path)
    with _open_file(path) as f:
        return _read_header(f, path)


def read(path: str | os.PathLike, frames=None, threads: int | None = None,
         max_bytes: int | None = None, verify: bool = False) -> np.ndarray:
    """Read the stack as a (z, y, x) array (always 3-D, native byte order).

    frames: None (all), an int, a slice or a list of ints (negative counts from the end);
      compressed files read only the chunks of those frames.
    max_bytes: the most bytes the returned array may take. The default is the memory
      available now (MemAvailable), or the environment variable MRCZBENCH_MAX_READ_BYTES
      when set; a larger stack raises MRCZError before anything is allocated (read fewer
      frames, raise the limit, or stream with `iter_frames`, which needs one frame).
    Mode 0 comes back as int8, or as uint8 when the metadata says "dtype": "uint8" (what
    `write` records for uint8 data) or IMOD's unsigned stamp is set; mode 101 as uint8;
    mode 12 as float16.
    verify: check every frame read against the SHA-256 stored by write(checksum=True).
    """
    path = Path(path)
    if threads is None:
        threads = _cpu_count()
    with _open_file(path) as f:
        header = _read_header(f, path)
        indices = _frame_indices(path, frames, header.shape[0])
        if header.codec is None:
            out = _allocate(header, len(indices), max_bytes)
            for slot, index in enumerate(indices):
                out[slot] = _read_plain_frame(f, header, index)
        else:
            chunks = _chunk_table(f, header, max(indices, default=-1) + 1)
            out = _allocate(header, len(indices), max_bytes)
            _decompress_into(f, header, chunks, indices, out, threads)
    if verify:
        for _ in _sums.verified(path, header, indices, out):
            pass
    return _native(out)


def iter_frames(path: str | os.PathLike, frames=None, verify: bool = False) -> Iterator[np.ndarray]:
    """Yield frames one at a time as 2-D arrays (same `frames` choices as `read`; no
    memory limit: one frame at a time). verify: as for `read`."""
    path = Path(path)
    if verify:
        header = read_header(path)
        indices = _frame_indices(path, frames, header.shape[0])
        yield from _sums.verified(path, header, indices, iter_frames(path, frames))
        return
    with _open_file(path) as f:
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
            out = _allocate(header, 1, float("inf"))
            _decompress_into(f, header, chunks, [index], out, threads)
            yield _native(out[0])


def read_limit(max_bytes: int | None = None) -> tuple[float, str]:
    """(bytes, where the number comes from) that a whole-stack `read` may allocate."""
    if max_bytes is not None:
        return max_bytes, "max_bytes"
    value = os.environ.get(MAX_READ_ENV)
    if value:
        try:
            return int(value), f"${MAX_READ_ENV}"
        except ValueError:
            raise MRCZError(f"${MAX_READ_ENV} must be a number of bytes, got {value!r}") from None
    from mrczbench.system import available_memory  # on first use, as usable_cores
    available = available_memory()
    if available is None:
        return float("inf"), "no limit"
    return available, f"the memory available now; raise it with max_bytes= or ${MAX_READ_ENV}"


def _allocate(header: Header, count: int, max_bytes) -> np.ndarray:
    """The output array for `count` frames, after checking its size against the limit."""
    ny, nx = header.shape[1:]
    need = count * ny * nx * header.dtype.itemsize
    limit, source = (max_bytes, "") if max_bytes == float("inf") else read_limit(max_bytes)
    if need > limit:
        raise MRCZError(f"{header.path}: reading {count} frames of {ny}x{nx} {header.dtype} "
                        f"needs {need / 2**30:.2f} GiB, over the {limit / 2**30:.2f} GiB limit "
                        f"({source}); read fewer frames or stream with iter_frames")
    try:
        return np.empty((count, ny, nx), header.stored_dtype)
    except MemoryError:
        raise MRCZError(f"{header.path}: cannot allocate {need / 2**30:.2f} GiB for "
                        f"{count} frames of {ny}x{nx} {header.dtype}") from None


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


def _read_plain_frame(f, header: Header, index: int) -> np.ndarray:
    ny, nx = header.shape[1:]
    f.seek(header.data_offset + index * header.frame_bytes)
    if header.mode == MODE_4BIT:
        packed = np.empty((ny, (nx + 1) // 2), np.uint8)
        _read_exactly(f, packed, header, index)
        warn_if_padding_used(packed, nx, header.path)
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
    """(offset, cbytes) of chunks 0..count-1, each header checked against the MRC header."""
    end = header.data_offset + header.packed_bytes
    chunks = _chunks.chunk_table(f, header.data_offset, end, count, header.frame_bytes,
                                 MODE_DTYPES[header.mode].itemsize, header.codec, header.path,
                                 known)
    if count == header.shape[0] and chunks[-1][0] + chunks[-1][1] != end:
        raise MRCZError(f"{header.path}: packedBytes says {header.packed_bytes} bytes of chunks "
                        f"but the {count} chunks hold {chunks[-1][0] + chunks[-1][1] - header.data_offset}")
    return chunks


def _decompress_into(f, header: Header, chunks, indices, out: np.ndarray, threads: int) -> None:
    """Decompress the chunks of `indices` straight into out[0], out[1], ... (parallel over
    frames), reading them through a memory map of the file, so blosc decodes from the page
    cache without a copy (~10 % less CPU than reading into buffers). A file truncated by
    someone else while we map it could still fault; sizes are checked when it is opened."""
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        _chunks.decode_into(mapped, chunks, indices, out, threads, header.path, header.codec)
