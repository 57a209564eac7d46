"""Benchmark suites: `*.toml` files (shipped in mrczbench/bench/suite_files/) → Suite → list of Cases.

A suite file has fixed keys and one explicit `[sweep]` table. Only the lists under `[sweep]`
expand into cases (their cartesian product); a list anywhere else is a plain value (e.g.
`shape = [512, 512]`). The layout:

    description = "..."           # one line for `suites list`
    figure = "Fig. 2a"            # what it reproduces (optional)
    ops = ["encode", "decode", "write", "write_fsync", "read_cold", "read_warm"]
    repeats = 6                   # samples per op: the minimum (precision > 0) or the count
    precision = 0.05              # sample until the median's 95 % interval is within ±5 %
                                  # (0: exactly `repeats` samples; quick's default)
    max_repeats = 30              # at most this many samples per op
    budget = 120                  # seconds of rounds per case before it stops short of it
    min_batch_seconds = 0.1       # calibrated in-memory batches last at least this long
    timeout = 600                 # seconds per case before the worker is killed
    seed = 0                      # seeds the shuffled case order

    [dataset]                     # fixed dataset fields (or name = "<datasets/*.toml spec>")
    kind = "poisson"
    frames = 30
    shape = [3838, 3710]

    [format]                      # fixed format parameters applied to every contender
    threads = "cores"

    [contenders]                  # named format configurations
    "zstd-1" = { format = "mrcz", codec = "zstd", level = 1 }

    [sweep]                       # lists that expand into cases
    dose = [0.1, 1, 4]
    contender = ["zstd-1"]

    [quick]                       # overrides for --quick (same keys, plus [quick.sweep])
    repeats = 2
    [quick.dataset]
    frames = 4

Sweep keys: `contender`, `dataset` (spec names), dataset fields (dose, frames, shape, dtype,
seed) and anything else is a format parameter (codec, level, threads, blocksize, ...).
Every case's format config is built when the suite's cases are listed (`Suite.cases()`), so a
misspelled format, parameter or value is a SuiteError before anything runs. Metadata
serialisation (Fig. 3) is the `metadata` format on a `kind = "metadata"` dataset.
`threads` accepts "cores", "2*cores", "1.5*cores", "cores-1" (resolved on the running machine);
`blocksize` accepts bytes, "16KiB", "4MiB" or "auto" (= 0, the library's choice).
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from mrczbench.argtypes import EER_GROUPING
from mrczbench.errors import SuiteError
from mrczbench.store import OPS
from mrczbench.tomlfiles import Place, named_files, read_toml, search_places

TOP_KEYS = ("description", "figure", "ops", "repeats", "precision", "max_repeats", "budget",
            "min_batch_seconds", "timeout", "seed", "dataset", "format", "contenders", "sweep",
            "quick", "reference", "duration")
# full: what to quote; quick: a smoke test for first contact and CI; reference: the full
# profile reduced where a suite says how ([reference]) to fit the committed reference run
# (a suite without a [reference] table runs its full profile)
PROFILES = ("full", "quick", "reference")
QUICK_KEYS = ("ops", "repeats", "precision", "max_repeats", "budget", "min_batch_seconds",
              "timeout", "dataset", "format", "sweep", "duration")
DATASET_KEYS = ("name", "kind", "frames", "shape", "dose", "dtype", "seed", "options", "megabytes")
DATASET_SWEEP_KEYS = ("dataset", "dose", "frames", "shape", "dtype", "seed")

# Sampling (mrczbench.sampling): full and reference profiles sample each
# case until its medians' 95 % intervals are within ±precision, at least `repeats` (>= 6:
# fewer give no interval) and at most `max_repeats` samples, or until `budget` seconds of its
# rounds are spent; the quick profile keeps a small fixed budget (precision 0: `repeats`).
DEFAULTS = {"description": "", "figure": "", "duration": "", "ops": list(OPS), "repeats": 6,
            "precision": 0.05, "max_repeats": 30, "budget": 120.0,
            "min_batch_seconds": 0.05, "timeout": 600.0, "seed": 0}
QUICK_PRECISION = 0.0


# --- where suites live -----------------------------------------------------------------------

SUITES_VAR = "MRCZBENCH_SUITES"


def suite_places() -> list[Place]:
    """$MRCZBENCH_SUITES, the user's folder, then the suites shipped in the package
    (mrczbench.tomlfiles)."""
    return search_places(SUITES_VAR, "suites", "mrczbench.bench", "suite_files")


def suite_dirs() -> list[Path]:
    return [place.folder for place in suite_places()]


def suite_paths() -> dict[str, Path]:
    """name -> suite file; earlier folders win. None found at all: SuiteError."""
    return named_files(suite_places(), SuiteError, "suites", SUITES_VAR)


def find_suite(name_or_path: str | os.PathLike) -> Path:
    text = str(name_or_path)
    if text.endswith(".toml") or os.sep in text:
        path = Path(text)
        if not path.is_file():
            raise SuiteError(f"{path}: no such suite file")
        return path
    known = suite_paths()
    if text not in known:
        raise SuiteError(f"unknown suite {text!r}; valid: {', '.join(known) or '(none found)'}")
    return known[text]


# --- values ----------------------------------------------------------------------------------

_CORES = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*\*\s*)?cores\s*(?:-\s*(\d+)\s*)?$")
THREAD_EXPRESSIONS = "'cores', '2*cores', 'cores-1'"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|K|KB|KIB|M|MB|MIB|G|GB|GIB)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 2**20, "MB": 2**20, "MIB": 2**20,
          "G": 2**30, "GB": 2**30, "GIB": 2**30}


MAX_THREADS = 256  # blosc's BLOSC_MAX_THREADS; no contender uses more
MAX_CASES = 10_000  # a sweep of more cases is almost surely a typo (listing alone takes minutes)
MAX_CASES_VAR = "MRCZBENCH_MAX_CASES"
MAX_SECONDS = {"min_batch_seconds": 3600.0, "timeout": 7 * 86400.0}


def resolve_threads(value: Any, cores: int | None = None) -> int:
    """An integer 1-MAX_THREADS, or 'cores' / 'N*cores' / 'cores-K' on this machine (rounded,
    at least 1). 'cores-1' leaves a core to the harness and the OS: at threads = vCPUs every
    thread competes with them, and on a 2-vCPU VM samples split into a fast and a slow mode."""
    if isinstance(value, bool):
        raise ValueError(f"expected an integer >= 1 or {THREAD_EXPRESSIONS}. Got {value!r}")
    if isinstance(value, int):
        if not 1 <= value <= MAX_THREADS:
            raise ValueError(f"expected an integer 1-{MAX_THREADS} or {THREAD_EXPRESSIONS}. Got {value!r}")
        return value
    match = _CORES.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"expected an integer >= 1 or {THREAD_EXPRESSIONS}. Got {value!r}")
    if cores is None:
        from mrczbench.system import usable_cores
        cores = usable_cores()
    factor = float(match.group(1) or 1)
    threads = max(1, round(factor * cores) - int(match.group(2) or 0))
    if threads > MAX_THREADS:
        raise ValueError(f"{value!r} is {threads} threads here; at most {MAX_THREADS}")
    return threads


def check_case_count(count: int, path) -> None:
    """Refuse a sweep of more than MAX_CASES cases (or $MRCZBENCH_MAX_CASES) before listing it."""
    limit = MAX_CASES
    text = os.environ.get(MAX_CASES_VAR)
    if text:
        try:
            limit = int(text)
        except ValueError:
            raise SuiteError(f"${MAX_CASES_VAR}={text!r}: expected a whole number of cases") from None
    if count > limit:
        raise SuiteError(f"{path}: the sweep makes {count:,} cases, more than the limit of "
                         f"{limit:,}; sweep fewer values, or raise the limit with "
                         f"{MAX_CASES_VAR}={count}")


def resolve_blocksize(value: Any) -> int:
    """Bytes: an integer >= 0, '16KiB', '4MiB', or 'auto' (= 0, the library's choice)."""
    if isinstance(value, bool):
        raise ValueError(f"expected bytes >= 0, a size like '256KiB', or 'auto'. Got {value!r}")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return 0
        match = _SIZE.match(value)
        if match:
            return int(float(match.group(1)) * _UNITS[(match.group(2) or "").upper()])
    raise ValueError(f"expected bytes >= 0, a size like '256KiB', or 'auto'. Got {value!r}")


def format_value(value: Any) -> str:
    """Compact text for case ids: 0.1, 1, 512x512, zstd."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return "x".join(format_value(v) for v in value)
    return str(value)


# --- the model ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Case:
    """One contender on one dataset: the unit the runner executes in its worker."""

    case_id: str
    suite: str
    dataset: dict[str, Any]        # synthetic fields, {"name": spec} or {"path": user movie}
    format: dict[str, Any]         # {"format": name, **params}: a validated format config
    label: str | None              # contender name from the suite, if any
    ops: tuple[str, ...]
    repeats: int                   # samples per op in one run of the case (a round: 1)
    min_batch_seconds: float
    timeout: float
    sweep: dict[str, Any]          # the swept values that make this case
    columns: dict[str, Any] = dataclasses.field(default_factory=dict)
    # ^ the contender's result columns: format, label, params and Format.row_columns()
    unavailable: str | None = None  # why the format cannot be loaded here (an error row)
    first_sample: int = 0          # number of the first sample (the round, in a run of rounds)

    def samples(self) -> range:
        return range(self.first_sample, self.first_sample + self.repeats)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Suite:
    name: str
    path: Path
    profile: str                   # "full", "quick" or "reference"
    description: str
    figure: str
    ops: tuple[str, ...]
    repeats: int                   # samples per op: the minimum, or the count when precision is 0
    min_batch_seconds: float
    timeout: float
    seed: int
    dataset: dict[str, Any]
    format: dict[str, Any]
    contenders: dict[str, dict[str, Any]]
    sweep: dict[str, list[Any]]
    duration: str = ""             # measured wall time of this profile, said before a run starts
    precision: float = QUICK_PRECISION  # target half-width of the median's interval (0: fixed)
    max_repeats: int = 0
    budget: float = 0.0            # seconds of rounds per case (0: no limit)

    def sampling(self):
        """The stopping rule of this suite's cases (mrczbench.sampling.SamplingRule)."""
        from mrczbench.sampling import MIN_SAMPLES_FOR_CI, SamplingRule
        if not self.precision:
            return SamplingRule(0.0, self.repeats, self.repeats, 0.0)
        least = max(self.repeats, MIN_SAMPLES_FOR_CI)
        return SamplingRule(self.precision, least, max(least, self.max_repeats), self.budget)

    def describe_sampling(self) -> str:
        rule = self.sampling()
        if rule.fixed:
            return (f"a fixed budget of {rule.min_samples} sample(s) per op (no precision "
                    f"target: medians without a 95 % interval below 6 samples)")
        return (f"until the median's 95 % interval is within ±{rule.precision:.0%} "
                f"({rule.min_samples}-{rule.max_samples} samples per op, budget "
                f"{rule.budget_s:g} s per case)")

    def cases(self, data: list[str | os.PathLike] | None = None,
              eer_grouping: int = EER_GROUPING) -> list[Case]:
        """Expand the sweep into cases. With `data` (users' movie files or .lst/.star lists),
        the suite's datasets and dataset sweeps are replaced by one dataset per movie, named
        by its file stem (the full path when stems repeat); EER movies are rendered with
        `eer_grouping` internal frames a frame (recorded in the dataset when not the default)."""
        sweep = dict(self.sweep)
        fixed_dataset = dict(self.dataset)
        if data:
            if self.dataset.get("kind") == "metadata":
                raise SuiteError(f"{self.path}: --data replaces movie datasets; this suite's "
                                 f"dataset is metadata documents")
            # folders, .lst and .star lists expand to movie files (mrczbench.movies.datasets)
            from mrczbench.movies.readers import open_movies
            movies = [Path(movie.path) for movie in open_movies(list(data), eer_grouping=eer_grouping)]
            for key in DATASET_SWEEP_KEYS:
                sweep.pop(key, None)
            names = _unique_names(movies)
            sweep = {"data": names, **sweep}
            check_case_count(math.prod(len(options) for options in sweep.values()), self.path)
            by_name = dict(zip(names, movies))
        cases = []
        keys = list(sweep)
        for values in itertools.product(*(sweep[k] for k in keys)):
            point = dict(zip(keys, values))
            if data:
                dataset = {"name": point["data"], "path": str(by_name[point["data"]])}
                if eer_grouping != EER_GROUPING:
                    dataset["eer_grouping"] = eer_grouping
            else:
                dataset = dict(fixed_dataset)
                for key in DATASET_SWEEP_KEYS:
                    if key in point:
                        dataset["name" if key == "dataset" else key] = point[key]
            params = dict(self.format)
            label = None
            if "contender" in point:
                label = point["contender"]
                params.update(self.contenders[label])
            for key, value in point.items():
                if key not in DATASET_SWEEP_KEYS and key not in ("contender", "data"):
                    params[key] = value
            params = self._resolve_params(params, where="sweep")
            case_id = ",".join(f"{k}={format_value(v)}" for k, v in point.items()) or "default"
            case = Case(case_id=case_id, suite=self.name, dataset=dataset, format=params,
                        label=label, ops=self.ops, repeats=self.repeats,
                        min_batch_seconds=self.min_batch_seconds, timeout=self.timeout,
                        sweep={k: v for k, v in point.items()})
            cases.append(self._with_format(case))
        return cases

    def _with_format(self, case: Case) -> Case:
        """Build the case's format config (a typo in a format name, parameter or value is a
        SuiteError here, before anything runs) and record the contender's row columns."""
        from mrczbench.errors import FormatError
        from mrczbench.formats import format_class, format_names

        params = dict(case.format)
        name = params.pop("format", None)
        if name not in format_names():
            raise SuiteError(f"{self.path}: case {case.case_id}: unknown format {name!r}; "
                             f"valid: {', '.join(format_names())}")
        try:
            cls = format_class(name)
        except FormatError as exc:  # a plugin that cannot be imported here: an error row
            case.unavailable = str(exc)
            case.columns = {"format": name, "label": case.label or name,
                            "params": json.dumps(case.format, sort_keys=True, default=str)}
            return case
        try:
            fmt = cls(**params)
        except FormatError as exc:
            raise SuiteError(f"{self.path}: case {case.case_id}: {exc}") from None
        case.format = fmt.to_dict()
        case.columns = {"format": name, **fmt.row_columns(), "label": case.label or fmt.label(),
                        "params": fmt.to_json()}
        return case

    def _resolve_params(self, params: dict[str, Any], where: str) -> dict[str, Any]:
        resolved = dict(params)
        try:
            if "threads" in resolved:
                resolved["threads"] = resolve_threads(resolved["threads"])
            if "blocksize" in resolved:
                resolved["blocksize"] = resolve_blocksize(resolved["blocksize"])
        except ValueError as exc:
            raise SuiteError(f"{self.path}: {where}: {exc}") from None
        return resolved

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["path"] = str(self.path)
        return out


def _unique_names(paths: list[Path]) -> list[str]:
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [str(p) for p in paths]


# --- parsing and validation ------------------------------------------------------------------

def load_suite(name_or_path: str | os.PathLike, quick: bool = False, profile: str | None = None) -> Suite:
    """Read and validate a suite in `profile` (full, quick or reference: the overrides of its
    [quick] or [reference] table); `quick=True` is profile "quick"."""
    path = find_suite(name_or_path)
    return parse_suite(read_toml(path, SuiteError, "not valid TOML"), path, quick=quick, profile=profile)


def parse_suite(raw: dict[str, Any], path: Path, quick: bool = False, profile: str | None = None) -> Suite:
    def fail(key: str, message: str) -> SuiteError:
        return SuiteError(f"{path}: key {key!r}: {message}")

    _check_keys(raw, TOP_KEYS, path, "")
    values, profile = _profile_values(raw, path, quick, profile, fail)
    _check_sampling(values, fail)

    dataset = values["dataset"]
    _check_keys(dataset, DATASET_KEYS, path, "dataset.")
    for key, value in dataset.items():
        _check_dataset_value(f"dataset.{key}", key, value, fail)

    contenders = values["contenders"]
    for name, params in contenders.items():
        if not isinstance(params, dict):
            raise fail(f"contenders.{name}", f"expected a table like {{ format = \"mrcz\", codec = \"zstd\" }}. Got {params!r}")
    fixed_format = values["format"]

    sweep = values["sweep"]
    _check_sweep(sweep, contenders, fail)
    check_case_count(math.prod(len(options) for options in sweep.values()), path)
    _check_stack_memory(dataset, sweep, fail)

    # Every case needs a format: from [format] or from its contender.
    if "format" not in fixed_format:
        names = sweep.get("contender") or []
        if not names:
            raise fail("format", "no format: set format.format = \"<name>\" or sweep over contenders")
        for name in names:
            if "format" not in contenders[name]:
                raise fail(f"contenders.{name}", "missing 'format' (the format name, e.g. \"mrcz\")")

    suite = Suite(
        name=path.stem, path=path, profile=profile,
        description=str(values["description"]), figure=str(values["figure"]),
        ops=tuple(values["ops"]), repeats=values["repeats"],
        min_batch_seconds=float(values["min_batch_seconds"]),
        timeout=float(values["timeout"]), seed=values["seed"], dataset=dataset,
        format=fixed_format, contenders=contenders, sweep=sweep,
        precision=float(values["precision"]), max_repeats=values["max_repeats"],
        budget=float(values["budget"]), duration=values["duration"])
    for where, params in [("format", fixed_format)] + [(f"contenders.{n}", p) for n, p in contenders.items()]:
        suite._resolve_params(params, where=where)
    for key in ("threads", "blocksize"):
        for value in sweep.get(key, []):
            suite._resolve_params({key: value}, where=f"sweep.{key}")
    if "threads" in sweep:
        # '2*cores' on a 1-core machine equals 'cores': drop duplicates after resolving.
        suite.sweep["threads"] = list(dict.fromkeys(resolve_threads(v) for v in sweep["threads"]))
    return suite


def _profile_values(raw: dict[str, Any], path: Path, quick: bool, profile: str | None,
                    fail) -> tuple[dict[str, Any], str]:
    """The suite's values with the chosen profile's overrides applied, and the profile."""
    values = {**DEFAULTS, **copy.deepcopy(raw)}
    if quick and profile not in (None, "quick"):
        raise SuiteError(f"--quick and --profile {profile} contradict each other (--quick is "
                         f"--profile quick): give one of them")
    profile = profile or ("quick" if quick else "full")
    if profile not in PROFILES:
        raise SuiteError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    for key in ("dataset", "format", "contenders", "sweep", *PROFILES[1:]):
        values.setdefault(key, {})
        if not isinstance(values[key], dict):
            raise fail(key, f"expected a table ([{key}]). Got {values[key]!r}")
    if profile != "full":
        overrides = values[profile]
        _check_keys(overrides, QUICK_KEYS, path, f"{profile}.")
        if overrides:  # another workload: the full profile's duration does not hold
            values["duration"] = ""
        for key, value in overrides.items():
            if key in ("dataset", "format", "sweep"):
                if not isinstance(value, dict):
                    raise fail(f"{profile}.{key}", f"expected a table. Got {value!r}")
                values[key] = {**values[key], **value}
            else:
                values[key] = value
    if profile == "quick" and "precision" not in values["quick"]:
        values["precision"] = QUICK_PRECISION  # quick: a small fixed budget
    return values, profile


def _check_sampling(values: dict[str, Any], fail) -> None:
    """ops, repeats, precision, budget, batch length, timeout, duration and seed."""
    ops = values["ops"]
    if not isinstance(ops, list) or not ops or any(op not in OPS for op in ops):
        raise fail("ops", f"expected a list of operations from {', '.join(OPS)}. Got {ops!r}")
    for key in ("repeats", "max_repeats"):
        count = values[key]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise fail(key, f"expected an integer >= 1. Got {count!r}")
    for key in ("precision", "budget"):
        number = values[key]
        if isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0 \
                or number != number or number == float("inf"):
            raise fail(key, f"expected a finite number >= 0. Got {number!r}")
    for key in ("min_batch_seconds", "timeout"):
        number = values[key]
        if isinstance(number, bool) or not isinstance(number, (int, float)) \
                or not 0 < number <= MAX_SECONDS[key]:  # also refuses nan and inf
            raise fail(key, f"expected a number of seconds > 0 and <= {MAX_SECONDS[key]:g}. "
                            f"Got {number!r}")
    if not isinstance(values["duration"], str):
        raise fail("duration", f"expected text such as \"2-3 h on 2 cores\". Got {values['duration']!r}")
    if isinstance(values["seed"], bool) or not isinstance(values["seed"], int):
        raise fail("seed", f"expected an integer. Got {values['seed']!r}")


def _check_sweep(sweep: dict[str, Any], contenders: dict[str, Any], fail) -> None:
    for key, options in sweep.items():
        if not isinstance(options, list) or not options:
            raise fail(f"sweep.{key}", f"expected a non-empty list of values to sweep. Got {options!r}")
        if key == "contender":
            for name in options:
                if name not in contenders:
                    raise fail("sweep.contender", f"unknown contender {name!r}; valid: {', '.join(contenders) or '(no [contenders] table)'}")
        elif key == "dataset":
            if any(not isinstance(v, str) for v in options):
                raise fail("sweep.dataset", f"expected dataset spec names. Got {options!r}")
        elif key in DATASET_SWEEP_KEYS:
            for value in options:
                _check_dataset_value(f"sweep.{key}", key, value, fail)
        elif key == "data":
            raise fail("sweep.data", "reserved for --data; use 'dataset' for named specs")
    if len(set(sweep.get("contender", []))) != len(sweep.get("contender", [])):
        raise fail("sweep.contender", "lists a contender twice")


MAX_METADATA_MEGABYTES = 1024  # Fig. 3's documents are 25 MiB; they are built in memory


def _check_stack_memory(dataset: dict[str, Any], sweep: dict[str, Any], fail) -> None:
    """The largest stack the suite's own dataset fields make (a case holds it in memory)
    must fit in the memory available now; named specs are checked when they are loaded."""
    from mrczbench.movies.readers import available_memory
    frames = max(sweep.get("frames") or [dataset.get("frames", 10)])
    pixels = max(ny * nx for ny, nx in (sweep.get("shape") or [dataset.get("shape", [1024, 1024])]))
    dtypes = sweep.get("dtype") or [dataset.get("dtype") or "int8"]
    try:
        import numpy as np
        itemsize = max(np.dtype(d).itemsize for d in dtypes)
    except TypeError:
        return  # an unknown dtype name is reported with its case
    need, free = frames * pixels * itemsize, available_memory()
    if need > free:
        raise fail("dataset", f"a {frames}-frame stack of {pixels:,} pixels needs "
                              f"{need / 2**30:,.1f} GiB of memory; {free / 2**30:,.1f} GiB is "
                              f"available: use fewer frames or a smaller shape")


def _check_keys(table: dict[str, Any], valid: tuple[str, ...], path: Path, prefix: str) -> None:
    for key in table:
        if key not in valid:
            raise SuiteError(f"{path}: unknown key {prefix + key!r}; valid: {', '.join(valid)}")


def _check_dataset_value(where: str, key: str, value: Any, fail) -> None:
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if key == "shape":
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value)):
            raise fail(where, f"expected [ny, nx] (two positive integers). Got {value!r}")
    elif key in ("frames", "megabytes"):
        if not number(value) or not 0 < value < math.inf or (key == "frames" and not isinstance(value, int)):
            raise fail(where, f"expected a positive {'integer' if key == 'frames' else 'number'}. Got {value!r}")
        if key == "megabytes" and value > MAX_METADATA_MEGABYTES:
            raise fail(where, f"expected at most {MAX_METADATA_MEGABYTES} MiB (the documents are "
                              f"built in memory). Got {value!r}")
    elif key == "dose":
        if not number(value) or not 0 <= value < math.inf:  # nan and inf fail too
            raise fail(where, f"expected a dose >= 0 (e/px/frame, finite). Got {value!r}")
    elif key == "seed":
        if not isinstance(value, int) or isinstance(value, bool):
            raise fail(where, f"expected an integer. Got {value!r}")
    elif key in ("name", "kind", "dtype", "dataset"):
        if not isinstance(value, str):
            raise fail(where, f"expected a string. Got {value!r}")
    elif key == "options":
        if not isinstance(value, dict):
            raise fail(where, f"expected a table. Got {value!r}")
