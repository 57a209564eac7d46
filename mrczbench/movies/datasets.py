"""Datasets: named synthetic specs (`*.toml`, shipped in mrczbench/movies/specs/), their
content-keyed cache, and the `datasets` command (whose `inspect` opens users' movies through
mrczbench.movies.readers).

A spec file holds one dataset; its name is the file name without `.toml`:

    description = "K2 counting, the MRCZ paper's Table 1 stack"
    kind = "counting"        # counting | poisson | gain-normalised | falcon | super-resolution | eer
    frames = 60
    shape = [3838, 3710]     # [ny, nx] in numpy order (the paper's 60 x 3838 x 3710)
    dose = 1.0               # mean e/px/frame (eer: per fraction on the rendered grid)
    dtype = "int8"           # optional: the model's default
    seed = 1
    [options]                # model options, see `mrczbench datasets show NAME`
    modulation = 0.2

Spec folders: $MRCZBENCH_DATASETS (os.pathsep-separated), ~/.config/mrczbench/datasets
($XDG_CONFIG_HOME), then the package's own specs (mrczbench.tomlfiles).

Cache: a materialised stack is stored as MRCZ (zstd level 1, bitshuffle) at
`<cache>/<name>-<key>.mrcz`, key = hash of the spec's content fields and the generator
version (not of its name or description). Cache folder: `cache_dir`, else
$MRCZBENCH_CACHE, else ~/.cache/mrczbench. Each time a stack is added, the cache's total
size is printed on stderr; `mrczbench datasets cache --clear` empties it.

Users' movies are read by mrczbench.movies.readers (`open_movie`, `iter_movies`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mrczbench.movies import synthetic
from mrczbench.errors import DatasetError, MRCZError
from mrczbench.tomlfiles import Place, named_files, named_sources, read_toml, search_places
from mrczbench.movies import readers

SPEC_KEYS = ("description", "kind", "frames", "shape", "dose", "dtype", "seed", "options")
CACHE_CODEC, CACHE_LEVEL = "zstd", 1
MiB = 2 ** 20


# --------------------------------------------------------------------------------------
# Specs


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A synthetic dataset: detector model `kind`, `frames` x `shape` = [ny, nx] pixels,
    mean `dose` in e/px/frame, pixel `dtype` (None: the model's default), `seed`, and model
    `options`. Fields are checked on construction (DatasetError names the bad field), so
    `dataclasses.replace(spec, dose=4)` gives a checked variant."""

    name: str
    kind: str = "counting"
    frames: int = 10
    shape: tuple[int, int] = (1024, 1024)
    dose: float = 1.0
    dtype: str | None = None
    seed: int = 0
    options: dict = dataclasses.field(default_factory=dict)
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise DatasetError(f"name: expected a non-empty string, got {self.name!r}")
        if not isinstance(self.kind, str):
            raise DatasetError(f"kind: expected a string, got {self.kind!r}")
        if not isinstance(self.options, dict):
            raise DatasetError(f"options: expected a table of model options, got {self.options!r}")
        if self.dtype is not None and not isinstance(self.dtype, str):
            object.__setattr__(self, "dtype", np.dtype(self.dtype).name)
        synthetic._check_frames(self.frames)
        object.__setattr__(self, "shape", synthetic._check_shape(self.shape))
        model = self.model()  # checks kind, dose, dtype, seed and options
        object.__setattr__(self, "frames", int(self.frames))
        object.__setattr__(self, "dose", float(self.dose))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "dtype", model.dtype.name)
        object.__setattr__(self, "options", dict(self.options))

    def __hash__(self):
        return hash(self.key)

    def model(self) -> synthetic.DetectorModel:
        """The detector model that generates this dataset (checked, not yet prepared)."""
        misplaced = sorted(set(self.options) & {"kind", "frames", "shape", "dose", "seed", "dtype"})
        if misplaced:
            raise DatasetError(f"{self.name}: options: {', '.join(misplaced)} must be at the top level "
                               f"of the spec, not under [options]")
        return synthetic.make_model(self.kind, self.shape, self.dose, self.seed, self.dtype, **self.options)

    @property
    def nbytes(self) -> int:
        """Bytes of the raw stack in memory."""
        return self.frames * self.shape[0] * self.shape[1] * np.dtype(self.dtype).itemsize

    def content(self) -> dict[str, Any]:
        """The fields that determine the pixels, with aliases and option defaults resolved."""
        model = self.model()
        return {"kind": model.kind, "frames": self.frames, "shape": list(self.shape),
                "dose": self.dose, "dtype": self.dtype, "seed": self.seed,
                "options": dict(sorted(model.opts.items())),
                "generator_version": synthetic.GENERATOR_VERSION}

    @property
    def key(self) -> str:
        """Content key of the cache: 16 hex digits of SHA-256 over `content()`."""
        text = json.dumps(self.content(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "kind": self.kind,
                "frames": self.frames, "shape": list(self.shape), "dose": self.dose,
                "dtype": self.dtype, "seed": self.seed, "options": dict(self.options)}


DATASETS_VAR = "MRCZBENCH_DATASETS"


def dataset_places() -> list[Place]:
    """Searched for `<name>.toml`: $MRCZBENCH_DATASETS, the user's folder, the package's specs."""
    return search_places(DATASETS_VAR, "datasets", "mrczbench.movies", "specs")


def dataset_dirs() -> list[Path]:
    return [place.folder for place in dataset_places()]


def spec_paths() -> dict[str, Path]:
    """name -> spec file; earlier folders win. None found at all: DatasetError."""
    return named_files(dataset_places(), DatasetError, "dataset specs", DATASETS_VAR)


def spec_sources() -> dict[str, str]:
    """name -> where its spec came from ("package", "user", "$MRCZBENCH_DATASETS")."""
    found = named_sources(dataset_places(), DatasetError, "dataset specs", DATASETS_VAR)
    return {name: source for name, (_, source) in found.items()}


def load_spec(name_or_path: str | os.PathLike) -> DatasetSpec:
    """A spec by name (datasets/<name>.toml) or from a .toml path."""
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith(".toml") or os.sep in text):  # a name, even if a file of that name is here
        paths = spec_paths()
        if text not in paths:
            names = ", ".join(sorted(paths))
            raise DatasetError(f"unknown dataset {text!r}; known datasets: {names} "
                               f"(searched {', '.join(map(str, dataset_dirs()))})")
        path = paths[text]
    if not path.is_file():
        raise DatasetError(f"{path}: no such dataset spec file")
    raw = read_toml(path, DatasetError, "not a readable TOML file")
    return spec_from_dict(path.stem, raw, where=str(path))


def spec_from_dict(name: str, raw: dict[str, Any], where: str = "<dict>") -> DatasetSpec:
    """A spec from the keys of a spec file (DatasetError names the file and the field)."""
    unknown = sorted(set(raw) - set(SPEC_KEYS) - {"name"})
    if unknown:
        raise DatasetError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(SPEC_KEYS)}")
    if "name" in raw and raw["name"] != name:
        raise DatasetError(f"{where}: name = {raw['name']!r} differs from the file name {name!r}")
    fields = {key: raw[key] for key in SPEC_KEYS if key in raw}
    if "shape" in fields and isinstance(fields["shape"], list):
        fields["shape"] = tuple(fields["shape"])
    try:
        return DatasetSpec(name=name, **fields)
    except DatasetError as exc:
        raise DatasetError(f"{where}: {exc}") from None


def list_specs() -> list[DatasetSpec]:
    """Every named spec, sorted by name."""
    return [load_spec(path) for name, path in sorted(spec_paths().items())]


# --------------------------------------------------------------------------------------
# Cache

_CACHE_NAME = re.compile(r"^(?P<name>.+)-(?P<key>[0-9a-f]{16})\.mrcz$")


def cache_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """`cache_dir`, else $MRCZBENCH_CACHE, else ~/.cache/mrczbench. DatasetError if it
    exists and is not a folder (it could never hold a stack)."""
    if cache_dir:
        folder = Path(cache_dir).expanduser()
    elif os.environ.get("MRCZBENCH_CACHE"):
        folder = Path(os.environ["MRCZBENCH_CACHE"]).expanduser()
    else:
        folder = Path.home() / ".cache" / "mrczbench"
    if folder.exists() and not folder.is_dir():
        raise DatasetError(f"{folder}: the dataset cache must be a folder, and this is a file; "
                           "give --cache-dir a folder (or set $MRCZBENCH_CACHE)")
    return folder


def cached_files(cache_dir=None) -> list[Path]:
    """The dataset stacks in the cache (files named <name>-<key>.mrcz)."""
    folder = cache_folder(cache_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _CACHE_NAME.match(p.name) and p.is_file())


def cache_size(cache_dir=None) -> tuple[int, int]:
    """(bytes, stacks) in the cache."""
    files = cached_files(cache_dir)
    return sum(p.stat().st_size for p in files), len(files)


def cache_summary(cache_dir=None) -> str:
    size, count = cache_size(cache_dir)
    return (f"cache: {human_bytes(size)} in {count} stack{'s' if count != 1 else ''} at "
            f"{cache_folder(cache_dir)} (empty it with: mrczbench datasets cache --clear)")


def clear_cache(cache_dir=None) -> tuple[int, int]:
    """Delete cached stacks and leftover temporary files; return (files, bytes) removed.
    Other files in the folder are left alone."""
    folder = cache_folder(cache_dir)
    victims = cached_files(cache_dir)
    if folder.is_dir():  # temp files of interrupted writes: .<name>-<key>.mrcz.<random>.tmp
        victims += [p for p in folder.iterdir()
                    if p.name.startswith(".") and p.name.endswith(".tmp") and ".mrcz." in p.name]
    freed = 0
    for path in victims:
        try:
            freed += path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            pass
    return len(victims), freed


def cached_path(spec: DatasetSpec, cache_dir=None) -> Path | None:
    """The cached stack of `spec` if there is one (found by key, whatever its name)."""
    folder = cache_folder(cache_dir)
    if not folder.is_dir():
        return None
    matches = sorted(folder.glob(f"*-{spec.key}.mrcz"))
    return matches[0] if matches else None


def materialise(spec: DatasetSpec, cache_dir=None, threads: int | None = None,
                progress: bool = True, force: bool = False) -> Path:
    """The cached MRCZ file of `spec`'s stack, generated (streaming, frame by frame) on the
    first call. progress: report generation and the cache's new size on stderr."""
    if not isinstance(spec, DatasetSpec):
        raise DatasetError(f"expected a DatasetSpec, got {type(spec).__name__}")
    check_threads(threads)
    existing = cached_path(spec, cache_dir)
    if existing is not None and not force:
        return existing
    folder = cache_folder(cache_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot create the dataset cache folder: {exc.strerror}") from None
    path = folder / f"{_safe_name(spec.name)}-{spec.key}.mrcz"
    model = spec.model()
    # per-frame progress only where generation takes a while (> 64 MiB raw)
    report = _progress_printer(spec) if progress and spec.nbytes > 64 * MiB else None
    started = time.perf_counter()
    if progress:
        print(f"generating {spec.name}: {spec.frames} x {spec.shape[0]} x {spec.shape[1]} {spec.dtype} "
              f"({human_bytes(spec.nbytes)}, {spec.kind}, dose {spec.dose:g} e/px/frame) into {path}",
              file=sys.stderr, flush=True)
    frames = synthetic.iter_model_frames(model, spec.frames, threads, report)
    from mrczbench import mrcz
    meta = {"mrczbench_dataset": spec.to_dict(), "content": spec.content(), "key": spec.key}
    stored = mrcz.write(path, frames, codec=CACHE_CODEC, level=CACHE_LEVEL, threads=threads, meta=meta)
    if progress:
        seconds = time.perf_counter() - started
        print(f"generated {spec.name} in {seconds:.1f} s ({spec.nbytes / MiB / max(seconds, 1e-9):.0f} MiB/s), "
              f"stored {human_bytes(stored)} ({stored / spec.nbytes:.0%} of raw)", file=sys.stderr)
        print(cache_summary(cache_dir), file=sys.stderr, flush=True)
    return path


def check_threads(threads: Any) -> None:
    """DatasetError unless threads is None (all cores) or an integer >= 1."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise DatasetError(f"threads: expected an integer >= 1 (or none for all cores), "
                           f"got {threads!r}")


def load_stack(spec: DatasetSpec, cache_dir=None, threads: int | None = None,
               progress: bool = True) -> np.ndarray:
    """The (frames, ny, nx) stack of `spec` in its dtype, from the cache (generated once)."""
    from mrczbench import mrcz
    path = materialise(spec, cache_dir, threads, progress)
    try:
        stack = mrcz.read(path, threads=threads)
    except MRCZError as exc:  # a damaged cache file: say so and make it again
        print(f"mrczbench: regenerating damaged cache file ({exc})", file=sys.stderr)
        path = materialise(spec, cache_dir, threads, progress, force=True)
        stack = mrcz.read(path, threads=threads)
    dtype = np.dtype(spec.dtype)
    if stack.dtype != dtype and stack.dtype.itemsize == dtype.itemsize:
        stack = stack.view(dtype)  # MRC mode 0 stores uint8 as the same bytes as int8
    if stack.shape != (spec.frames, *spec.shape) or stack.dtype != dtype:
        raise DatasetError(f"{path}: cached stack is {stack.shape} {stack.dtype}, expected "
                           f"{(spec.frames, *spec.shape)} {dtype}; delete it or clear the cache")
    return stack


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "dataset"


def _progress_printer(spec: DatasetSpec) -> Callable[[int, int], None]:
    """Progress on stderr: a rewritten line on a terminal, else about every 10 %."""
    tty = sys.stderr.isatty()
    started = time.perf_counter()
    step = max(1, spec.frames // 10)

    def report(done: int, total: int) -> None:
        if not tty and done % step and done != total:
            return
        seconds = time.perf_counter() - started
        rate = done * spec.nbytes / total / MiB / max(seconds, 1e-9)
        line = f"  frame {done}/{total} ({done / total:.0%}), {seconds:.1f} s, {rate:.0f} MiB/s"
        end = "\n" if not tty or done == total else ""
        print(("\r" + line) if tty else line, end=end, file=sys.stderr, flush=True)

    return report


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


# --------------------------------------------------------------------------------------
# Command line: mrczbench datasets list|show|generate|cache|inspect


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "datasets", help="synthetic dataset specs, their cache, and users' movies",
        description="Named synthetic datasets (the package's specs, overridden by "
        "$MRCZBENCH_DATASETS folders and ~/.config/mrczbench/datasets), the cache of generated "
        "stacks (MRCZ zstd files under --cache-dir, $MRCZBENCH_CACHE or ~/.cache/mrczbench), and "
        "inspection of your own movie files. Doses are mean electrons per pixel per frame "
        "(e/px/frame); sizes are in MiB = 2^20 bytes.")
    sub = parser.add_subparsers(dest="datasets_command", metavar="SUBCOMMAND", required=True)

    def cache_option(p):
        p.add_argument("--cache-dir", metavar="DIR",
                       help="cache folder (default $MRCZBENCH_CACHE or ~/.cache/mrczbench)")

    p = sub.add_parser("list", help="list the named dataset specs",
                       description="List the named dataset specs with shape, dose, dtype, raw size "
                       "and whether each is already cached.")
    cache_option(p)
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("show", help="show one spec: fields, model, options, cache key",
                       description="Show a dataset spec: its fields, what the detector model "
                       "imitates, all model options with defaults, raw size and cache file.")
    p.add_argument("name", metavar="NAME", help="spec name (see `datasets list`) or a .toml path")
    cache_option(p)
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("generate", help="generate specs into the cache (reused if present)",
                       description="Generate the stacks of the named specs into the cache as MRCZ "
                       "(zstd), streaming frame by frame. A stack already cached is reused. "
                       "Progress and the cache's new size go to stderr.")
    p.add_argument("names", nargs="+", metavar="NAME", help="spec names or .toml paths")
    cache_option(p)
    p.add_argument("--threads", type=_at_least_one, default=None, metavar="N",
                   help="generator and compression threads, >= 1 (default: all cores)")
    p.add_argument("--force", action="store_true", help="generate again even if cached")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("cache", help="show the cache size, or --clear it",
                       description="Show where the dataset cache is and how big it is; --clear "
                       "deletes the cached stacks (only files named <name>-<key>.mrcz).")
    cache_option(p)
    p.add_argument("--clear", action="store_true", help="delete every cached stack")
    p.set_defaults(func=_cmd_cache)

    p = sub.add_parser("inspect", help="check your own movies: shape, dtype, size",
                       description="Open movie files, folders, .lst lists or RELION .star files "
                       f"the way benchmarks will ({readers._supported()}) and print what was found, one "
                       "line a movie as it is opened.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--eer-grouping", type=_at_least_one, default=32, metavar="N",
                   help="EER internal frames per fraction, >= 1 (default 32)")
    p.add_argument("--eer-upsampling", type=int, default=1, choices=(1, 2),
                   help="EER rendering grid: 1 = 4K, 2 = 8K (default 1)")
    p.set_defaults(func=_cmd_inspect)


def _at_least_one(text: str) -> int:
    """argparse type: an integer >= 1 (the error names the valid range)."""
    import argparse
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _shape_text(frames: int, shape) -> str:
    return f"{frames} x {shape[0]} x {shape[1]}"


def _cmd_list(args) -> int:
    specs = list_specs()  # none found: DatasetError naming the overrides
    sources = spec_sources()
    rows = [("name", "kind", "frames x ny x nx", "dose e/px/frame", "dtype", "raw MiB", "cached", "source")]
    for spec in specs:
        rows.append((spec.name, spec.kind, _shape_text(spec.frames, spec.shape), f"{spec.dose:g}",
                     spec.dtype, f"{spec.nbytes / MiB:.1f}",
                     "yes" if cached_path(spec, args.cache_dir) else "no", sources[spec.name]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print(f"\n{cache_summary(args.cache_dir)}", file=sys.stderr)
    return 0


def _cmd_show(args) -> int:
    spec = load_spec(args.name)
    model = spec.model()
    print(f"name         {spec.name}")
    if spec.description:
        print(f"description  {spec.description}")
    print(f"kind         {spec.kind}" + (f" (= {model.kind})" if model.kind != spec.kind else ""))
    print(f"imitates     {model.describe()}")
    print(f"frames       {spec.frames}")
    print(f"shape        {spec.shape[0]} x {spec.shape[1]} px (ny x nx)")
    print(f"dose         {spec.dose:g} e/px/frame (mean)")
    print(f"dtype        {spec.dtype}")
    print(f"seed         {spec.seed}")
    print(f"raw size     {human_bytes(spec.nbytes)} ({spec.nbytes} bytes)")
    if model.kind == "eer":
        seconds = spec.frames * model.opts["grouping"] / model.opts["frame_rate"]
        print(f"exposure     {spec.frames * model.opts['grouping']} internal frames = {seconds:.2f} s "
              f"at {model.opts['frame_rate']:g} frames/s")
    print("options")
    for name, (kind, default, help_text) in sorted(model.all_options().items()):
        value = model.opts[name]
        mark = "" if value == default else "   (set)"
        print(f"  {name:<18} {value!s:<8} {help_text}{mark}")
    print(f"cache key    {spec.key} (generator version {synthetic.GENERATOR_VERSION})")
    path = cached_path(spec, args.cache_dir)
    if path:
        stored = path.stat().st_size
        print(f"cached       {path} ({human_bytes(stored)}, {stored / spec.nbytes:.0%} of raw)")
    else:
        print(f"cached       no (mrczbench datasets generate {spec.name})")
    return 0


def _cmd_generate(args) -> int:
    check_threads(args.threads)  # before any work or output
    specs = [load_spec(name) for name in args.names]  # check every name before working
    for spec in specs:
        existing = None if args.force else cached_path(spec, args.cache_dir)
        if existing:
            print(f"{spec.name}: cached at {existing} ({human_bytes(existing.stat().st_size)})", file=sys.stderr)
            continue
        materialise(spec, args.cache_dir, threads=args.threads, force=args.force)
    return 0


def _cmd_cache(args) -> int:
    if args.clear:
        count, freed = clear_cache(args.cache_dir)
        print(f"removed {count} file{'s' if count != 1 else ''} ({human_bytes(freed)}) from "
              f"{cache_folder(args.cache_dir)}")
        return 0
    for path in cached_files(args.cache_dir):
        print(f"{human_bytes(path.stat().st_size):>10}  {path.name}")
    print(cache_summary(args.cache_dir))
    return 0


def _cmd_inspect(args) -> int:
    # streamed: each movie is printed as it is opened, so a list of 10^6 movies needs the
    # memory of one
    total = count = 0
    tty = sys.stdout.isatty()
    for movie in readers.iter_movies(args.paths, eer_grouping=args.eer_grouping,
                                     eer_upsampling=args.eer_upsampling):
        total += movie.nbytes
        count += 1
        print(f"{movie.kind:<5} {_shape_text(*movie.shape[:1], movie.shape[1:]):>22} {movie.dtype.name:<8} "
              f"{movie.nbytes / MiB:10.1f} MiB  {movie.path}", flush=tty)
    print(f"{count} movie{'s' if count != 1 else ''}, {human_bytes(total)} raw")
    return 0
