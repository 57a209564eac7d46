"""RELION STAR files for batch conversion: the movie names of the movies block (read by
movies.lists.star_movie_rows) and the same file written back with new names. Only each movie
name's characters change: every other byte (optics block, other columns and their quotes,
comments) is kept as it was, so the `starfile` package and RELION read the same table back."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mrczbench.errors import MrczbenchError
from mrczbench.movies.lists import star_movie_rows


@dataclass
class StarMovies:
    """The lines of a STAR file and, for each movie, (line index, name, start, end) with
    `start:end` the name as written in that line (quotes included)."""
    path: Path
    lines: list[str]
    rows: list[tuple[int, str, int, int]] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [name for _, name, _, _ in self.rows]

    def renamed(self, new_names: dict[str, str]) -> str:
        """The file's text with each movie name replaced by new_names[name] (when given)."""
        lines = list(self.lines)
        for index, name, start, end in self.rows:
            if name in new_names:
                line = lines[index]
                lines[index] = line[:start] + star_quoted(new_names[name]) + line[end:]
        return "\n".join(lines) + "\n"


def star_quoted(value: str) -> str:
    """A value as STAR writes it: quoted when it is empty, holds white space or starts with a
    quote (double quotes, or single ones when it holds a double quote)."""
    if value and not any(c.isspace() for c in value) and value[0] not in "'\"":
        return value
    quote = "'" if '"' in value else '"'
    return f"{quote}{value}{quote}"


def read_star(path: Path) -> StarMovies:
    """The lines of `path` and its movies, as movies.lists.star_movie_rows chooses them."""
    try:
        # split as the list reader does (not splitlines: it also splits on \f, \x1c, ...)
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise MrczbenchError(f"{path}: cannot read the STAR file: {exc}") from None
    if lines and lines[-1] == "":
        lines.pop()
    rows = [(row.number - 1, row.movie, row.start, row.end) for row in star_movie_rows(path)]
    return StarMovies(path, lines, rows)
