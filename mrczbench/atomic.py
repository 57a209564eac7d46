"""Atomic file output: write to a temporary file in the target's folder, then rename.

An interrupted or failed write never leaves a half file under the target name, and an
existing file is only replaced once the new one is complete.
"""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator


def _temporary_beside(target: Path, suffix: str) -> tuple[int, str]:
    # Checked up front: the final rename would fail, and its error would name our temporary
    # file instead of the target the user gave.
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
    folder = target.parent if str(target.parent) else Path(".")
    try:
        return tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=folder)
    except OSError as exc:  # name the file the user asked for, not our temporary name
        raise type(exc)(exc.errno, f"{os.strerror(exc.errno)} (cannot create files in {folder})",
                        str(target)) from None


def _file_mode() -> int:
    # mkstemp creates 0600 files; give the result the permissions open() would have.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_MODE = _file_mode()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "wb", fsync: bool = False) -> Iterator[BinaryIO]:
    """Yield an open temporary file next to `path`; on success rename it onto `path`.

    With `fsync=True` the data is flushed to stable storage before the rename (durable)."""
    target = Path(path)
    fd, tmp_name = _temporary_beside(target, ".tmp")
    os.chmod(tmp_name, _MODE)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path` for libraries that insist on opening the file
    themselves (tifffile, h5py); rename it onto `path` when the block succeeds."""
    target = Path(path)
    fd, tmp_name = _temporary_beside(target, target.suffix + ".tmp")
    os.close(fd)
    os.chmod(tmp_name, _MODE)
    try:
        yield Path(tmp_name)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
