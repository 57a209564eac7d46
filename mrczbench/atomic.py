"""Atomic file output: write to a temporary file in the target's folder, then rename.

An interrupted or failed write never leaves a half file under the target name, and an
existing file is only replaced once the new one is complete. Only a regular file (or a
new name) is ever replaced: a device, FIFO, socket or folder under the target name is
refused, since renaming over /dev/full would replace the device with a plain file.

Temporary files are named `.<target name>.<host>-<pid>-<random><suffix>.tmp`. A process
killed mid-write (kill -9) leaves its temporary file behind; the next write into that
folder removes such leftovers whose process (on this host) is gone, and says so on stderr.
Disk-full, read-only, quota and permission errors become one-line MrczbenchErrors naming
the file the user asked for.

A command's inputs are never written over: a command names them once (`protect_inputs`),
and every write through this module refuses a target that is one of them, by the same
path, a hard link or a symlink (the same device and inode); `cli.main` forgets them when
the command ends.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import socket
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from mrczbench.errors import MrczbenchError
from mrczbench.units import format_bytes

# Errors of the place being written to, reported as one line naming the target.
WRITE_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted", errno.EFBIG: "file too large",
                errno.ENAMETOOLONG: "file name too long"}
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_TEMP_NAME = re.compile(r"^\..+\.(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[A-Za-z0-9_]+(\.[^.]*)?\.tmp$")
_swept: set[str] = set()  # folders already cleaned of stale temporary files by this process


def write_error(exc: OSError, target) -> MrczbenchError | None:
    """A one-line MrczbenchError for a write error of the target's place, or None."""
    reason = WRITE_ERRNOS.get(exc.errno)
    if reason is None:
        return None
    folder = Path(target).parent if str(Path(target).parent) else Path(".")
    return MrczbenchError(f"{target}: cannot write: {reason} (in {folder})")


_inputs: dict[tuple[int, int], str] = {}  # (device, inode) -> name of a protected input


def _identity(path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)  # follows symlinks: a link to an input is that input
    except (OSError, ValueError):
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None


def protect_inputs(inputs, outputs=()) -> None:
    """Remember the files this command reads (a folder: every file below it), so that no
    write through this module replaces one of them, and refuse now each of `outputs` that
    is one of them (before any work is done)."""
    for item in inputs:
        if item is None:
            continue
        path = Path(item)
        if path.is_dir():
            for folder, _, names in os.walk(path):
                for name in names:
                    _remember(Path(folder) / name)
        else:
            _remember(path)
    for output in outputs:
        if output is not None:
            check_not_input(Path(output))


def _remember(path: Path) -> None:
    key = _identity(path)
    if key is not None:
        _inputs.setdefault(key, str(path))


def forget_inputs() -> None:
    """Forget the protected inputs (the command has ended)."""
    _inputs.clear()


def check_not_input(target: Path) -> None:
    """Refuse a target that is one of the protected inputs (same file, hard or symbolic link)."""
    name = _inputs.get(_identity(target)) if _inputs else None
    if name is not None:
        how = "is" if os.path.abspath(name) == os.path.abspath(target) else "is the same file as"
        raise MrczbenchError(f"{target}: {how} the input {name}; refusing to write over an "
                             f"input: give another output name")


@contextlib.contextmanager
def naming(target) -> Iterator[None]:
    """Inside the block, a write error of the target's place (full disk, quota, read-only)
    becomes a one-line MrczbenchError naming `target`: appends to an open file raise
    OSErrors that carry no file name."""
    try:
        yield
    except OSError as exc:
        error = write_error(exc, target)
        if error:
            raise error from None
        raise


def check_target(target: Path) -> None:
    """Refuse to replace anything but a regular file (or nothing), or one of the inputs."""
    check_not_input(target)
    try:
        info = os.stat(target)  # follows symlinks: a link to /dev/null is a device too
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        error = write_error(exc, target)
        if error:
            raise error from None
        return  # let the write itself report it
    if stat.S_ISDIR(info.st_mode):
        # Checked up front: the final rename would fail, and its error would name our
        # temporary file instead of the target the user gave.
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in ((stat.S_ISFIFO, "FIFO (named pipe)"),
                     (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                     (stat.S_ISSOCK, "socket")) if test(info.st_mode)), "special file")
        raise MrczbenchError(f"{target}: is a {kind}, not a regular file; refusing to replace "
                             "it: give the name of a regular file to write")


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists but belongs to someone else
        return False
    return False


def sweep_stale_temporaries(folder: Path) -> list[Path]:
    """Remove temporary files of our own naming in `folder` whose writing process on this
    host is gone (killed mid-write); return what was removed. Nothing else is touched."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if not match or match["host"] != _HOST or not _process_gone(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False):
                size = entry.stat(follow_symlinks=False).st_size
                os.unlink(entry.path)
                removed.append((Path(entry.path), size))
    if removed:
        total = sum(size for _, size in removed)
        print(f"mrczbench: removed {len(removed)} temporary file(s) ({format_bytes(total)}) "
              f"left in {folder} by interrupted writes", file=sys.stderr, flush=True)
    return [path for path, _ in removed]


def _temporary_beside(target: Path, suffix: str) -> tuple[int, str]:
    check_target(target)
    folder = target.parent if str(target.parent) else Path(".")
    key = os.path.abspath(folder)
    if key not in _swept:
        _swept.add(key)
        sweep_stale_temporaries(folder)
    try:
        return tempfile.mkstemp(prefix=f".{target.name}.{_HOST}-{os.getpid()}-", suffix=suffix,
                                dir=folder)
    except OSError as exc:  # name the file the user asked for, not our temporary name
        error = write_error(exc, target)
        if error:
            raise error from None
        raise type(exc)(exc.errno, f"{os.strerror(exc.errno)} (cannot create files in {folder})",
                        str(target)) from None


def _file_mode() -> int:
    # mkstemp creates 0600 files; give the result the permissions open() would have.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_MODE = _file_mode()


def _finish(tmp_name: str, target: Path) -> None:
    check_target(target)  # the target may have changed while we wrote
    os.replace(tmp_name, target)


def _translated(exc: BaseException, tmp_name: str, target: Path) -> MrczbenchError | None:
    """A write error of our temporary file or the target's place, as a one-line error."""
    if isinstance(exc, OSError) and exc.filename in (None, tmp_name, str(target)):
        return write_error(exc, target)
    return None


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "wb", fsync: bool = False) -> Iterator[BinaryIO]:
    """Yield an open temporary file next to `path`; on success rename it onto `path`.

    With `fsync=True` the data is flushed to stable storage before the rename (durable)."""
    target = Path(path)
    fd, tmp_name = _temporary_beside(target, ".tmp")
    try:
        os.chmod(tmp_name, _MODE)
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        _finish(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        error = _translated(exc, tmp_name, target)
        if error:
            raise error from None
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path` for libraries that insist on opening the file
    themselves (tifffile, h5py); rename it onto `path` when the block succeeds."""
    target = Path(path)
    fd, tmp_name = _temporary_beside(target, target.suffix + ".tmp")
    os.close(fd)
    try:
        os.chmod(tmp_name, _MODE)
        yield Path(tmp_name)
        _finish(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        error = _translated(exc, tmp_name, target)
        if error:
            raise error from None
        raise
