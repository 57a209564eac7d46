"""Movie lists: `.lst` (one path a line, `#` comments) and RELION `.star` files (column
rlnMicrographMovieName of the movies block), read line by line so that a list of 10^6 movies is
never held in memory; and how an entry's relative path resolves."""
from __future__ import annotations

import errno
import os
import re
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
    """One movie of a STAR file: a row of its movie loop, or a key-value movie block."""
    number: int  # line number, from 1
    movie: str   # the value of rlnMicrographMovieName
    start: int   # the name as written in the raw line (quotes included) is line[start:end]
    end: int


def _movie_names(path: Path) -> Iterator[tuple[str, int, tuple[str, int, int]]]:
    """(block, line number, (movie name, start, end)) for every rlnMicrographMovieName of a
    RELION .star file, streamed: each row of a loop with that column, and a data block that
    holds it as a key-value pair (`_rlnMicrographMovieName m.mrc`, no loop_), which RELION
    reads as a one-row table. `start`/`end` locate the value (quotes included) in the raw line,
    so a rewrite can replace it and keep every other byte."""
    columns: list[str] = []
    block = ""
    in_loop = reading_rows = False
    for number, raw in _lines(path, "STAR file"):
        line = raw.strip()
        if line.startswith("data_"):
            block, in_loop, reading_rows = line[5:], False, False
            continue
        if line == "loop_":
            in_loop, reading_rows, columns = True, False, []
            continue
        if not in_loop and line.startswith("_"):
            key, _, _ = line.partition(" ")
            if key.split("\t")[0][1:] == STAR_MOVIE_COLUMN:
                tokens = star_tokens(path, number, raw)
                if len(tokens) != 2:
                    raise DatasetError(f"{path}: line {number} has {len(tokens) - 1} values for "
                                       f"the key {STAR_MOVIE_COLUMN}: {line!r}")
                yield block, number, tokens[1]
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
            tokens = star_tokens(path, number, raw)
            if len(tokens) != len(columns):
                raise DatasetError(f"{path}: line {number} has {len(tokens)} values for "
                                   f"{len(columns)} columns: {line!r}")
            yield block, number, tokens[columns.index(STAR_MOVIE_COLUMN)]


def star_movie_block(path: Path) -> str:
    """The block that lists the movies: `movies` when the file has one with movies (RELION
    3.1: data_optics + data_movies), else the first block with movies (RELION 3.0's single
    block, RELION's own fallback)."""
    first = None
    for block, _, _ in _movie_names(path):
        if block == "movies":
            return block
        if first is None:
            first = block
    if first is None:
        raise DatasetError(f"{path}: no {STAR_MOVIE_COLUMN} column with movies in any loop")
    return first


def star_movie_rows(path: Path) -> Iterator[StarRow]:
    """The movies of the movie block (star_movie_block), streamed: the one STAR reader that
    both the movie lists and `convert` use."""
    chosen = star_movie_block(path)
    for block, number, (movie, start, end) in _movie_names(path):
        if block == chosen:
            yield StarRow(number, movie, start, end)


def star_entries(path: Path) -> Iterator[str]:
    """The movie names of a RELION .star file (star_movie_rows), streamed."""
    return (row.movie for row in star_movie_rows(path))


_WORD = re.compile(r"\S+")


def star_tokens(path: Path, number: int, line: str) -> list[tuple[str, int, int]]:
    """(value, start, end) of each value of one STAR line, `start:end` being the value as
    written (quotes included). A quote opens a quoted value only at the start of a value
    (STAR's rule), so `it's.mrc` is one plain value; a quoted value ends at a word that ends
    with its quote; an unclosed quote is an error."""
    tokens = []
    at = 0
    while True:
        match = _WORD.search(line, at)
        if not match:
            return tokens
        word, start = match.group(), match.start()
        if word[0] in "'\"" and not (len(word) > 1 and word[-1] == word[0]):
            end = match.end()
            while True:  # the quoted value goes on to the word that closes it
                more = _WORD.search(line, end)
                if more is None:
                    raise DatasetError(f"{path}: line {number} has an unclosed quote: {line.strip()!r}")
                end = more.end()
                if more.group()[-1] == word[0]:
                    break
            tokens.append((line[start + 1:end - 1], start, end))
            at = end
        elif word[0] in "'\"":
            tokens.append((word[1:-1], start, match.end()))
            at = match.end()
        else:
            tokens.append((word, start, match.end()))
            at = match.end()



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
