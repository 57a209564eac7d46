"""Convert one movie: stream its frames into the output format under a temporary name, decode
the result frame by frame and compare it with the input (SHA-256 per frame), and only then
rename it into place and return its manifest record. The same function runs in a local
process pool and on Dask workers, so it takes and returns plain picklable values.

The stages overlap (hashlib, blosc and file I/O release the GIL): each frame is hashed in
place (no copy) by a hashing thread while the next frame is read and earlier ones compress;
the verification pass decodes frame i+1 while frame i is hashed; and the kernel is asked
to read the next movie ahead (posix_fadvise WILLNEED) while this one converts.

TIFF pages as relion_convert_to_tiff writes them (src/tiff_converter.h,
write_tiff_one_page): one page per frame with no ImageDescription (so tifffile, libtiff and
RELION all read one series of every page), the whole frame in one strip, RELION's sample
formats (int8 INT: RELION >= 4.0 writes MRC mode 0 as signed char; int16 INT; float32
IEEEFP; uint8/uint16 UINT, which tifffile leaves to the tag's default, 1, where RELION
writes it: libtiff's TIFFGetFieldDefaulted, RELION's reader, returns 1 for both), the pixel size as XResolution/YResolution in
pixels per cm (1e8 / Angstrom, ResolutionUnit 3) when the input has one, and each frame's
rows bottom-up ("Have to flip the Y axis") because RELION flips TIFF along Y when reading,
so RELION sees the orientation of the MRC input; verification flips back.
"""
from __future__ import annotations

import hashlib
import os
import socket
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from mrczbench.convert.inputs import Task
from mrczbench.errors import MrczbenchError
from mrczbench.units import MiB

GAIN_REFERENCE = "gain-reference.mrc"  # relion_convert_to_tiff --gain writes it into --o


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
    eer_grouping: int = 32                # EER internal frames per fraction (RELION's --eer_grouping)
    gain_ref: dict | None = None          # its reference_record: outputs name it, not hold it
    shard: tuple[int, int] | None = None
    config: dict = field(default_factory=dict)


def tiff_compression(settings: Settings, nx: int, eer: bool = False) -> str:
    """relion_convert_to_tiff's `auto` (decide_filter): deflate for 4096-wide (Falcon) frames,
    else LZW; EER renderings always LZW (sparse counts)."""
    if settings.compression == "auto":
        return "deflate" if nx == 4096 and not eer else "lzw"
    return settings.compression


def pixel_size_of(movie) -> float | None:
    """The movie's X pixel size in Angstrom when its header has a positive one (MRC/MRCZ)."""
    size = ((movie.microscope or {}).get("pixelsize") or (0, 0, 0))[-1]
    return float(size) if size and size > 0 else None


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
    # the check pass hashes the frames; a second pass (counts too big to keep) hashes again
    _, section, counts = gain.convert_source(str(movie.path), lambda: hasher.hashing(movie.iter_frames()),
                                             movie.shape[0], reference, reliable,
                                             on_second_pass=hasher.clear,
                                             tolerance=gain.reference_tolerance(settings.gain),
                                             reference=settings.gain_ref)
    if settings.gain_ref is None:
        section["gain_file"] = Path(settings.gain).name
    _write_mrcz(path, counts, movie.shape[0], settings, {gain.META_KEY: section})


def _write_tiff(path: Path, frames, compression: str, level: int,
                pixel_size: float | None = None) -> None:
    """RELION's pages (see the module docstring), one per frame, streamed."""
    from mrczbench.formats.tiff import write_relion_tiff
    write_relion_tiff(path, frames, compression=compression, level=level, pixel_size=pixel_size)


def write_gain_reference(out: Path, gain_path: str) -> Path:
    """OUT/gain-reference.mrc for TIFF counts, as relion_convert_to_tiff --gain writes it:
    float32, the gain at reliable pixels and 1.0 elsewhere (page x reference = the movie).
    One that is already there is kept when it holds the same gain, else refused (another
    run's TIFF files need theirs)."""
    from mrczbench import mrcz
    from mrczbench.atomic import atomic_path
    from mrczbench.movies import gain
    reference, reliable = gain.read_reference(gain_path)
    reference = np.where(reliable, reference, np.float32(1.0)).astype(np.float32)
    target = out / GAIN_REFERENCE
    if target.exists():
        try:
            same = np.array_equal(mrcz.read(target)[0].view(np.uint32), reference.view(np.uint32))
        except (MrczbenchError, ValueError):
            same = False
        if not same:
            raise MrczbenchError(f"{target} exists and holds another gain reference: the TIFF "
                                 f"files converted with it need it; use another --out")
        return target
    with atomic_path(target) as tmp:
        mrcz.write(tmp, reference[None], codec=None)
    return target


def _write_counts_tiff(path: Path, movie, settings: Settings, hasher: FrameHasher) -> None:
    """A gain-normalised movie as RELION's TIFF counts (mrczbench.movies.gain.relion_pages)
    beside OUT/gain-reference.mrc."""
    from mrczbench.movies import gain
    reference, reliable = gain.read_reference(settings.gain, movie.shape[1:])
    _, pages = gain.relion_pages(str(movie.path), lambda: hasher.hashing(movie.iter_frames()),
                                 movie.shape[0], reference, reliable)
    hasher.clear()  # the check pass hashed the frames once already; the write pass hashes again
    _write_tiff(path, pages, tiff_compression(settings, movie.shape[2]), settings.tiff_level,
                pixel_size_of(movie))


def decoded_frames(path: Path, fmt: str, gain_reference: Path | None = None) -> Iterator[np.ndarray]:
    """The frames of a converted output as the input had them (TIFF flipped back, TIFF counts
    multiplied by their gain reference)."""
    if fmt == "mrcz":
        from mrczbench import mrcz
        section = (mrcz.read_header(path).meta or {}).get("gain_counts")
        if section:  # a counts file: compare the movie it gives back, not its counts
            from mrczbench.movies import gain
            yield from gain.normalised_frames(path, mrcz.iter_frames(path), section)
        else:  # stored per-frame checksums (--checksum) are checked as the frames are read
            yield from mrcz.iter_frames(path, verify=mrcz.CHECKSUM_KEY in (mrcz.read_header(path).meta or {}))
        return
    from mrczbench.formats.tiff import iter_relion_tiff
    reference = None
    if gain_reference is not None:
        from mrczbench import mrcz
        reference = mrcz.read(gain_reference)[0]
    for frame in iter_relion_tiff(path, strict=True):  # a damaged strip is one DatasetError
        yield frame if reference is None else np.multiply(frame, reference, dtype=np.float32)


def frame_digests(path: Path, fmt: str, gain_reference: Path | None = None) -> list[bytes]:
    """SHA-256 of each decoded frame; frame i is hashed while frame i+1 decodes."""
    with FrameHasher() as hasher:
        for frame in decoded_frames(path, fmt, gain_reference):
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


def check_inside(target: Path, out: Path) -> None:
    """Refuse to write `target` through a symlink under --out that leads outside it (a linked
    folder on the path, or a link under the target's name)."""
    root = out.resolve()
    existing = target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # the folders below it are created inside it
    for path in (existing, target if target.is_symlink() else None):
        if path is not None and not path.resolve().is_relative_to(root):
            raise MrczbenchError(f"{target}: {path} is a symlink leading outside --out {out} "
                                 f"(to {path.resolve()}); refusing to write through it")


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
        movie = open_movie(task.input, eer_grouping=settings.eer_grouping)
        frames, ny, nx = movie.shape
        record.update(frames=frames, ny=ny, nx=nx, dtype=movie.dtype.name,
                      input_bytes=os.path.getsize(task.input), raw_bytes=movie.nbytes)
        check_inside(target, Path(settings.out))
        if target.exists() and not target.is_file():
            raise MrczbenchError(f"{target} exists and is not a regular file")
        target.parent.mkdir(parents=True, exist_ok=True)
        reference = None
        with atomic_path(target) as tmp, FrameHasher(window=2 * settings.threads + 2) as hasher:
            stream = hasher.hashing(movie.iter_frames())
            if settings.gain and settings.format == "tiff":
                reference = Path(settings.out) / GAIN_REFERENCE
                record["gain_reference"] = GAIN_REFERENCE
                _write_counts_tiff(tmp, movie, settings, hasher)
            elif settings.gain:
                _write_counts(tmp, movie, settings, hasher)
            elif settings.format == "mrcz":
                _write_mrcz(tmp, stream, frames, settings)
            else:
                _write_tiff(tmp, stream, tiff_compression(settings, nx, movie.kind == "eer"),
                            settings.tiff_level, pixel_size_of(movie))
            written = hasher.digests()
            if len(written) != frames:
                raise MrczbenchError(f"{task.input}: header says {frames} frames, read {len(written)}")
            decoded = frame_digests(tmp, settings.format, reference)
            if decoded != written:
                bad = next((i for i, (a, b) in enumerate(zip(decoded, written)) if a != b), min(len(decoded), len(written)))
                raise MrczbenchError(f"verification failed: frame {bad} of the output differs from the input")
            record["output_bytes"] = tmp.stat().st_size
        seconds = time.perf_counter() - started
        record.update(status="done", checksum=checksum_of(written), seconds=seconds,
                      ratio=record["output_bytes"] / movie.nbytes if movie.nbytes else None,
                      mib_per_s=movie.nbytes / MiB / seconds, lossless=True)
    except (MrczbenchError, OSError) as exc:
        message = str(exc) if isinstance(exc, MrczbenchError) else f"{exc.strerror or exc}: {exc.filename or task.input}"
        record.update(error=" ".join(message.split())[:500], seconds=time.perf_counter() - started)
    return record
