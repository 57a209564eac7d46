"""Named TOML files (dataset specs in `datasets/`, suites in `suites/`): the folders searched,
the name -> file map, and one reader that turns a bad file into the caller's user error."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def search_dirs(env_var: str, folder: str) -> list[Path]:
    """The folders in $`env_var` (os.pathsep-separated), then the checkout's `folder`."""
    dirs = [Path(p) for p in os.environ.get(env_var, "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parent.parent / folder)
    return dirs


def named_files(dirs: list[Path]) -> dict[str, Path]:
    """name (file stem) -> `<name>.toml`; earlier folders win."""
    found: dict[str, Path] = {}
    for folder in dirs:
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                found.setdefault(path.stem, path)
    return found


def read_toml(path: Path, error: type[Exception], problem: str) -> dict[str, Any]:
    """The parsed file; an unreadable or invalid one raises `error("<path>: <problem>: ...")`."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{path}: {problem}: {exc}") from None
