"""Movie lists: `.lst` (one path a line, `#` comments) and RELION `.star` files (column
rlnMicrographMovieName in any loop), read line by line so that a list of 10^6 movies is
never held in memory; and how an entry's relative path resolves."""
from __future__ import annotations

import errno
import os
import re
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


def star_movie_rows(path: Path) -> Iterator[tuple[str, int, str, tuple[str, int, int]]]:
    """(block, line number, raw line, (movie name, start, end)) for every rlnMicrographMovieName
    of a RELION .star file, streamed: each row of a loop with that column, and a data block
    that holds it as a key-value pair (`_rlnMicrographMovieName m.mrc`, no loop_), which RELION
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
                yield block, number, raw, tokens[1]
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
            yield block, number, raw, tokens[columns.index(STAR_MOVIE_COLUMN)]


def star_entries(path: Path) -> Iterator[str]:
    """Values of rlnMicrographMovieName from every loop (or key-value block) of a RELION
    .star file, streamed."""
    count = 0
    for _, _, _, (value, _, _) in star_movie_rows(path):
        count += 1
        yield value
    if not count:
        raise DatasetError(f"{path}: no {STAR_MOVIE_COLUMN} column with movies in any loop")


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


def star_values(path: Path, number: int, line: str) -> list[str]:
    """The values of one STAR row (star_tokens without their places)."""
    return [value for value, _, _ in star_tokens(path, number, line)]


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
