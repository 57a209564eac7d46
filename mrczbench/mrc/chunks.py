"""MRCZ's blosc chunks: one blosc1 chunk per frame, stored back to back after the header.

Public API (numcodecs-like), used by mrczbench.mrcz, the `mrcz` contender and the benchmarks:

- `encode(frame, codec, level, filter, nthreads, blocksize)` -> bytes of one chunk;
  `encode_frames(frames, ...)` -> the chunks of a stream of frames, in order, compressed in
  parallel (one blosc thread per frame, so the bytes do not depend on the thread count).
- `chunk_table(source, start, end, count, frame_bytes, typesize, codec, name)` -> [(offset,
  cbytes)]: walks the 16-byte chunk headers of a file or buffer and checks each one against
  what the MRC header says (size, typesize, codec, filter flags).
- `decode(chunk, out=None, nthreads=1)` -> one chunk decoded into `out` (or a new buffer);
  `decode_into(buffer, table, indices, out, threads, name)` -> chunks decoded straight into
  out[0], out[1], ... in parallel, each worker writing its own output slice.

blosc and blosc2 are imported on first use, not when this module loads.
"""
from __future__ import annotations

import struct
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterable, Iterator, NamedTuple

import numpy as np

from mrczbench.errors import MRCZError

CHUNK_HEADER_BYTES = 16  # blosc1: version, versionlz, flags, typesize, nbytes, blocksize, cbytes
# blosc1 cannot hold more than INT_MAX - overhead bytes in one chunk.
MAX_CHUNK_NBYTES = 2**31 - 1 - 32
# No codec blosc offers packs more than ~2^15:1 (zstd RLE blocks); a chunk header claiming
# more than 2^16:1 is corrupt, and trusting it could make us allocate terabytes.
MAX_CHUNK_RATIO = 2**16
# python-mrcz's default blocksize rule caps the block at 64 KiB.
DEFAULT_BLOCK_CAP = 2**16
# Explicit blosc block sizes: 0 (automatic) or MIN_BLOCKSIZE..MAX_BLOCKSIZE bytes; only
# python-mrcz's own rule (blocksize=None in mrcz.write) may pick less.
MIN_BLOCKSIZE = 1024
MAX_BLOCKSIZE = 2**31 - 1

# Chunk format versions: 2-4 blosc1, 5 blosc2 (python-mrcz's backend="blosc2").
BLOSC_VERSIONS = (2, 3, 4, 5)
# Flags byte: bit 0 byte shuffle, bit 1 memcpyed, bit 2 bitshuffle, bit 3 unused by blosc1,
# bit 4 blocks not split, bits 5-7 the codec's format code. blosc2 (version 5) marks its
# extended header with bits 0 and 2 together.
FLAG_SHUFFLE, FLAG_MEMCPYED, FLAG_BITSHUFFLE, FLAG_RESERVED = 0x01, 0x02, 0x04, 0x08
FORMAT_CODES = {"blosclz": 0, "lz4": 1, "lz4hc": 1, "snappy": 2, "zlib": 3, "zstd": 4}


class ChunkHeader(NamedTuple):
    version: int
    flags: int
    typesize: int
    nbytes: int
    blocksize: int
    cbytes: int

    @property
    def filter(self) -> str:
        """'bitshuffle', 'shuffle' or 'none' (blosc2's extended header reads as 'shuffle')."""
        if self.flags & FLAG_BITSHUFFLE and not self.flags & FLAG_SHUFFLE:
            return "bitshuffle"
        return "shuffle" if self.flags & FLAG_SHUFFLE else "none"


def parse_chunk_header(head: bytes) -> ChunkHeader:
    version, _, flags, typesize = head[:4]
    nbytes, blocksize, cbytes = struct.unpack("<3I", head[4:16])
    return ChunkHeader(version, flags, typesize, nbytes, blocksize, cbytes)


# ---------------------------------------------------------------- encoding

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
        blosc = _blosc()
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


_SETTINGS = _BloscSettings()


def _blosc():
    import blosc

    return blosc


def _blosc2():
    import blosc2

    # Let blosc drop the GIL while it works, so frames decompress in parallel threads
    # (python-mrcz sets the same on import).
    blosc2.set_releasegil(True)
    return blosc2


def encode(frame: np.ndarray, codec: str, level: int, filter_id: int, nthreads: int,
           blocksize: int) -> bytes:
    """One frame (C-contiguous, little-endian) as one blosc1 chunk, typesize = itemsize.
    uint8 is stored as int8 (mode 0): the same bytes."""
    return _SETTINGS.compress(frame, frame.dtype.itemsize, level, codec, filter_id, nthreads,
                              blocksize)


def encode_frames(frames: Iterable[np.ndarray], codec: str, level: int, filter_id: int,
                  threads: int, blocksize: int, frame_count: int | None = None,
                  on_first=None) -> Iterator[bytes]:
    """The chunks of `frames`, in order. Up to `threads` workers compress one frame each;
    when `frame_count` (if known) is below `threads`, each frame gets threads // frame_count
    blosc threads of its own, so a 10-frame stack can use 16 cores and one frame all of them
    (blosc's bytes do not depend on its thread count). At most `threads` frames are in
    flight, so a streamed stack stays streamed. `on_first(frame)` sees the first frame before
    it is compressed."""
    workers = threads if frame_count is None else max(1, min(threads, frame_count))
    blosc_threads = max(1, threads // workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mrcz-compress") as pool:
        in_flight: deque[Future] = deque()
        try:
            for frame in frames:
                if on_first is not None:
                    on_first(frame)
                    on_first = None
                in_flight.append(pool.submit(encode, frame, codec, level, filter_id,
                                             blosc_threads, blocksize))
                while len(in_flight) > workers:
                    yield in_flight.popleft().result()
            while in_flight:
                yield in_flight.popleft().result()
        finally:
            for future in in_flight:
                future.cancel()


# ---------------------------------------------------------------- the chunk table

def _head_at(source, offset: int) -> bytes:
    if hasattr(source, "seek"):
        source.seek(offset)
        return source.read(CHUNK_HEADER_BYTES)
    return bytes(source[offset:offset + CHUNK_HEADER_BYTES])


def check_chunk(head: ChunkHeader, index: int, offset: int, frame_bytes: int, typesize: int,
                codec: str | None, name: str, first: ChunkHeader | None = None) -> None:
    """Raise MRCZError (naming `name` and the frame) unless the chunk header fits the MRC
    header: blosc format, decoded size, typesize, codec and filter flags, compressed size."""
    where = f"{name}: chunk {index} (frame {index}) at byte {offset}"
    if head.version not in BLOSC_VERSIONS:
        raise MRCZError(f"{where} is not a blosc chunk (format version byte {head.version})")
    if head.nbytes != frame_bytes:
        raise MRCZError(f"{where} decodes to {head.nbytes} bytes but a frame has {frame_bytes}")
    if head.typesize != typesize:
        raise MRCZError(f"{where} has typesize {head.typesize} but the MRC mode stores "
                        f"{typesize}-byte pixels (corrupt chunk header)")
    if (head.cbytes < CHUNK_HEADER_BYTES or head.cbytes > head.nbytes + 32 or head.blocksize == 0
            or head.blocksize > head.nbytes or head.nbytes > head.cbytes * MAX_CHUNK_RATIO):
        raise MRCZError(f"{where} has an impossible header (nbytes {head.nbytes}, blocksize "
                        f"{head.blocksize}, cbytes {head.cbytes})")
    _check_flags(head, where, codec, first)


def _check_flags(head: ChunkHeader, where: str, codec: str | None,
                 first: ChunkHeader | None) -> None:
    flags = head.flags
    bad = None
    if codec is not None and flags >> 5 != FORMAT_CODES.get(codec, flags >> 5):
        bad = f"codec code {flags >> 5}, but the MRC mode says {codec}"
    elif head.version < 5 and flags & FLAG_RESERVED:
        bad = "reserved bit 3 set"
    elif head.version < 5 and flags & FLAG_SHUFFLE and flags & FLAG_BITSHUFFLE:
        bad = "both shuffle and bitshuffle set"
    elif head.version < 5 and flags & FLAG_MEMCPYED and head.cbytes != head.nbytes + 16:
        bad = f"'stored uncompressed' set but cbytes {head.cbytes} != nbytes + 16"
    elif first is not None and (flags ^ first.flags) & (FLAG_SHUFFLE | FLAG_BITSHUFFLE):
        bad = f"filter {head.filter}, but chunk 0 uses {first.filter} (one filter per file)"
    if bad:
        raise MRCZError(f"{where} has a corrupt flags byte 0x{flags:02x}: {bad}")


def chunk_table(source, start: int, end: int, count: int, frame_bytes: int, typesize: int,
                codec: str | None, name: str, known=None) -> list[tuple[int, int]]:
    """(offset, cbytes) of chunks 0..count-1 of the chunk data source[start:end] (a file
    object or a buffer), each header checked by `check_chunk`; `known` continues a table.
    With count = all frames, the chunks must fill start..end exactly."""
    chunks = list(known or [])
    offset = chunks[-1][0] + chunks[-1][1] if chunks else start
    first = None
    for index in range(len(chunks), count):
        if offset + CHUNK_HEADER_BYTES > end:
            raise MRCZError(f"{name}: truncated: chunk {index} starts at byte {offset}, past the "
                            f"end of the chunk data ({end}); packedBytes or a chunk is wrong")
        raw = _head_at(source, offset)
        if len(raw) < CHUNK_HEADER_BYTES:
            raise MRCZError(f"{name}: truncated: chunk {index} header at byte {offset}")
        head = parse_chunk_header(raw)
        if first is None and chunks:
            first = parse_chunk_header(_head_at(source, chunks[0][0]))
        check_chunk(head, index, offset, frame_bytes, typesize, codec, name, first)
        first = first or head
        if offset + head.cbytes > end:
            raise MRCZError(f"{name}: truncated: chunk {index} needs {head.cbytes} bytes at byte "
                            f"{offset} but the chunk data ends at {end}")
        chunks.append((offset, head.cbytes))
        offset += head.cbytes
    return chunks


# ---------------------------------------------------------------- decoding

def decode(chunk, out=None, nthreads: int = 1):
    """Decode one blosc chunk (bytes-like). With `out` (a writable C-contiguous array or
    buffer of exactly the chunk's nbytes) the pixels go straight there and `out` is returned;
    otherwise a new bytes object. blosc errors propagate (callers name file and frame)."""
    blosc2 = _blosc2()
    if out is None:
        return blosc2.decompress2(chunk, nthreads=nthreads)
    blosc2.decompress2(chunk, dst=out, nthreads=nthreads)
    return out


def decode_into(buffer, table, indices, out: np.ndarray, threads: int, name: str,
                codec: str | None = None) -> None:
    """Decode the chunks `indices` of `buffer` (a memory map of the file, or the chunk bytes)
    straight into out[0], out[1], ...: parallel over frames, each worker writing its own
    slice (no intermediate copies); with fewer frames than threads, each frame gets
    threads // frames blosc threads. One frame gets all the threads."""
    size = len(buffer)

    def one(slot: int, index: int, nthreads: int) -> None:
        offset, cbytes = table[index]
        if offset + cbytes > size:
            raise MRCZError(f"{name}: truncated: chunk {index} needs bytes "
                            f"{offset}..{offset + cbytes} of a {size}-byte file")
        blob = memoryview(buffer)[offset:offset + cbytes]
        try:
            # nbytes was checked against the frame size: blosc2 writes exactly
            # out[slot].nbytes bytes.
            decode(blob, out[slot], nthreads)
        except MRCZError:
            raise
        except Exception as exc:
            raise MRCZError(f"{name}: chunk {index} (frame {index}) at byte {offset} is "
                            f"corrupt ({codec or 'blosc'}): {exc}") from None
        finally:
            blob.release()  # a memory map can only close once no view of it is left

    if len(indices) <= 1 or threads <= 1:
        for slot, index in enumerate(indices):
            one(slot, index, threads)
        return
    # Fewer frames than threads: each frame gets blosc threads of its own (decoding does not
    # depend on them), so a 10-frame stack can use 16 cores.
    per_frame = max(1, threads // len(indices))
    with ThreadPoolExecutor(max_workers=min(threads, len(indices)),
                            thread_name_prefix="mrcz-decompress") as pool:
        futures = [pool.submit(one, slot, index, per_frame)
                   for slot, index in enumerate(indices)]
        for future in futures:
            future.result()
