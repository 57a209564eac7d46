"""Movie lists: `.lst` (one path a line, `#` comments) and RELION `.star` files (column
rlnMicrographMovieName of the movies block), read line by line so that a list of 10^6 movies is
never held in memory; and how an entry's relative path resolves."""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from mrczbench.errors import DatasetError

STAR_MOVIE_COLUMN = "rlnMicrographMovieName"


def _lines(path: Path, what: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of a text list, streamed."""
    try:
        with open(path, encoding="utf-8") as handle:
            yield from enumerate((line.rstrip("\n") for line in handle), 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the {what}: {exc}") from None


def list_entries(path: Path) -> Iterator[str]:
    count = 0
    for _, line in _lines(path, "list"):
        entry = line.strip()
        if entry and not entry.startswith("#"):
            count += 1
            yield entry
    if not count:
        raise DatasetError(f"{path}: the list names no movies")


@dataclass(frozen=True)
class StarRow:
    """One row of a STAR file's movie loop."""
    number: int          # line number, from 1
    values: list[str]
    column: int          # index of rlnMicrographMovieName in values

    @property
    def movie(self) -> str:
        return self.values[self.column]


def _movie_loop_lines(path: Path) -> Iterator[tuple[str, int, str, list[str]]]:
    """(block, line number, line, columns) of each row of a loop with a rlnMicrographMovieName
    column, streamed, values not yet split."""
    block, columns = "", []
    in_loop = reading_rows = False
    for number, raw in _lines(path, "STAR file"):
        line = raw.strip()
        if line.startswith("data_"):
            block, in_loop, reading_rows = line[5:], False, False
            continue
        if line == "loop_":
            in_loop, reading_rows, columns = True, False, []
            continue
        if not in_loop or not line or line.startswith("#"):
            if reading_rows and not line:
                in_loop = reading_rows = False
            continue
        if line.startswith("_") and not reading_rows:
            columns.append(line.split()[0][1:])
            continue
        reading_rows = True
        if STAR_MOVIE_COLUMN in columns:
            yield block, number, line, columns


def star_movie_block(path: Path) -> str:
    """The block that lists the movies: `movies` when the file has one with movie rows
    (RELION 3.1: data_optics + data_movies), else the first block with a loop of
    rlnMicrographMovieName rows (RELION 3.0's single block, RELION's own fallback)."""
    first = None
    for block, *_ in _movie_loop_lines(path):
        if block == "movies":
            return block
        if first is None:
            first = block
    if first is None:
        raise DatasetError(f"{path}: no {STAR_MOVIE_COLUMN} column with movies in any loop")
    return first


def star_movie_rows(path: Path) -> Iterator[StarRow]:
    """The rows of the movie block (star_movie_block), streamed: the one STAR reader that
    both the movie lists and `convert` use."""
    chosen = star_movie_block(path)
    for block, number, line, columns in _movie_loop_lines(path):
        if block != chosen:
            continue
        values = star_values(path, number, line)
        if len(values) != len(columns):
            raise DatasetError(f"{path}: line {number} has {len(values)} values for "
                               f"{len(columns)} columns: {line!r}")
        yield StarRow(number, values, columns.index(STAR_MOVIE_COLUMN))


def star_entries(path: Path) -> Iterator[str]:
    """The movie names of a RELION .star file (star_movie_rows), streamed."""
    return (row.movie for row in star_movie_rows(path))


def star_values(path: Path, number: int, line: str) -> list[str]:
    """The values of one STAR row. A quote opens a quoted value only at the start of a value
    (STAR's rule), so `it's.mrc` is one plain value; an unclosed quote is an error."""
    if '"' not in line and "'" not in line:
        return line.split()
    values = []
    for word in line.split():
        if values and isinstance(values[-1], list):  # inside a quoted value
            values[-1].append(word)
            if word[-1] == values[-1][0][0]:
                values[-1] = " ".join(values[-1])[1:-1]
            continue
        if word[0] in "'\"" and not (len(word) > 1 and word[-1] == word[0]):
            values.append([word])
        elif word[0] in "'\"":
            values.append(word[1:-1])
        else:
            values.append(word)
    if values and isinstance(values[-1], list):
        raise DatasetError(f"{path}: line {number} has an unclosed quote: {line!r}")
    return values


def resolve_entry(list_file: Path, entry: str) -> Path:
    if "\0" in entry:  # no file system takes it; os calls would raise ValueError
        raise DatasetError(f"{list_file}: entry {entry[:60]!r} holds a NUL byte: not a path")
    path = Path(entry).expanduser()
    try:
        if path.is_absolute():
            path.exists()  # ENAMETOOLONG shows here rather than later
            return path
        beside = list_file.parent / path
        if beside.exists() or not path.exists():
            return beside  # a missing file is reported with the list-relative path
        return path        # RELION project convention: relative to the current folder
    except OSError as exc:  # a name too long for the file system, ...
        raise DatasetError(f"{list_file}: entry {entry[:60]!r}{'...' if len(entry) > 60 else ''} "
                           f"is not a usable path: {exc.strerror or os.strerror(exc.errno or errno.EINVAL)}") from None
