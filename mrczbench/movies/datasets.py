"""Datasets: named synthetic specs (`*.toml`, shipped in mrczbench/movies/specs/) and their
content-keyed cache (the `datasets` command is mrczbench.commands.datasets).

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
from typing import Any

import numpy as np

from mrczbench.movies import synthetic
from mrczbench.errors import DatasetError, MRCZError
from mrczbench.progress import Progress
from mrczbench.tomlfiles import Place, named_files, named_sources, read_toml, search_places
from mrczbench.units import MiB, format_bytes

SPEC_KEYS = ("description", "kind", "frames", "shape", "dose", "dtype", "seed", "options")
CACHE_CODEC, CACHE_LEVEL = "zstd", 1


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
    return (f"cache: {format_bytes(size)} in {count} stack{'s' if count != 1 else ''} at "
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
    check_resources(spec, folder)
    model = spec.model()
    # per-frame progress only where generation takes a while (> 64 MiB raw)
    bar = Progress(spec.frames, f"  {spec.name}", enabled=progress and spec.nbytes > 64 * MiB)
    report = (lambda done, total: bar.update(done, bytes_done=done * spec.nbytes / total)) \
        if bar.enabled else None
    started = time.perf_counter()
    if progress and sys.stderr.isatty():  # a progress line: a failure below stays one line in logs
        print(f"generating {spec.name}: {spec.frames} x {spec.shape[0]} x {spec.shape[1]} {spec.dtype} "
              f"({format_bytes(spec.nbytes)}, {spec.kind}, dose {spec.dose:g} e/px/frame) into {path}",
              file=sys.stderr, flush=True)
    frames = synthetic.iter_model_frames(model, spec.frames, threads, report)
    from mrczbench import mrcz
    meta = {"mrczbench_dataset": spec.to_dict(), "content": spec.content(), "key": spec.key}
    stored = mrcz.write(path, frames, codec=CACHE_CODEC, level=CACHE_LEVEL, threads=threads, meta=meta)
    bar.close()
    if progress:
        seconds = time.perf_counter() - started
        print(f"generated {spec.name} in {seconds:.1f} s ({spec.nbytes / MiB / max(seconds, 1e-9):.0f} MiB/s), "
              f"stored {format_bytes(stored)} ({stored / spec.nbytes:.0%} of raw)", file=sys.stderr)
        print(cache_summary(cache_dir), file=sys.stderr, flush=True)
    return path


FRAME_WORK_BYTES = 8  # the sampler works on float64 frames: 8 bytes a pixel at the least


def check_resources(spec: DatasetSpec, folder: Path | None = None, whole_stack: bool = False) -> None:
    """One DatasetError line before any work when `spec` cannot be made here: generating
    needs one frame's float64 work in memory (`whole_stack`: the whole stack, as a benchmark
    holds it) and, in the cache `folder`, room for the stack at its raw size (what
    incompressible frames would take: nothing is started that may not fit)."""
    from mrczbench.movies.readers import available_memory
    size = f"{spec.frames} x {spec.shape[0]} x {spec.shape[1]} {spec.dtype}"
    need = spec.nbytes if whole_stack else spec.shape[0] * spec.shape[1] * FRAME_WORK_BYTES
    free = available_memory()
    if need > free:
        what = "the whole stack" if whole_stack else "one frame's work"
        raise DatasetError(f"{spec.name}: {size} needs {format_bytes(need)} of memory for {what}, "
                           f"{format_bytes(free)} is available: make the spec's shape or frames "
                           f"smaller")
    if folder is not None:
        import shutil
        room = shutil.disk_usage(folder).free
        if spec.nbytes > room:
            raise DatasetError(f"{spec.name}: {size} is {format_bytes(spec.nbytes)} raw and the "
                               f"cache folder {folder} has {format_bytes(room)} free: free space, "
                               f"use --cache-dir (or $MRCZBENCH_CACHE) on a larger disk, or make "
                               f"the spec smaller")


def write_copy(spec: DatasetSpec, out: Path, cache_dir=None) -> int:
    """The cached stack of `spec` as its own file (plain MRC, or MRCZ zstd-1 for .mrcz),
    streamed frame by frame; returns the bytes written."""
    from mrczbench import mrcz
    cached = materialise(spec, cache_dir, progress=False)
    frames = mrcz.CountedFrames(mrcz.iter_frames(cached), spec.frames)
    codec = "zstd" if Path(out).suffix.lower() == ".mrcz" else None
    return mrcz.write(out, frames, codec=codec, level=1)


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
    check_resources(spec, whole_stack=True)
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
