"""MRCZ's blosc chunks: one blosc1 chunk per frame, stored back to back after the header.

Public API (numcodecs-like), used by mrczbench.mrcz, the `mrcz` contender and the benchmarks:

- `encode(frame, codec, level, filter, nthreads, blocksize)` -> bytes of one chunk;
  `encode_frames(frames, ...)` -> the chunks of a stream of frames, in order, compressed in
  parallel; `write_frames(fd, start, frames, ...)` -> the same chunks written into a file by
  the workers at prefix-summed offsets. One blosc thread per call, frames cut into parts
  joined back byte for byte when there are fewer frames than threads, so the bytes are those
  of one single-threaded call per frame whatever the thread count.
- `chunk_table(source, start, end, count, frame_bytes, typesize, codec, name)` -> [(offset,
  cbytes)]: walks the 16-byte chunk headers of a file or buffer and checks each one against
  what the MRC header says (size, typesize, codec, filter flags).
- `decode(chunk, out=None, nthreads=1)` -> one chunk decoded into `out` (or a new buffer);
  `decode_into(buffer, table, indices, out, threads, name)` -> chunks decoded straight into
  out[0], out[1], ... in parallel, each worker writing its own output slice.

blosc and blosc2 are imported on first use, not when this module loads.
"""
from __future__ import annotations

import functools
import os
import struct
import threading
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
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
    uint8 is stored as int8 (mode 0): the same bytes. With nthreads > 1 blosc1 stores the
    blocks in the order its threads finish them, so the bytes vary from call to call (the
    pixels do not); `encode_part` + `join_parts` give one thread's bytes from several."""
    return _SETTINGS.compress(frame, frame.dtype.itemsize, level, codec, filter_id, nthreads,
                              blocksize)


# ---------------------------------------------------------------- one frame over several threads
#
# blosc1 compresses a chunk block by block, each block on its own (same codec call, same
# shuffle, same maximum output), and stores: 16-byte header | bstarts (int32 offset of each
# block) | the blocks' streams in block order. With one thread, compressing blocks a..b of a
# frame as a chunk of their own (same blocksize argument, at least two whole blocks) gives
# exactly the streams those blocks have in the whole frame's chunk, so a frame can be cut
# into parts on block boundaries, the parts compressed by different threads, and the chunk
# rebuilt byte for byte: the streams concatenated and the bstarts shifted. Three things could
# make a part differ; the rebuild checks for each and falls back to one single-threaded call
# for that frame:
# - blosc shrinks a stream's output limit near the end of the buffer (nbytes + 16): the
#   rebuild is used only when no stream of any chunk, part or whole, got less room than its
#   raw size (`_output_limit_untouched`; always so for data that compresses);
# - a chunk stored uncompressed ("memcpyed") has no bstarts: any such part falls back;
# - a part whose block size (blosc recomputes it from the part's size) is not the frame's.
# Not a guarantee blosc documents: tests/test_mrcz_parallel_write.py pins it for every codec,
# filter, typesize and block size, on compressible, incompressible and borderline data.

# Parts of a frame are at least this big (a blosc call costs a context and a codec state;
# smaller parts would cost more than the balance they buy).
MIN_PART_BYTES = 2**18


@functools.lru_cache(maxsize=64)
def block_bytes(nbytes: int, typesize: int, codec: str, level: int, filter_id: int,
                blocksize: int) -> int:
    """The block size blosc1 uses for a chunk of `nbytes` (its automatic choice for
    blocksize 0, or the forced one after its clamps and enlargements), read from the header
    of a chunk of zeros of that size (~20 ms for a 14 MB frame, once per setting)."""
    zeros = np.zeros(nbytes, np.uint8)
    head = parse_chunk_header(_SETTINGS.compress(zeros, typesize, level, codec, filter_id, 1,
                                                 blocksize)[:CHUNK_HEADER_BYTES])
    return head.blocksize


def split_ranges(nbytes: int, block: int, parts: int) -> list[tuple[int, int]]:
    """Byte ranges of up to `parts` parts of a chunk, cut on block boundaries, each at least
    two whole blocks (the last also holds the short last block): blosc then keeps the block
    size, and a part's first block has its full output limit (a one-block chunk has 8 bytes
    less room than the block)."""
    whole = nbytes // block
    parts = min(parts, whole // 2)
    if parts <= 1:
        return [(0, nbytes)]
    edges = [round(i * whole / parts) * block for i in range(parts)] + [nbytes]
    return list(zip(edges[:-1], edges[1:]))


def encode_part(frame: np.ndarray, start: int, stop: int, codec: str, level: int,
                filter_id: int, blocksize: int) -> bytes:
    """Bytes start..stop of a frame as one single-threaded blosc1 chunk, with the blocksize
    argument of the whole frame's call (not the block blosc made of it: blosc enlarges a
    forced block for some codecs and typesizes, capped by the chunk's size, so only the same
    argument on a part of at least one whole block gives the same block)."""
    flat = frame.reshape(-1).view(np.uint8)[start:stop]
    return _SETTINGS.compress(flat, frame.dtype.itemsize, level, codec, filter_id, 1, blocksize)


def join_parts(parts: list[bytes], nbytes: int, block: int) -> bytes | None:
    """The chunk a single-threaded blosc1 call makes of the whole frame, rebuilt from the
    chunks of its consecutive parts (`encode_part`); None when that cannot be guaranteed
    (see above): the caller then compresses the frame in one call."""
    if len(parts) == 1:
        return parts[0]
    heads = [parse_chunk_header(part[:CHUNK_HEADER_BYTES]) for part in parts]
    nblocks = -(-nbytes // block)
    streams = []
    for part, head in zip(parts, heads):
        count = -(-head.nbytes // block)
        if (head.flags & FLAG_MEMCPYED or head.blocksize != block or head.cbytes != len(part)
                or part[:4] != parts[0][:4] or not _output_limit_untouched(part, head)):
            return None
        streams.append((part, CHUNK_HEADER_BYTES + 4 * count, count))
    if sum(count for _, _, count in streams) != nblocks:
        return None
    total = CHUNK_HEADER_BYTES + 4 * nblocks + sum(len(p) - skip for p, skip, _ in streams)
    starts, payloads = [], []
    at = CHUNK_HEADER_BYTES + 4 * nblocks
    for part, skip, count in streams:
        starts.append(np.frombuffer(part, "<i4", count, CHUNK_HEADER_BYTES) - skip + at)
        payloads.append(memoryview(part)[skip:])
        at += len(part) - skip
    # version, codec version, flags, typesize | nbytes, blocksize, cbytes | bstarts | streams
    joined = b"".join([parts[0][:4], struct.pack("<3I", nbytes, block, total),
                       np.concatenate(starts).astype("<i4").tobytes(), *payloads])
    return joined if _output_limit_untouched(joined, parse_chunk_header(joined[:16])) else None


def _output_limit_untouched(chunk: bytes, head: ChunkHeader) -> bool:
    """True when blosc compressed every stream of this chunk with its full output limit.
    blosc1 gives each stream (a block, or one byte plane of it when blocks are split) room for
    its raw size, shrunk to what is left of nbytes + 16 when the chunk is near that end;
    until the first shrink the streams do not depend on the rest of the chunk, so a chunk
    whose every stream started far enough from the end holds the streams of any other chunk
    with the same blocks. Walks the streams only for chunks within a block of the limit."""
    limit = head.nbytes + CHUNK_HEADER_BYTES
    block = head.blocksize
    if head.cbytes + block <= limit:
        return True
    nblocks = -(-head.nbytes // block)
    split = not head.flags & 0x10  # blosc1's "blocks not split" flag
    starts = np.frombuffer(chunk, "<i4", nblocks, CHUNK_HEADER_BYTES).tolist()
    for j, at in enumerate(starts):
        size = min(block, head.nbytes - j * block)
        planes = head.typesize if split and size == block else 1
        for _ in range(planes):
            at += 4
            if at + size // planes > limit:
                return False
            at += int.from_bytes(chunk[at - 4:at], "little")
    return True


def parts_per_frame(threads: int, frame_count: int | None, frame_nbytes: int) -> int:
    """How many parts to cut each frame into so that `threads` workers stay busy: 1 when
    the frame count is unknown (a stream) or already fills the threads in near-whole rounds,
    else the fewest parts whose units fill the rounds to >= 90 % (10 frames on 16 threads:
    3 parts, 30 units in 2 rounds of 16), each part at least MIN_PART_BYTES."""
    if threads <= 1 or not frame_count:
        return 1
    most = max(1, frame_nbytes // MIN_PART_BYTES)
    best, best_balance = 1, 0.0
    for parts in range(1, min(most, threads) + 1):
        units = frame_count * parts
        balance = units / (threads * -(-units // threads))
        if balance >= 0.9:
            return parts
        if balance > best_balance + 1e-9:
            best, best_balance = parts, balance
    return best


class _FrameEncoder:
    """Compresses the frames of one stack as work units of a thread pool: whole frames, or
    parts of frames joined back into the single-threaded chunk (bytes independent of the
    thread count). `units(index, frame)` gives the calls to run in workers; `done(index,
    chunk)` is called by the worker that finishes a frame's chunk."""

    def __init__(self, codec, level, filter_id, threads, blocksize, frame_count, done):
        self.settings = (codec, level, filter_id)
        self.threads, self.blocksize, self.frame_count = threads, blocksize, frame_count
        self.done = done
        self.lock = threading.Lock()
        self.partial: dict[int, list] = {}
        self.parts = None

    def units(self, index: int, frame: np.ndarray):
        """(callable, args) work units of frame `index`."""
        if self.parts is None:
            self.parts = parts_per_frame(self.threads, self.frame_count, frame.nbytes)
        if self.parts == 1:
            return [(self._whole, (index, frame))]
        codec, level, filter_id = self.settings
        block = block_bytes(frame.nbytes, frame.dtype.itemsize, codec, level, filter_id,
                            self.blocksize)
        ranges = split_ranges(frame.nbytes, block, self.parts)
        if len(ranges) == 1:
            return [(self._whole, (index, frame))]
        with self.lock:
            self.partial[index] = [None] * len(ranges)
        return [(self._part, (index, frame, slot, start, stop, block))
                for slot, (start, stop) in enumerate(ranges)]

    def _whole(self, index, frame):
        codec, level, filter_id = self.settings
        self.done(index, encode(frame, codec, level, filter_id, 1, self.blocksize))

    def _part(self, index, frame, slot, start, stop, block):
        codec, level, filter_id = self.settings
        chunk = encode_part(frame, start, stop, codec, level, filter_id, self.blocksize)
        with self.lock:
            parts = self.partial[index]
            parts[slot] = chunk
            if any(p is None for p in parts):
                return
            del self.partial[index]
        joined = join_parts(parts, frame.nbytes, block)
        if joined is None:  # incompressible: one call gives blosc's own bytes
            joined = encode(frame, codec, level, filter_id, 1, self.blocksize)
        self.done(index, joined)


def _run_units(frames, encoder: _FrameEncoder, on_first, wait_room, on_error,
               inline: bool = False) -> int:
    """Feed the frames' work units to a pool of encoder.threads workers, at most 2 units
    per worker in flight, waiting for the first to finish (not the oldest: no worker idles
    behind a slow frame); `wait_room(index)` blocks until frame `index` may start, and a
    worker's error goes to `on_error(exc)` at once (to wake it). `inline`: no pool, the
    calling thread does the work (1 thread, frames already in memory). Returns the number of
    frames; re-raises the first worker error."""

    def guarded(fn, *args):
        try:
            fn(*args)
        except BaseException as exc:
            on_error(exc)
            raise

    count = 0
    if inline:  # one thread compresses and writes, as python-mrcz: nothing to overlap
        for index, frame in enumerate(frames):
            if on_first is not None:
                on_first(frame)
                on_first = None
            for fn, args in encoder.units(index, frame):
                fn(*args)
            count += 1
        return count
    window = 2 * encoder.threads
    with ThreadPoolExecutor(max_workers=encoder.threads,
                            thread_name_prefix="mrcz-compress") as pool:
        in_flight: set[Future] = set()
        try:
            for index, frame in enumerate(frames):
                if on_first is not None:
                    on_first(frame)
                    on_first = None
                wait_room(index)
                for fn, args in encoder.units(index, frame):
                    while len(in_flight) >= window:
                        finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                        for future in finished:
                            future.result()
                    in_flight.add(pool.submit(guarded, fn, *args))
                count += 1
            for future in as_completed(in_flight):
                future.result()
            in_flight = set()
        finally:
            for future in in_flight:
                future.cancel()
    return count


def encode_frames(frames: Iterable[np.ndarray], codec: str, level: int, filter_id: int,
                  threads: int, blocksize: int, frame_count: int | None = None,
                  on_first=None) -> Iterator[bytes]:
    """The chunks of `frames`, in order, each exactly what one single-threaded blosc call
    makes of it, whatever `threads` is. Workers compress one frame each, or parts of frames
    when `frame_count` is known and whole frames would leave threads idle
    (`parts_per_frame`: a 10-frame stack can use 16 cores). At most `threads` frames are in
    flight, so a streamed stack stays streamed. `on_first(frame)` sees the first frame
    first. (`write_frames` writes a file without waiting for chunks in order.)"""
    finished: dict[int, bytes] = {}
    encoder = _FrameEncoder(codec, level, filter_id, threads, blocksize, frame_count,
                            finished.__setitem__)
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mrcz-compress") as pool:
        in_flight: deque[tuple[int, list[Future]]] = deque()

        def oldest() -> bytes:
            index, futures = in_flight.popleft()
            for future in futures:
                future.result()
            return finished.pop(index)

        try:
            for index, frame in enumerate(frames):
                if on_first is not None:
                    on_first(frame)
                    on_first = None
                in_flight.append((index, [pool.submit(fn, *args)
                                          for fn, args in encoder.units(index, frame)]))
                while len(in_flight) > threads:
                    yield oldest()
            while in_flight:
                yield oldest()
        finally:
            for _, futures in in_flight:
                for future in futures:
                    future.cancel()


class _ChunkPlacer:
    """Puts each finished chunk at its place in the file: the offset after the chunks before
    it (a prefix sum, known once they are all compressed). The worker that completes a
    prefix writes the chunks it placed with os.pwrite, so chunks are written by all workers
    in any order instead of by one thread in frame order. At most `room` frames may be
    started and not yet written (memory stays bounded if one frame is slow)."""

    def __init__(self, fd: int, start: int, room: int):
        self.fd, self.end, self.room = fd, start, room
        self.cond = threading.Condition()
        self.waiting: dict[int, bytes] = {}
        self.placed = 0       # frames 0..placed-1 have their offsets
        self.written = 0      # frames whose pwrite finished
        self.error: BaseException | None = None

    def done(self, index: int, chunk: bytes) -> None:
        with self.cond:
            self.waiting[index] = chunk
            ready = []
            while self.placed in self.waiting:
                chunk = self.waiting.pop(self.placed)
                ready.append((self.end, chunk))
                self.end += len(chunk)
                self.placed += 1
        for offset, chunk in ready:
            view = memoryview(chunk)
            while view:
                written = os.pwrite(self.fd, view, offset)
                view, offset = view[written:], offset + written
        with self.cond:
            self.written += len(ready)
            self.cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self.cond:
            self.error = self.error or exc
            self.cond.notify_all()

    def wait_room(self, index: int) -> None:
        with self.cond:
            while index - self.written >= self.room and self.error is None:
                self.cond.wait(0.5)
            if self.error is not None:
                raise self.error


def write_frames(fd: int, start: int, frames: Iterable[np.ndarray], codec: str, level: int,
                 filter_id: int, threads: int, blocksize: int, frame_count: int | None = None,
                 on_first=None, in_memory: bool = False) -> tuple[int, int]:
    """Compress `frames` (as `encode_frames`: the same bytes) and write the chunks back to
    back into the open file `fd` from byte `start`, each worker writing the chunks whose
    offsets it completed (os.pwrite; the file's position is not used). `in_memory`: the
    frames cost nothing to produce (an array), so at 1 thread the calling thread compresses
    them itself; a stream (frames read or decoded as they come) keeps one compressing worker
    beside the thread that produces them. Returns (frames, chunk bytes)."""
    placer = _ChunkPlacer(fd, start, room=2 * threads)
    encoder = _FrameEncoder(codec, level, filter_id, threads, blocksize, frame_count,
                            placer.done)
    count = _run_units(frames, encoder, on_first, placer.wait_room, placer.fail,
                       inline=threads == 1 and in_memory)
    if placer.error is not None:
        raise placer.error
    return count, placer.end - start


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
