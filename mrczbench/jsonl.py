"""Append-only JSON Lines files: the one writer and reader of the run files (mrczbench.store)
and the conversion manifest (convert/manifest.py).

A record is one line. `AppendLog` writes whole lines and fsyncs each append, so a record that
was appended survives a killed process or a power cut; a writer killed in the middle of a line
leaves it without its newline, and the next `AppendLog` on the file cuts that partial line
before appending. `parse_lines` reads such a file back: a last line with no newline that is not
JSON is reported as cut off (`CUT_OFF`), never as a corrupt file.
"""
from __future__ import annotations

import fcntl
import json
import os
import stat
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from mrczbench.atomic import naming
from mrczbench.errors import MrczbenchError

CUT_OFF = object()  # parse_lines' value for a last line cut off by a killed writer


class BadLine(ValueError):
    """A line that is not JSON, before the last line (the caller names the file and its kind)."""

    def __init__(self, number: int, reason: str):
        super().__init__(f"line {number}: {reason}")
        self.number, self.reason = number, reason


class Locked(OSError):
    """Another process holds the lock of an AppendLog opened with exclusive=True."""


class AppendLog:
    """Append-only JSON Lines file. `append(records)` writes them as one write of whole lines,
    flushes and fsyncs. With exclusive=True a second writer of the same file is refused
    (advisory lock; `Locked`). `dumps` turns a record into one line of JSON."""

    def __init__(self, path: str | os.PathLike, dumps: Callable[[Any], str] = json.dumps,
                 exclusive: bool = False):
        self.path = Path(path)
        self.dumps = dumps
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a+b")
        try:
            if not stat.S_ISREG(os.fstat(self._handle.fileno()).st_mode):
                # a symlink to /dev/zero would be read forever, one to /dev/full fails every row
                raise MrczbenchError(f"{self.path}: not a regular file (a device, FIFO or socket "
                                     f"under this name?): give a folder where it can be a file")
            if exclusive:
                try:
                    fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise Locked(f"{self.path}: another process is writing this file") from None
            _cut_partial_last_line(self._handle)
        except BaseException:
            self._handle.close()
            raise

    def append(self, records: Iterable[Any]) -> None:
        text = "".join(self.dumps(record) + "\n" for record in records)
        if text:
            with naming(self.path):  # a full disk names this file, not "output"
                self._handle.write(text.encode("utf-8"))
                self._handle.flush()
                os.fsync(self._handle.fileno())

    def close(self) -> None:
        with naming(self.path):
            self._handle.close()

    def __enter__(self) -> "AppendLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _cut_partial_last_line(handle) -> None:
    """A writer killed mid-line leaves half a line; cut it so appended lines stay parseable."""
    handle.seek(0)
    data = handle.read()
    if data and not data.endswith(b"\n"):
        handle.truncate(data.rfind(b"\n") + 1)
    handle.seek(0, os.SEEK_END)


def json_problem(exc: BaseException) -> str:
    """One line for why a JSON text did not load: hostile input also fails with
    RecursionError (nesting too deep) and ValueError (an integer over Python's 4,300-digit
    limit), not only JSONDecodeError."""
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    return " ".join(str(exc).split())[:200]


def parse_lines(text: str) -> Iterator[tuple[int, Any]]:
    """(line number, value) of every non-blank line of a JSON Lines text. The last line, when
    no newline follows it and it is not JSON, gives CUT_OFF (a killed writer); any other line
    that is not JSON raises BadLine."""
    lines = text.split("\n")
    last = len(lines)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            if number == last and isinstance(exc, json.JSONDecodeError):  # cut off by a kill
                yield number, CUT_OFF
                continue
            raise BadLine(number, json_problem(exc)) from None
        yield number, value
