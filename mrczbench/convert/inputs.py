"""MOVIES -> conversion tasks with mirrored output paths.

Outputs mirror the inputs' relative paths under --out with the new suffix, as
relion_convert_to_tiff does (`DIR + movie name without extension + .tif`), so equal base
names in different folders never collide:
- entries of a .star or .lst list: the path as written in the list (`Movies/a/m0.tif` ->
  `DIR/Movies/a/m0.mrcz`); an absolute entry is taken relative to the list's folder;
- a folder: its movies (recursively) relative to the folder's parent, so the folder's own
  name is kept (`Movies/` -> `DIR/Movies/...`);
- a file or glob: relative to the current folder when inside it, else its name alone.
A path that would leave DIR (`..`) or two inputs with one output are errors before any work.
"""
from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass
from pathlib import Path, PurePath

from mrczbench.convert.star import StarMovies, read_star
from mrczbench.errors import MrczbenchError
from mrczbench.movies.lists import list_entries, resolve_entry

MOVIE_SUFFIXES = (".mrc", ".mrcs", ".mrcz", ".tif", ".tiff", ".eer", ".npy")
OUTPUT_SUFFIX = {"mrcz": ".mrcz", "tiff": ".tif"}


@dataclass(frozen=True)
class Task:
    index: int            # position in the expanded list: shards take index % N
    input: str            # absolute path
    relative: str         # output path relative to --out (with the new suffix)
    listed_as: str | None  # the name in a .star list, for DIR/movies.star


def _inside(path: Path, base: Path) -> PurePath | None:
    try:
        return path.relative_to(base)
    except ValueError:
        return None


def _clean_relative(rel: PurePath, source: str) -> PurePath:
    parts = [p for p in rel.parts if p not in ("", ".")]
    if ".." in parts or not parts:
        raise MrczbenchError(f"{source}: the output path {str(rel)!r} would leave --out; "
                             f"give the movies without '..' or from another folder")
    return PurePath(*parts)


def _from_list(path: Path, entries: list[str]) -> list[tuple[Path, PurePath, str]]:
    out = []
    for entry in entries:
        entry_path = Path(entry).expanduser()
        if entry_path.is_absolute():
            rel = _inside(entry_path, path.parent.resolve()) or PurePath(*entry_path.parts[1:])
            source = entry_path
        else:
            rel = PurePath(entry)
            source = resolve_entry(path, entry)
        out.append((source, _clean_relative(rel, f"{path}: {entry}"), entry))
    return out


def under(path: Path, folder: Path) -> bool:
    """True when `path` (resolved) lies in `folder` (resolved)."""
    return path.resolve().is_relative_to(folder)


def expand(movies: list[str], suffix: str, out: Path | None = None) -> tuple[list[Task], list[StarMovies]]:
    """The tasks for MOVIES and the .star files they came from (for DIR/movies.star). Files
    under `out` (earlier outputs, the manifest, temporaries) are never inputs."""
    cwd = Path.cwd().resolve()
    out = out.resolve() if out is not None else None
    found: list[tuple[Path, PurePath, str | None]] = []
    stars: list[StarMovies] = []
    for item in movies:
        path = Path(item).expanduser()
        if not path.exists() and glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise MrczbenchError(f"{item}: no file matches this pattern")
            paths = [Path(m) for m in matches if Path(m).suffix.lower() in MOVIE_SUFFIXES]
        else:
            paths = [path]
        for p in paths:
            if p.is_dir():
                inside = sorted(f for f in p.rglob("*") if f.suffix.lower() in MOVIE_SUFFIXES and f.is_file())
                if not inside:
                    raise MrczbenchError(f"{p}: folder holds no movie files ({', '.join(MOVIE_SUFFIXES)})")
                # named as found in the folder: a symlink to a movie elsewhere keeps its name
                base = Path(os.path.abspath(p)).parent
                found += [(f, _clean_relative(Path(os.path.abspath(f)).relative_to(base), str(f)), None)
                          for f in inside]
            elif not p.exists():
                raise MrczbenchError(f"{p}: no such file")
            elif p.suffix.lower() == ".star":
                star = read_star(p)
                stars.append(star)
                found += _from_list(p, star.names)
            elif p.suffix.lower() == ".lst":
                found += [(s, r, None) for s, r, _ in _from_list(p, list(list_entries(p)))]
            else:
                resolved = p.resolve()
                rel = _inside(resolved, cwd) or PurePath(resolved.name)
                found.append((p, _clean_relative(rel, str(p)), None))
    if out is not None:
        folders = [Path(m) for m in movies if Path(m).is_dir() and under(out, Path(m).resolve())]
        kept = [f for f in found if not under(Path(f[0]), out)]
        if folders or len(kept) < len(found):
            where = f"lies inside the input folder {folders[0]}" if folders else "holds some of the inputs"
            print(f"mrczbench convert: note: --out {out} {where}: files under --out are never "
                  f"taken as inputs ({len(found) - len(kept)} skipped)", file=sys.stderr)
        found = kept
    tasks, by_output, seen = [], {}, set()
    for source, rel, listed in found:
        absolute = str(Path(os.path.abspath(source)))
        if absolute in seen:
            continue
        seen.add(absolute)
        relative = str(rel.with_suffix(suffix))
        if relative in by_output:
            raise MrczbenchError(f"{by_output[relative]} and {absolute} would both become "
                                 f"{relative}: rename one or convert them separately")
        by_output[relative] = absolute
        tasks.append(Task(len(tasks), absolute, relative, listed))
    if not tasks:
        raise MrczbenchError("no movies given")
    return tasks, stars


def shard(tasks: list[Task], index: int, count: int) -> list[Task]:
    """The deterministic 1/count of the tasks for shard `index` (0-based)."""
    return [t for t in tasks if t.index % count == index]


def parse_shard(text: str | None, environ=os.environ) -> tuple[int, int] | None:
    """--shard I/N (0 <= I < N), else Slurm's array variables, else None (everything)."""
    if text is None and "SLURM_ARRAY_TASK_ID" in environ and "SLURM_ARRAY_TASK_COUNT" in environ:
        first = int(environ.get("SLURM_ARRAY_TASK_MIN", 0))
        return int(environ["SLURM_ARRAY_TASK_ID"]) - first, int(environ["SLURM_ARRAY_TASK_COUNT"])
    if text is None:
        return None
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise MrczbenchError(f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. 0/4") from None
    if not (n >= 1 and 0 <= i < n):
        raise MrczbenchError(f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. 0/4")
    return i, n
