"""RELION STAR files for batch conversion: the movie rows (read by movies.lists, the one STAR
parser) and the same file written back with new names, every other line (optics block, other columns, comments)
kept as it was."""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from mrczbench.errors import MrczbenchError
from mrczbench.movies.lists import star_movie_rows

@dataclass
class StarMovies:
    """The lines of a STAR file and, for each movie row, (line index, tokens, column)."""
    path: Path
    lines: list[str]
    rows: list[tuple[int, list[str], int]] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [tokens[column] for _, tokens, column in self.rows]

    def renamed(self, new_names: dict[str, str]) -> str:
        """The file's text with each movie name replaced by new_names[name] (when given)."""
        lines = list(self.lines)
        for index, tokens, column in self.rows:
            if tokens[column] in new_names:
                tokens = list(tokens)
                tokens[column] = _quoted(new_names[tokens[column]])
                lines[index] = " ".join(tokens)
        return "\n".join(lines) + "\n"


def _quoted(value: str) -> str:
    return shlex.quote(value) if any(c.isspace() for c in value) else value


def read_star(path: Path) -> StarMovies:
    """The lines of `path` and its movie rows, as movies.lists.star_movie_rows chooses them."""
    try:
        # split as the parser's text reader does (not splitlines: it also splits on \f, \x1c...)
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise MrczbenchError(f"{path}: cannot read the STAR file: {exc}") from None
    if lines[-1] == "":
        lines.pop()
    rows = [(row.number - 1, row.values, row.column) for row in star_movie_rows(path)]
    return StarMovies(path, lines, rows)
