"""Datasets: named synthetic specs (`*.toml`, shipped in mrczbench/movies/specs/), their content-keyed cache, and
readers for users' own movies.

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

Users' movies: `open_movies(paths)` takes MRC/MRCZ (.mrc .mrcs .mrcz), TIFF (.tif .tiff),
EER (.eer, rendered as RELION does), numpy arrays (.npy: a 2-D frame or a 3-D (z, y, x)
stack, memory-mapped), lists (.lst: one path a line) and RELION .star files (column
rlnMicrographMovieName), and folders. Frames stream one at a time. In a folder, a file that
is not a readable movie (e.g. an RGB TIFF) is skipped with a warning on stderr; a file named
explicitly (or in a list) that cannot be read is an error, and so is finding no movie at all.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from mrczbench.movies import synthetic
from mrczbench.errors import DatasetError, MRCZError
from mrczbench.tomlfiles import Place, named_files, named_sources, read_toml, search_places

SPEC_KEYS = ("description", "kind", "frames", "shape", "dose", "dtype", "seed", "options")
CACHE_CODEC, CACHE_LEVEL = "zstd", 1
MOVIE_SUFFIXES = (".mrc", ".mrcs", ".mrcz", ".tif", ".tiff", ".eer", ".npy")
LIST_SUFFIXES = (".lst", ".star")
STAR_MOVIE_COLUMN = "rlnMicrographMovieName"
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
    """`cache_dir`, else $MRCZBENCH_CACHE, else ~/.cache/mrczbench."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("MRCZBENCH_CACHE"):
        return Path(os.environ["MRCZBENCH_CACHE"]).expanduser()
    return Path.home() / ".cache" / "mrczbench"


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
# Users' own movies


class Movie:
    """One movie file: `name`, `path`, `kind` (mrc, mrcz, tiff, eer, npy), `shape` (frames, ny,
    nx), `dtype`; `iter_frames()` streams 2-D frames, `read()` returns the whole stack."""

    kind = ""

    def __init__(self, path: Path, shape: tuple[int, int, int], dtype):
        self.path = path
        self.name = path.name
        self.shape = tuple(int(v) for v in shape)
        self.dtype = np.dtype(dtype)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def iter_frames(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def read(self) -> np.ndarray:
        """The whole (frames, ny, nx) stack, filled frame by frame into one array."""
        out = np.empty(self.shape, self.dtype)
        count = 0
        for count, frame in enumerate(self.iter_frames(), 1):
            out[count - 1] = frame
        if count != self.shape[0]:
            raise DatasetError(f"{self.path}: expected {self.shape[0]} frames, read {count}")
        return out

    def __repr__(self):
        return f"{type(self).__name__}({str(self.path)!r}, shape={self.shape}, dtype={self.dtype.name})"


class MrcMovie(Movie):
    """MRC or MRCZ via mrczbench.mrcz (compressed, plain and 4-bit mode 101 files)."""

    def __init__(self, path: Path):
        from mrczbench import mrcz
        header = mrcz.read_header(path)
        super().__init__(path, header.shape, header.dtype)
        self.kind = "mrcz" if header.codec else "mrc"

    def iter_frames(self):
        from mrczbench import mrcz
        try:
            yield from mrcz.iter_frames(self.path)
        except MRCZError as exc:
            raise DatasetError(f"{self.path}: cannot read: {exc}") from None


class PermissiveMrcMovie(Movie):
    """Plain MRC files our codec rejects (e.g. odd headers), read with mrcfile, memory-mapped."""

    kind = "mrc"

    def __init__(self, path: Path):
        import mrcfile
        with warnings.catch_warnings(record=True) as caught:  # permissive mode warns instead of failing
            warnings.simplefilter("always")
            with mrcfile.mmap(path, mode="r", permissive=True) as mrc:
                data = mrc.data
                if data is None or data.ndim < 2:
                    problems = "; ".join(str(w.message) for w in caught) or "no image data"
                    raise DatasetError(f"{path}: cannot read as MRC: {problems}")
                shape = data.shape if data.ndim == 3 else (1, *data.shape[-2:])
                super().__init__(path, shape, data.dtype.newbyteorder("="))

    def iter_frames(self):
        import mrcfile
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # reported when opened
            mrc = mrcfile.mmap(self.path, mode="r", permissive=True)
        with mrc:
            data = mrc.data.reshape(self.shape)
            for i in range(self.shape[0]):
                yield np.array(data[i], dtype=self.dtype)


class TiffMovie(Movie):
    """TIFF movies: every page of the file is a frame (a page holding a (z, y, x) block gives
    z frames), whatever tifffile groups into series, since writers that add one page at a time
    make one series per page. All pages must be grey and of one shape and dtype."""

    kind = "tiff"

    def __init__(self, path: Path):
        import tifffile
        with tifffile.TiffFile(path) as tif:
            if tif.is_eer:
                raise _IsEer()
            pages = tif.pages
            first = pages[0]
            frames = 0
            for index, page in enumerate(pages):
                if getattr(page, "samplesperpixel", 1) != 1 or len(page.shape) not in (2, 3):
                    raise DatasetError(f"{path}: TIFF series has axes {page.axes!r} (page {index}, "
                                       f"shape {page.shape}); only grey frames (…YX) are movies")
                if page.shape[-2:] != first.shape[-2:] or page.dtype != first.dtype:
                    raise DatasetError(f"{path}: TIFF page {index} is {page.shape} {page.dtype} but "
                                       f"page 0 is {first.shape} {first.dtype}; a movie's pages match")
                frames += 1 if len(page.shape) == 2 else page.shape[0]
            super().__init__(path, (frames, *first.shape[-2:]), first.dtype)

    def iter_frames(self):
        import tifffile
        with tifffile.TiffFile(self.path) as tif:
            for index, page in enumerate(tif.pages):
                try:
                    pixels = page.asarray()
                except Exception as exc:  # tifffile/imagecodecs raise many types
                    raise DatasetError(f"{self.path}: cannot decode TIFF page {index}: {exc}") from None
                yield from (pixels[np.newaxis] if pixels.ndim == 2 else pixels)


def check_eer_options(grouping: Any, upsampling: Any) -> None:
    """DatasetError unless grouping is an integer >= 1 and upsampling is 1 or 2."""
    if isinstance(grouping, bool) or not isinstance(grouping, int) or grouping < 1:
        raise DatasetError(f"eer_grouping: expected an integer >= 1 (internal frames per "
                           f"fraction), got {grouping!r}")
    if isinstance(upsampling, bool) or upsampling not in (1, 2):
        raise DatasetError(f"eer_upsampling: {upsampling!r} is not one of 1 (4K), 2 (8K)")


class NpyMovie(Movie):
    """A numpy .npy file: a 2-D frame or a 3-D (z, y, x) stack of numbers, memory-mapped so
    that frames stream from disk."""

    kind = "npy"

    def __init__(self, path: Path):
        data = self._map(path)  # a memory map: no pixels are read here
        shape, dtype = data.shape, data.dtype
        del data
        if dtype.kind not in "iufc" or dtype.fields is not None:
            raise DatasetError(f"{path}: .npy dtype {dtype} is not a numeric pixel type; "
                               "expected integers, floats or complex numbers")
        if len(shape) not in (2, 3):
            raise DatasetError(f"{path}: .npy shape {shape}; expected a 2-D frame (y, x) or a "
                               "3-D stack (z, y, x)")
        frames = (1, *shape) if len(shape) == 2 else shape
        super().__init__(path, frames, dtype.newbyteorder("="))

    @staticmethod
    def _map(path: Path) -> np.ndarray:
        with open(path, "rb") as handle:
            if handle.read(6) != b"\x93NUMPY":
                raise DatasetError(f"{path}: not a .npy file (no numpy magic bytes)")
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:  # object arrays, bad header, truncated
            raise DatasetError(f"{path}: cannot read as .npy: {exc}") from None

    def iter_frames(self):
        data = self._map(self.path).reshape(self.shape)
        for index in range(self.shape[0]):
            yield np.array(data[index], dtype=self.dtype)


class EerMovie(Movie):
    """Falcon 4 EER files rendered as RELION does: `grouping` internal frames summed into
    each fraction (a trailing remainder is dropped), on the 4K grid (upsampling 1) or the
    8K super-resolution grid (upsampling 2). uint8 (uint16 above 255 frames a fraction)."""

    kind = "eer"

    def __init__(self, path: Path, grouping: int = 32, upsampling: int = 1):
        import tifffile
        check_eer_options(grouping, upsampling)
        self.grouping, self.upsampling = grouping, upsampling
        with tifffile.TiffFile(path, superres=upsampling - 1) as tif:
            if not tif.is_eer:
                raise DatasetError(f"{path}: not an EER file (no EER acquisition metadata)")
            series = tif.series[0]
            internal = series.shape[0] if len(series.shape) == 3 else 1
            self.internal_frames = internal
            if internal < grouping:
                raise DatasetError(f"{path}: {internal} internal frames, fewer than eer_grouping {grouping}")
            dtype = np.uint8 if grouping <= 255 else np.uint16
            super().__init__(path, (internal // grouping, *series.shape[-2:]), dtype)

    def iter_frames(self):
        import tifffile
        with tifffile.TiffFile(self.path, superres=self.upsampling - 1) as tif:
            pages = tif.series[0].pages
            for fraction in range(self.shape[0]):
                total = np.zeros(self.shape[1:], np.uint16)
                for page in pages[fraction * self.grouping:(fraction + 1) * self.grouping]:
                    total += page.asarray()  # events (0/1) on the rendered grid
                yield total.astype(self.dtype, copy=False)


class _IsEer(Exception):
    """A .tif that turned out to be EER."""


def open_movies(paths, eer_grouping: int = 32, eer_upsampling: int = 1) -> list[Movie]:
    """Movies from files, folders (their movie files), .lst lists and RELION .star files.

    Relative paths in a list resolve against the list's folder (then, as RELION's project
    convention, the current folder). A missing, unreadable or unsupported file named
    explicitly (or in a list) raises one DatasetError naming the file and the reason; a file
    in a folder that is not a readable movie (an RGB TIFF, a stray .npy) is skipped with a
    warning line on stderr naming it and the reason. No movie at all is a DatasetError.
    EER files are rendered with `eer_grouping` (>= 1) internal frames per fraction on the
    4K (`eer_upsampling` 1) or 8K (2) grid.
    """
    check_eer_options(eer_grouping, eer_upsampling)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    movies, skipped = [], []
    for path, in_folder in _expand(paths, seen=set()):
        try:
            movies.append(_open_movie(path, eer_grouping, eer_upsampling))
        except DatasetError as exc:
            if not in_folder:
                raise
            reason = str(exc).removeprefix(f"{path}: ")
            skipped.append(f"{path}: {reason}")
            print(f"mrczbench: warning: skipping {path}: {reason}", file=sys.stderr, flush=True)
    if not movies:
        if skipped:
            raise DatasetError(f"no movie found: {len(skipped)} file(s) skipped, none readable"
                               f" (first: {skipped[0]})")
        raise DatasetError("no movie files given")
    return movies


def _expand(paths: Iterable, seen: set) -> Iterator[tuple[Path, bool]]:
    """(movie path, found in a folder) pairs; folder contents may be skipped, named files not."""
    for item in paths:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in MOVIE_SUFFIXES and p.is_file())
            if not found:
                raise DatasetError(f"{path}: folder holds no movie files ({_supported()})")
            yield from ((p, True) for p in found)
            continue
        if not path.exists():
            raise DatasetError(f"{path}: no such file")
        suffix = path.suffix.lower()
        if suffix in LIST_SUFFIXES:
            resolved = path.resolve()
            if resolved in seen:
                raise DatasetError(f"{path}: the list includes itself")
            seen.add(resolved)
            entries = _list_entries(path) if suffix == ".lst" else _star_entries(path)
            yield from _expand([_resolve_entry(path, entry) for entry in entries], seen)
        else:
            yield path, False


def _list_entries(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the list: {exc}") from None
    entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not entries:
        raise DatasetError(f"{path}: the list names no movies")
    return entries


def _star_entries(path: Path) -> list[str]:
    """Values of rlnMicrographMovieName from every loop of a RELION .star file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the STAR file: {exc}") from None
    entries: list[str] = []
    columns: list[str] = []
    in_loop = reading_rows = False
    for raw in lines:
        line = raw.strip()
        if line.startswith("data_"):
            in_loop = reading_rows = False
            continue
        if line == "loop_":
            in_loop, reading_rows, columns = True, False, []
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
            values = shlex.split(line) if ('"' in line or "'" in line) else line.split()
            if len(values) != len(columns):
                raise DatasetError(f"{path}: a row has {len(values)} values for {len(columns)} columns: {line!r}")
            entries.append(values[columns.index(STAR_MOVIE_COLUMN)])
    if not entries:
        raise DatasetError(f"{path}: no {STAR_MOVIE_COLUMN} column with movies in any loop")
    return entries


def _resolve_entry(list_file: Path, entry: str) -> Path:
    path = Path(entry).expanduser()
    if path.is_absolute():
        return path
    beside = list_file.parent / path
    if beside.exists() or not path.exists():
        return beside  # a missing file is reported with the list-relative path
    return path        # RELION project convention: relative to the current folder


def _supported() -> str:
    return "supported: " + " ".join(MOVIE_SUFFIXES + LIST_SUFFIXES) + " and folders"


def _open_movie(path: Path, eer_grouping: int, eer_upsampling: int) -> Movie:
    suffix = path.suffix.lower()
    if suffix not in MOVIE_SUFFIXES:
        raise DatasetError(f"{path}: unsupported movie type {suffix or '(no extension)'!r}; {_supported()}")
    if not os.access(path, os.R_OK):
        raise DatasetError(f"{path}: permission denied")
    if suffix in (".mrc", ".mrcs", ".mrcz"):
        try:
            return MrcMovie(path)
        except MRCZError as exc:
            codec_reason = str(exc)
        try:
            return PermissiveMrcMovie(path)
        except Exception as exc:  # mrcfile raises ValueError, OSError, ...
            reason = str(exc).replace(f"{path}: ", "") if isinstance(exc, DatasetError) else \
                f"{type(exc).__name__}: {exc}"
            raise DatasetError(f"{path}: cannot read as MRC/MRCZ: {codec_reason}; mrcfile: {reason}") from None
    if suffix == ".eer":
        return _open_with(EerMovie, path, "EER", eer_grouping, eer_upsampling)
    if suffix == ".npy":
        return _open_with(NpyMovie, path, ".npy")
    try:
        return _open_with(TiffMovie, path, "TIFF")
    except _IsEer:
        return _open_with(EerMovie, path, "EER", eer_grouping, eer_upsampling)


def _open_with(cls, path: Path, what: str, *args) -> Movie:
    try:
        return cls(path, *args)
    except (DatasetError, _IsEer):
        raise
    except Exception as exc:  # tifffile/imagecodecs raise many types for bad files
        raise DatasetError(f"{path}: cannot read as {what}: {type(exc).__name__}: {exc}") from None


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
                       f"the way benchmarks will ({_supported()}) and print what was found.")
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
    movies = open_movies(args.paths, eer_grouping=args.eer_grouping, eer_upsampling=args.eer_upsampling)
    total = 0
    for movie in movies:
        total += movie.nbytes
        print(f"{movie.kind:<5} {_shape_text(*movie.shape[:1], movie.shape[1:]):>22} {movie.dtype.name:<8} "
              f"{movie.nbytes / MiB:10.1f} MiB  {movie.path}")
    print(f"{len(movies)} movie{'s' if len(movies) != 1 else ''}, {human_bytes(total)} raw")
    return 0
