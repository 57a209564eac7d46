"""What every reader of users' movies shares (mrczbench.movies.readers opens them, movies/eer.py
reads EER): the Movie a reader returns, and the checks made before a file is read: regular
files only, whole-file compression refused, claimed sizes against available memory."""
from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mrczbench import system
from mrczbench.errors import DatasetError
from mrczbench.units import format_bytes

# Magic bytes of whole-file compressors: such a file must be decompressed first.
COMPRESSED_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"),
                    (b"\x28\xb5\x2f\xfd", "zstd"), (b"\x04\x22\x4d\x18", "lz4"))




def check_regular_file(path: Path, what: str = "movie") -> None:
    """DatasetError unless `path` (after symlinks) is a regular file (whether it can be read
    shows when it is opened: compressed_with)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot open: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise DatasetError(f"{path}: is a folder, not a {what} file")
    if not stat.S_ISREG(info.st_mode):
        raise DatasetError(f"{path}: is a {_file_kind(info.st_mode)}, not a regular file; "
                           f"give a {what} file")


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def compressed_with(path: Path) -> str | None:
    """The whole-file compressor whose magic bytes start `path` (gzip, bzip2, ...), or None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror.lower() if exc.strerror else exc}") from None
    return next((name for magic, name in COMPRESSED_MAGIC if head.startswith(magic)), None)


def check_not_compressed(path: Path) -> None:
    name = compressed_with(path)
    if name:
        raise DatasetError(f"{path}: compressed with {name}: decompress it first "
                           f"(e.g. {'bzip2 -d' if name == 'bzip2' else name + ' -d'} -k FILE)")


def available_memory() -> int:
    """Bytes of memory available to a new allocation (mrczbench.system; unbounded if unknown)."""
    available = system.available_memory()
    return 2 ** 62 if available is None else available


def check_fits_memory(path: Path, nbytes: int, what: str, free: int | None = None) -> None:
    """DatasetError when `what` (nbytes) would not fit in the memory available now."""
    free = available_memory() if free is None else free
    if nbytes > free:
        raise DatasetError(f"{path}: {what} needs {format_bytes(nbytes)} but only "
                           f"{format_bytes(free)} of memory is available")


class Movie:
    """One movie file: `name`, `path`, `kind` (mrc, mrcz, tiff, eer, npy), `shape` (frames, ny,
    nx), `dtype`; `meta` and `microscope` (header values worth carrying into a converted
    file, MRC only). `iter_frames()` streams 2-D frames and checks their count; `read()`
    returns the whole stack."""

    kind = ""
    meta: dict | None = None
    microscope: dict | None = None

    def __init__(self, path: Path, shape: tuple[int, int, int], dtype):
        self.path = path if isinstance(path, Path) else Path(path)
        self.name = self.path.name
        self.shape = tuple(int(v) for v in shape)
        self.dtype = np.dtype(dtype)
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise DatasetError(f"{self.path}: the movie has shape {self.shape}: no frames or "
                               "empty frames; a movie needs at least one frame of at least 1 x 1")

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def iter_frames(self) -> Iterator[np.ndarray]:
        """The frames in order; a movie that ends early or runs long is a DatasetError."""
        count = 0
        for count, frame in enumerate(self._frames(), 1):
            if count > self.shape[0]:
                raise DatasetError(f"{self.path}: more frames than the {self.shape[0]} expected")
            yield frame
        if count != self.shape[0]:
            raise DatasetError(f"{self.path}: the movie ends early: expected {self.shape[0]} "
                               f"frames, found {count} (truncated file?)")

    def _frames(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def read(self) -> np.ndarray:
        """The whole (frames, ny, nx) stack, filled frame by frame into one array."""
        check_fits_memory(self.path, self.nbytes, f"the whole {self.shape} {self.dtype} stack")
        out = np.empty(self.shape, self.dtype)
        for index, frame in enumerate(self.iter_frames()):
            out[index] = frame
        return out

    def __repr__(self):
        return f"{type(self).__name__}({str(self.path)!r}, shape={self.shape}, dtype={self.dtype.name})"


def check_eer_options(grouping: Any, upsampling: Any) -> None:
    """DatasetError unless grouping is an integer >= 1 and upsampling is 1 or 2."""
    if isinstance(grouping, bool) or not isinstance(grouping, int) or grouping < 1:
        raise DatasetError(f"eer_grouping: expected an integer >= 1 (internal frames per "
                           f"fraction), got {grouping!r}")
    if isinstance(upsampling, bool) or upsampling not in (1, 2):
        raise DatasetError(f"eer_upsampling: {upsampling!r} is not one of 1 (4K), 2 (8K)")
