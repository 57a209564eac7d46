"""RELION STAR files for batch conversion: read the movie names of the movies block and write
the same file back with new names, every other line (optics block, other columns, comments)
kept as it was."""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from mrczbench.errors import MrczbenchError
from mrczbench.movies.lists import STAR_MOVIE_COLUMN as MOVIE_COLUMN, star_values

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
    """The movie rows of `path`: the `movies` block's loop if there is one, else any loop with
    a rlnMicrographMovieName column (RELION's own fallback for files without optics groups)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MrczbenchError(f"{path}: cannot read the STAR file: {exc}") from None
    found = StarMovies(path, lines)
    block, columns, in_loop, in_rows = "", [], False, False
    candidates: dict[str, list] = {}
    for index, raw in enumerate(lines):
        line = raw.strip()
        if line.startswith("data_"):
            block, in_loop, in_rows = line[5:], False, False
            continue
        if line == "loop_":
            columns, in_loop, in_rows = [], True, False
            continue
        if not in_loop or not line or line.startswith("#"):
            if in_rows and not line:
                in_loop = in_rows = False
            continue
        if line.startswith("_") and not in_rows:
            columns.append(line.split()[0][1:])
            continue
        in_rows = True
        if MOVIE_COLUMN not in columns:
            continue
        tokens = star_values(path, index + 1, line)
        if len(tokens) != len(columns):
            raise MrczbenchError(f"{path}:{index + 1}: {len(tokens)} values for {len(columns)} columns")
        candidates.setdefault(block, []).append((index, tokens, columns.index(MOVIE_COLUMN)))
    rows = candidates.get("movies") or next(iter(candidates.values()), None)
    if not rows:
        raise MrczbenchError(f"{path}: no {MOVIE_COLUMN} column with movies in any loop")
    found.rows = rows
    return found
