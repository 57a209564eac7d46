"""Named TOML files (dataset specs, suites): the places searched, the name -> file map with
where each came from, and one reader that turns a bad file into the caller's user error.

The files ship inside the package (package data, found with importlib.resources, so a wheel
or `pip install .` works from any folder). Overrides, searched first (earlier wins):
  1. $MRCZBENCH_SUITES / $MRCZBENCH_DATASETS: folders, os.pathsep-separated;
  2. the per-user folder $XDG_CONFIG_HOME/mrczbench/<kind> (default ~/.config/mrczbench/<kind>);
  3. the package's own files.
A `.toml` path given on the command line is read as it is, without a search.
"""
from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PACKAGE_SOURCE, USER_SOURCE = "package", "user"


class Place(NamedTuple):
    """A folder searched for `<name>.toml` and the label `list` commands show for it."""
    source: str   # "$MRCZBENCH_SUITES", "user" or "package"
    folder: Path


def user_folder(kind: str) -> Path:
    """Per-user folder of `kind` ("suites", "datasets"), XDG base-directory style."""
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(config) / "mrczbench" / kind


def package_folder(package: str, folder: str) -> Path:
    """The package-data folder `folder` of `package`. pip installs packages as plain files, so
    importlib.resources hands back a real path (a zipped install is not supported)."""
    return Path(str(resources.files(package).joinpath(folder)))


def search_places(env_var: str, kind: str, package: str, folder: str) -> list[Place]:
    """The folders in $`env_var`, then the user's folder, then the package's own files."""
    places = [Place(f"${env_var}", Path(p).expanduser())
              for p in os.environ.get(env_var, "").split(os.pathsep) if p]
    places.append(Place(USER_SOURCE, user_folder(kind)))
    places.append(Place(PACKAGE_SOURCE, package_folder(package, folder)))
    return places


def _found(places: list[Place]) -> dict[str, tuple[Path, str]]:
    found: dict[str, tuple[Path, str]] = {}
    for place in places:
        if place.folder.is_dir():
            for path in sorted(place.folder.glob("*.toml")):
                found.setdefault(path.stem, (path, place.source))
    return found


def nothing_found(places: list[Place], what: str, env_var: str) -> str:
    """The one-line message of an empty search, naming the overrides."""
    searched = ", ".join(f"{p.folder} ({p.source})" for p in places)
    return (f"no {what} found (searched {searched}); the package's own files are missing, so "
            f"reinstall mrczbench, or put <name>.toml files in ${env_var} (folders separated "
            f"by '{os.pathsep}') or {user_folder_of(places)}")


def user_folder_of(places: list[Place]) -> Path | str:
    return next((p.folder for p in places if p.source == USER_SOURCE), "the user folder")


def named_files(places: list[Place], error: type[Exception], what: str,
                env_var: str) -> dict[str, Path]:
    """name (file stem) -> `<name>.toml`; earlier places win. Finding nothing at all is
    `error` (a broken install or override, never an empty list)."""
    return {name: path for name, (path, _) in named_sources(places, error, what, env_var).items()}


def named_sources(places: list[Place], error: type[Exception], what: str,
                  env_var: str) -> dict[str, tuple[Path, str]]:
    """name -> (file, source label of its place), as named_files."""
    found = _found(places)
    if not found:
        raise error(nothing_found(places, what, env_var))
    return found


def read_toml(path: Path, error: type[Exception], problem: str) -> dict[str, Any]:
    """The parsed file; an unreadable or invalid one raises `error("<path>: <problem>: ...")`."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{path}: {problem}: {exc}") from None
    except RecursionError:  # a = [[[[...]]]] thousands deep
        raise error(f"{path}: {problem}: values nested too deeply") from None
