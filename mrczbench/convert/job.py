"""Convert one movie: stream its frames into the output format under a temporary name, decode
the result frame by frame and compare it with the input (SHA-256 per frame), and only then
rename it into place and return its manifest record. The same function runs in a local
process pool and on Dask workers, so it takes and returns plain picklable values.

The stages overlap (hashlib, blosc and file I/O release the GIL): each frame is hashed in
place (no copy) by a hashing thread while the next frame is read and earlier ones compress;
the verification pass decodes frame i+1 while frame i is hashed; and the kernel is asked
to read the next movie ahead (posix_fadvise WILLNEED) while this one converts.

TIFF orientation: relion_convert_to_tiff writes each frame's rows bottom-up ("Have to flip
the Y axis") because RELION flips TIFF along Y when reading; mrczbench writes TIFF the same
way, so RELION sees the orientation of the MRC input, and flips back when verifying.
"""
from __future__ import annotations

import hashlib
import os
import socket
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from mrczbench.convert.inputs import Task
from mrczbench.errors import MrczbenchError

MIB = 2 ** 20


@dataclass(frozen=True)
class Settings:
    out: str
    format: str = "mrcz"                  # mrcz | tiff
    codec: str = "zstd"
    level: int = 1
    blocksize: int | None = None
    filter: str = "bitshuffle"
    compression: str = "auto"             # TIFF: auto | lzw | deflate | none
    tiff_level: int = 6                   # deflate level (RELION's default)
    threads: int = 1
    checksum: bool = False                # per-frame SHA-256 inside MRCZ files
    gain: str | None = None               # gain reference: store gain-normalised float32 as counts
    shard: tuple[int, int] | None = None
    config: dict = field(default_factory=dict)


def tiff_compression(settings: Settings, nx: int) -> str:
    """relion_convert_to_tiff's `auto`: deflate for 4096-wide (Falcon) frames, else LZW."""
    if settings.compression == "auto":
        return "deflate" if nx == 4096 else "lzw"
    return settings.compression


def frame_sha256(frame: np.ndarray) -> bytes:
    """SHA-256 of a frame's bytes as they lie in memory (C order), hashed in place: hashlib
    takes the array's buffer (no copy) and releases the GIL while it hashes."""
    return hashlib.sha256(memoryview(np.ascontiguousarray(frame).reshape(-1).view(np.uint8))).digest()


class FrameHasher:
    """Per-frame SHA-256 digests, in frame order, computed by one background thread while
    the caller reads, compresses or decodes the next frames. At most `window` frames wait
    to be hashed (the caller waits beyond that), so memory stays bounded."""

    def __init__(self, window: int = 8):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="convert-hash")
        self._pending: deque[Future] = deque()
        self._digests: list[bytes] = []
        self._window = window

    def add(self, frame: np.ndarray) -> np.ndarray:
        frame = np.ascontiguousarray(frame)
        self._pending.append(self._pool.submit(frame_sha256, frame))
        while len(self._pending) > self._window:
            self._digests.append(self._pending.popleft().result())
        return frame

    def hashing(self, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """The frames, each handed to the hasher as it passes."""
        for frame in frames:
            yield self.add(frame)

    def digests(self) -> list[bytes]:
        while self._pending:
            self._digests.append(self._pending.popleft().result())
        return self._digests

    def clear(self) -> None:
        self.digests().clear()

    def __enter__(self) -> "FrameHasher":
        return self

    def __exit__(self, *exc) -> None:
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)


def _write_mrcz(path: Path, frames, count: int, settings: Settings, meta: dict | None = None) -> None:
    from mrczbench import mrcz
    mrcz.write(path, mrcz.CountedFrames(frames, count), codec=settings.codec, level=settings.level,
               threads=settings.threads, blocksize=settings.blocksize, filter=settings.filter,
               checksum=settings.checksum, meta=meta, meta_format="msgpack" if meta else "json")


def _write_counts(path: Path, movie, settings: Settings, hasher: FrameHasher) -> None:
    """A gain-normalised movie as integer counts + gain (mrczbench.movies.gain), losslessly:
    a value that is not an exact multiple of its reliable gain fails the movie."""
    from mrczbench.movies import gain
    reference, reliable = gain.read_reference(settings.gain, movie.shape[1:])
    _, section, counts = gain.convert_source(str(movie.path), lambda: hasher.hashing(movie.iter_frames()),
                                             movie.shape[0], reference, reliable)
    hasher.clear()  # the check pass hashed the frames once already; the write pass hashes again
    section["gain_file"] = Path(settings.gain).name
    _write_mrcz(path, counts, movie.shape[0], settings, {gain.META_KEY: section})


def _write_tiff(path: Path, frames, settings: Settings, nx: int) -> None:
    import tifffile
    from mrczbench.formats.tiff import TIFF_COMPRESSION
    compression = tiff_compression(settings, nx)
    args = {"level": settings.tiff_level} if compression == "deflate" else None
    with tifffile.TiffWriter(path) as tif:
        for frame in frames:
            tif.write(frame[::-1], photometric="minisblack", compression=TIFF_COMPRESSION[compression],
                      compressionargs=args, rowsperstrip=frame.shape[0], software="mrczbench",
                      contiguous=False)


def decoded_frames(path: Path, fmt: str) -> Iterator[np.ndarray]:
    """The frames of a converted output as the input had them (TIFF flipped back)."""
    if fmt == "mrcz":
        from mrczbench import mrcz
        section = (mrcz.read_header(path).meta or {}).get("gain_counts")
        if section:  # a counts file: compare the movie it gives back, not its counts
            from mrczbench.movies import gain
            yield from gain.normalised_frames(path, mrcz.iter_frames(path), section)
        else:
            yield from mrcz.iter_frames(path)
        return
    import tifffile
    with tifffile.TiffFile(path) as tif:
        for page in tif.pages:
            yield page.asarray()[::-1]


def frame_digests(path: Path, fmt: str) -> list[bytes]:
    """SHA-256 of each decoded frame; frame i is hashed while frame i+1 decodes."""
    with FrameHasher() as hasher:
        for frame in decoded_frames(path, fmt):
            hasher.add(frame)
        return hasher.digests()


def read_ahead(path: str | None) -> None:
    """Ask the kernel to start reading a file into the page cache in the background (the
    next movie, while this one converts); a no-op where posix_fadvise is missing or fails."""
    if not path or not hasattr(os, "posix_fadvise"):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def checksum_of(digests: list[bytes]) -> str:
    """The manifest checksum: SHA-256 over the per-frame SHA-256 digests, in frame order."""
    return "sha256:" + hashlib.sha256(b"".join(digests)).hexdigest()


def convert_one(task: Task, settings: Settings, next_input: str | None = None) -> dict:
    """Convert, verify and rename one movie; a failure is a record with status 'failed'.
    `next_input`: the movie likely converted next here, read ahead meanwhile."""
    from mrczbench.atomic import atomic_path
    from mrczbench.movies.readers import open_movie
    started = time.perf_counter()
    read_ahead(next_input)
    target = Path(settings.out) / task.relative
    record = {"input": task.input, "output": task.relative, "status": "failed", "error": None,
              "format": settings.format, "config": settings.config, "shard": settings.shard,
              "host": socket.gethostname(), "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        movie = open_movie(task.input)
        frames, ny, nx = movie.shape
        record.update(frames=frames, ny=ny, nx=nx, dtype=movie.dtype.name,
                      input_bytes=os.path.getsize(task.input), raw_bytes=movie.nbytes)
        if target.exists() and not target.is_file():
            raise MrczbenchError(f"{target} exists and is not a regular file")
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp, FrameHasher(window=2 * settings.threads + 2) as hasher:
            stream = hasher.hashing(movie.iter_frames())
            if settings.gain:
                _write_counts(tmp, movie, settings, hasher)
            elif settings.format == "mrcz":
                _write_mrcz(tmp, stream, frames, settings)
            else:
                _write_tiff(tmp, stream, settings, nx)
            written = hasher.digests()
            if len(written) != frames:
                raise MrczbenchError(f"{task.input}: header says {frames} frames, read {len(written)}")
            decoded = frame_digests(tmp, settings.format)
            if decoded != written:
                bad = next((i for i, (a, b) in enumerate(zip(decoded, written)) if a != b), min(len(decoded), len(written)))
                raise MrczbenchError(f"verification failed: frame {bad} of the output differs from the input")
            record["output_bytes"] = tmp.stat().st_size
        seconds = time.perf_counter() - started
        record.update(status="done", checksum=checksum_of(written), seconds=seconds,
                      ratio=record["output_bytes"] / movie.nbytes if movie.nbytes else None,
                      mib_per_s=movie.nbytes / MIB / seconds, lossless=True)
    except (MrczbenchError, OSError) as exc:
        message = str(exc) if isinstance(exc, MrczbenchError) else f"{exc.strerror or exc}: {exc.filename or task.input}"
        record.update(error=" ".join(message.split())[:500], seconds=time.perf_counter() - started)
    return record
