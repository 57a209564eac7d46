"""Readers of users' movie files: the one way mrczbench opens a movie it did not make.

    movie = open_movie("a.tiff")            # one file -> Movie
    movie.name, movie.shape, movie.dtype    # (frames, ny, nx), numpy dtype
    for frame in movie.iter_frames(): ...   # 2-D frames, streamed; the count is checked
    stack = movie.read()                    # the whole (frames, ny, nx) stack

    for movie in iter_movies(["movies.star", "folder/"]): ...   # lists and folders, lazily
    movies = open_movies(paths)                                 # the same, as a list

Types: MRC/MRCZ (.mrc .mrcs .mrcz, through mrczbench.mrcz; plain MRC that our codec does
not support through mrcfile), TIFF (.tif .tiff), EER (.eer, rendered as RELION does),
numpy arrays (.npy: a 2-D frame or a 3-D (z, y, x) stack, memory-mapped), lists (.lst: one
path a line) and RELION .star files (column rlnMicrographMovieName), and folders.

Safety rules every reader keeps (errors are one-line DatasetErrors naming the file):
- only regular files are opened (a FIFO would block, a device never ends);
- gzip/bzip2/xz/zstd-compressed files are recognised by their magic bytes, whatever the
  suffix, and refused with "decompress it first";
- a movie has at least one frame, and one that ends early (a truncated TIFF, an MRC file
  cut short) is an error giving the frame count expected and found;
- sizes a file claims are checked against the file's size and available memory before
  anything is allocated;
- TIFF and EER are read strictly (movies/tiffpages.py): damage tifffile only logs is an
  error naming the page, and TIFF pages are decoded here for the common strip layouts only;
- lists are streamed and movies opened one at a time, so a 10^6-line STAR file costs
  memory for one movie, not for all of them.
"""
from __future__ import annotations

import math
import os
import sys
import warnings
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from mrczbench import mrcz
from mrczbench.errors import DatasetError, MRCZError
from mrczbench.mrc import chunks, header as mrc_header
from mrczbench.movies import lists
from mrczbench.movies.lists import STAR_MOVIE_COLUMN  # noqa: F401  (part of this API)
from mrczbench.movies import tiffpages
from mrczbench.movies.eer import EerMovie, is_eer
from mrczbench.movies.movie import (Movie, available_memory, check_eer_options, check_fits_memory,
                                    check_not_compressed, check_regular_file)
from mrczbench.movies.tiffpages import TiffLog
from mrczbench.units import MiB

MOVIE_SUFFIXES = (".mrc", ".mrcs", ".mrcz", ".tif", ".tiff", ".eer", ".npy")
MRC_SUFFIXES = (".mrc", ".mrcs", ".mrcz")
LIST_SUFFIXES = (".lst", ".star")
# A compressed TIFF page may claim at most this many times its stored bytes (or 256 MiB,
# whichever is more): a 612-byte file claiming 65535 x 65535 pixels is refused, not allocated.
MAX_TIFF_EXPANSION = 4096
MIN_TIFF_CLAIM = 256 * MiB


# --------------------------------------------------------------------------------------
# Movies


class MrcMovie(Movie):
    """MRC or MRCZ via mrczbench.mrcz (compressed, plain and 4-bit mode 101 files)."""

    def __init__(self, path: Path):
        header = mrcz.read_header(path)
        super().__init__(path, header.shape, header.dtype)
        self.kind = "mrcz" if header.codec else "mrc"
        meta = dict(header.meta) if header.meta else None
        if meta is not None:
            meta.pop("clevel", None)  # described the input's compression, not a copy's
            meta.pop(mrcz.DTYPE_KEY, None)  # how the input stored uint8: mrcz.write re-records it
        self.meta = meta or None
        self.microscope = {"voltage": header.voltage, "C3": header.C3, "gain": header.gain,
                           "pixelsize": header.pixelsize}
        self.raw_bytes = header.raw_bytes
        self.checksummed = mrcz.CHECKSUM_KEY in (header.meta or {})

    def _frames(self):
        # a file with stored checksums (--checksum) is checked on every read: a corrupt
        # chunk must not be copied into a new file that would carry fresh checksums
        try:
            yield from mrcz.iter_frames(self.path, verify=self.checksummed)
        except MRCZError as exc:
            raise DatasetError(f"{self.path}: cannot read: {exc}") from None
        except MemoryError:
            raise DatasetError(f"{self.path}: a frame claims more memory than is available "
                               "(damaged header?)") from None


def plain_mrc_problem(path: Path) -> str | None:
    """Why `path` is not a plain MRC file that mrcfile may read for us (None: it is).

    MRCZ (mode >= 1000, or a .mrcz name) never qualifies: read permissively, its compressed
    bytes would come back as pixels. Neither does a header whose data would not fit in the
    file (a damaged or compressed file) or whose extended header exceeds the file."""
    if path.suffix.lower() == ".mrcz":
        return "an .mrcz file is compressed; only mrczbench's MRCZ reader may read it"
    with open(path, "rb") as handle:
        head = handle.read(1024)
    size = path.stat().st_size
    if len(head) < 1024:
        return f"{size} bytes is shorter than the 1024-byte MRC header"
    _, record = mrc_header.parse(head)  # the one header table and byte-order rule
    nx, ny, nz, mode, nsymbt = (int(record[name]) for name in ("nx", "ny", "nz", "mode", "nsymbt"))
    if mode >= mrc_header.MRC_COMP_RATIO:
        return f"the header says MRCZ (mode {mode})"
    if mode not in mrc_header.MODE_DTYPES or mode == mrc_header.MODE_4BIT:  # mrcfile: no mode 101
        return f"mode {mode} is not an MRC pixel mode"
    if min(nx, ny, nz) < 1 or nsymbt < 0:
        return f"header sizes {nx} x {ny} x {nz}, extended header {nsymbt} bytes are invalid"
    if b"MRCZ" in head[224:1024] or _starts_with_blosc_chunk(path, 1024 + nsymbt, size):
        return "the file holds MRCZ (blosc) chunks under a damaged mode word"
    needed = 1024 + nsymbt + nx * ny * nz * mrc_header.MODE_DTYPES[mode].itemsize
    if needed > size:
        return (f"the header claims {needed} bytes ({nz} x {ny} x {nx}, mode {mode}) but the "
                f"file has {size}: truncated or not plain MRC")
    return None


def _starts_with_blosc_chunk(path: Path, offset: int, size: int) -> bool:
    """Whether the data region starts like a blosc1 chunk header (version 2, a pixel typesize,
    a stored size that fits the file): an MRCZ file whatever its mode word says."""
    if offset + 16 > size:
        return False
    with open(path, "rb") as handle:
        handle.seek(offset)
        chunk = handle.read(16)
    head = chunks.parse_chunk_header(chunk)  # the MRCZ chunk layout's one parser
    return head.version == 2 and head.typesize in (1, 2, 4, 8) and head.nbytes > 0 and \
        chunks.CHUNK_HEADER_BYTES <= head.cbytes <= size - offset


class PermissiveMrcMovie(Movie):
    """Plain MRC files our codec rejects (e.g. trailing bytes, odd headers), read with mrcfile,
    memory-mapped. Only used after plain_mrc_problem() found nothing wrong."""

    kind = "mrc"

    def __init__(self, path: Path):
        import mrcfile
        with warnings.catch_warnings(record=True) as caught:  # permissive mode warns instead of failing
            warnings.simplefilter("always")
            with mrcfile.mmap(path, mode="r", permissive=True) as mrc:
                data = mrc.data
                if data is None or data.ndim < 2:
                    problems = "; ".join(str(w.message) for w in caught) or "no image data"
                    raise DatasetError(f"{path}: cannot read as MRC: {problems}")
                shape = data.shape if data.ndim == 3 else (1, *data.shape[-2:])
                super().__init__(path, shape, data.dtype.newbyteorder("="))
        if caught:
            print(f"mrczbench: warning: {path}: read with mrcfile: {caught[0].message}",
                  file=sys.stderr, flush=True)

    def _frames(self):
        import mrcfile
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # reported when opened
            mrc = mrcfile.mmap(self.path, mode="r", permissive=True)
        with mrc:
            data = mrc.data.reshape(self.shape)
            for i in range(self.shape[0]):
                yield np.array(data[i], dtype=self.dtype)


def _check_tiff_page(path: Path, page, index: int, free: int) -> None:
    """Claimed page sizes against the stored bytes and memory, before any pixel is decoded."""
    stored = int(sum(page.databytecounts))
    claimed = math.prod(page.shape) * np.dtype(page.dtype).itemsize
    if int(page.compression) != 1 and claimed > max(MIN_TIFF_CLAIM, MAX_TIFF_EXPANSION * stored):
        raise DatasetError(f"{path}: TIFF page {index} claims {page.shape} {page.dtype} "
                           f"({claimed} bytes) from {stored} stored bytes: damaged header")
    check_fits_memory(path, claimed, f"TIFF page {index}", free)


class TiffMovie(Movie):
    """TIFF movies: every page of the file is a frame, whatever tifffile groups into series,
    since writers that add one page at a time make one series per page. All pages must be
    grey, of one shape and dtype, and of a layout movies/tiffpages.py reads strictly
    (strips; none, LZW, deflate, zstd or PackBits; predictor none or horizontal). Damage
    that tifffile only logs (unreadable tags, strip counts that do not match, a broken page
    chain) is an error naming the page."""

    kind = "tiff"

    def __init__(self, path: Path):
        import tifffile
        file_size, free = path.stat().st_size, available_memory()
        with TiffLog() as log, tifffile.TiffFile(path) as tif:
            first = tif.pages[0]
            frames, extents = 0, []
            for index, page in tiffpages.iter_pages(path, tif):
                if getattr(page, "samplesperpixel", 1) != 1 or len(page.shape) != 2:
                    raise DatasetError(f"{path}: TIFF series has axes {page.axes!r} (page {index}, "
                                       f"shape {page.shape}); only grey frames (YX) are movies")
                if page.shape != first.shape or page.dtype != first.dtype:
                    raise DatasetError(f"{path}: TIFF page {index} is {page.shape} {page.dtype} but "
                                       f"page 0 is {first.shape} {first.dtype}; a movie's pages match")
                _check_tiff_page(path, page, index, free)
                log.check(path, index)
                tiffpages.check_layout(path, page, index)
                tiffpages.check_strips(path, page, index, file_size,
                                       row_bytes=tiffpages.stored_rows_bytes(page))
                extents += tiffpages.page_extents(page)
                frames += 1
            tiffpages.check_no_overlap(path, extents)
            expected = _declared_frames(tif)
            log.check(path, frames - 1)
            if log.chain_broken() or (expected is not None and expected > frames):
                found = f"expected {expected} frames, found {frames}" if expected else \
                    f"the page chain breaks after {frames} frames"
                raise DatasetError(f"{path}: the TIFF movie ends early: {found} (truncated file?)")
            super().__init__(path, (frames, *first.shape), first.dtype)

    def _frames(self):
        import tifffile
        with TiffLog() as log, tifffile.TiffFile(self.path) as tif:
            for index, page in tiffpages.iter_pages(self.path, tif):
                log.check(self.path, index)
                if page.shape != self.shape[1:] or page.dtype != self.dtype or \
                        tiffpages.layout_problem(page):
                    raise DatasetError(f"{self.path}: TIFF page {index} changed since the file "
                                       "was opened")
                try:
                    pixels = tiffpages.decode_page(tif.filehandle, page, tif.byteorder)
                except Exception as exc:  # imagecodecs raises many types
                    raise DatasetError(f"{self.path}: cannot decode TIFF page {index}: "
                                       f"{type(exc).__name__}: {exc}") from None
                yield pixels


def _declared_frames(tif) -> int | None:
    """Frames the file says it holds (tifffile's shaped or ImageJ metadata, summed over its
    series: a writer adding one page at a time declares one frame a page), if it says."""
    if not (tif.is_shaped or tif.is_imagej):
        return None
    try:
        return sum(int(np.prod(series.shape[:-2], dtype=np.int64)) for series in tif.series)
    except (TypeError, ValueError, AttributeError, IndexError):
        return None


class NpyMovie(Movie):
    """A numpy .npy file: a 2-D frame or a 3-D (z, y, x) stack of numbers, memory-mapped so
    that frames stream from disk."""

    kind = "npy"

    def __init__(self, path: Path):
        data = self._map(path)  # a memory map: no pixels are read here
        shape, dtype = data.shape, data.dtype
        del data
        if dtype.kind not in "iufc" or dtype.fields is not None:
            raise DatasetError(f"{path}: .npy dtype {dtype} is not a numeric pixel type; "
                               "expected integers, floats or complex numbers")
        if len(shape) not in (2, 3):
            raise DatasetError(f"{path}: .npy shape {shape}; expected a 2-D frame (y, x) or a "
                               "3-D stack (z, y, x)")
        frames = (1, *shape) if len(shape) == 2 else shape
        super().__init__(path, frames, dtype.newbyteorder("="))

    @staticmethod
    def _map(path: Path) -> np.ndarray:
        with open(path, "rb") as handle:
            if handle.read(6) != b"\x93NUMPY":
                raise DatasetError(f"{path}: not a .npy file (no numpy magic bytes)")
        try:
            data = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:  # object arrays, bad header, truncated
            raise DatasetError(f"{path}: cannot read as .npy: {exc}") from None
        # numpy maps the data from the header's end: a damaged header length would shift
        # every pixel silently, and the data then no longer ends where the file does
        if data.offset + data.nbytes != path.stat().st_size:
            size = path.stat().st_size
            raise DatasetError(f"{path}: the .npy header says {data.nbytes} data bytes from byte "
                               f"{data.offset}, but the file has {size} bytes: a damaged header")
        return data

    def _frames(self):
        data = self._map(self.path)  # the file may have changed since it was opened
        if data.shape[-2:] != self.shape[1:]:
            raise DatasetError(f"{self.path}: frames are now {data.shape[-2:]}, were "
                               f"{self.shape[1:]} when the file was opened")
        for frame in data.reshape(-1, *self.shape[1:]):
            yield np.array(frame, dtype=self.dtype)


# --------------------------------------------------------------------------------------
# Opening files, folders and lists


def open_movie(path: str | os.PathLike, eer_grouping: int = 32, eer_upsampling: int = 1) -> Movie:
    """One movie file -> Movie (DatasetError naming the file and the reason otherwise)."""
    check_eer_options(eer_grouping, eer_upsampling)
    path = path if isinstance(path, Path) else Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in MOVIE_SUFFIXES:
        check_regular_file(path)
        check_not_compressed(path)
        raise DatasetError(f"{path}: unsupported movie type {suffix or '(no extension)'!r}; {supported_text()}")
    check_regular_file(path)
    check_not_compressed(path)
    if suffix in MRC_SUFFIXES:
        return _open_mrc(path)
    if suffix == ".eer":
        return _open_with(EerMovie, path, "EER", eer_grouping, eer_upsampling)
    if suffix == ".npy":
        return _open_with(NpyMovie, path, ".npy")
    if is_eer(path):  # EER files are TIFF files too, whatever their name
        return _open_with(EerMovie, path, "EER", eer_grouping, eer_upsampling)
    return _open_with(TiffMovie, path, "TIFF")


def _open_mrc(path: Path) -> Movie:
    try:
        return MrcMovie(path)
    except MRCZError as exc:
        codec_reason = str(exc).replace(f"{path}: ", "")
    except MemoryError:
        raise DatasetError(f"{path}: the header claims more memory than is available "
                           "(damaged header?)") from None
    problem = plain_mrc_problem(path)
    if problem:  # never let mrcfile guess at an MRCZ or damaged file: its pixels would be wrong
        raise DatasetError(f"{path}: cannot read as MRC/MRCZ: {codec_reason} (and not read "
                           f"as plain MRC: {problem})")
    try:
        return PermissiveMrcMovie(path)
    except Exception as exc:  # mrcfile raises ValueError, OSError, ...
        reason = str(exc).replace(f"{path}: ", "") if isinstance(exc, DatasetError) else \
            f"{type(exc).__name__}: {exc}"
        raise DatasetError(f"{path}: cannot read as MRC/MRCZ: {codec_reason}; mrcfile: {reason}") from None


def _open_with(cls, path: Path, what: str, *args) -> Movie:
    try:
        return cls(path, *args)
    except DatasetError:
        raise
    except MemoryError:
        raise DatasetError(f"{path}: cannot read as {what}: it claims more memory than is "
                           "available (damaged header?)") from None
    except Exception as exc:  # tifffile/imagecodecs raise many types for bad files
        raise DatasetError(f"{path}: cannot read as {what}: {type(exc).__name__}: {exc}") from None


def iter_movies(paths, eer_grouping: int = 32, eer_upsampling: int = 1) -> Iterator[Movie]:
    """Movies from files, folders (their movie files), .lst lists and RELION .star files,
    opened one at a time as the lists are read.

    Relative paths in a list resolve against the list's folder (then, as RELION's project
    convention, the current folder). A missing, unreadable or unsupported file named
    explicitly (or in a list) raises one DatasetError naming the file and the reason; a file
    in a folder that is not a readable movie (an RGB TIFF, a stray .npy) is skipped with a
    warning line on stderr naming it and the reason. No movie at all is a DatasetError.
    EER files are rendered with `eer_grouping` (>= 1) internal frames per fraction on the
    4K (`eer_upsampling` 1) or 8K (2) grid.
    """
    check_eer_options(eer_grouping, eer_upsampling)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found, skipped = 0, []
    for path, in_folder in _expand(paths, ancestors=()):
        try:
            movie = open_movie(path, eer_grouping, eer_upsampling)
        except DatasetError as exc:
            if not in_folder:
                raise
            reason = str(exc).removeprefix(f"{path}: ")
            skipped.append(f"{path}: {reason}")
            print(f"mrczbench: warning: skipping {path}: {reason}", file=sys.stderr, flush=True)
            continue
        found += 1
        yield movie
    if not found:
        if skipped:
            raise DatasetError(f"no movie found: {len(skipped)} file(s) skipped, none readable"
                               f" (first: {skipped[0]})")
        raise DatasetError("no movie files given")


def open_movies(paths, eer_grouping: int = 32, eer_upsampling: int = 1) -> list[Movie]:
    """iter_movies() as a list (every movie opened, and every error raised, up front)."""
    return list(iter_movies(paths, eer_grouping, eer_upsampling))


def _expand(paths: Iterable, ancestors: tuple) -> Iterator[tuple[Path, bool]]:
    """(movie path, found in a folder) pairs; folder contents may be skipped, named files not.
    `ancestors`: the lists being read above this one (a list naming one of them is a loop;
    naming the same sub-list twice is not)."""
    for item in paths:
        path = Path(item).expanduser()
        if _is_dir(path):
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in MOVIE_SUFFIXES and p.is_file())
            if not found:
                raise DatasetError(f"{path}: folder holds no movie files ({supported_text()})")
            yield from ((p, True) for p in found)
            continue
        suffix = path.suffix.lower()
        if suffix not in LIST_SUFFIXES:
            yield path, False
            continue
        check_regular_file(path, "list")
        check_not_compressed(path)
        resolved = path.resolve()
        if resolved in ancestors:
            raise DatasetError(f"{path}: the list includes itself (a loop of lists)")
        entries = lists.list_entries(path) if suffix == ".lst" else lists.star_entries(path)
        yield from _expand((lists.resolve_entry(path, entry) for entry in entries),
                           (*ancestors, resolved))


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long, ...: reported when the file is opened
        return False


def supported_text() -> str:
    return "supported: " + " ".join(MOVIE_SUFFIXES + LIST_SUFFIXES) + " and folders"
