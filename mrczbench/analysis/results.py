"""Result rows (schema version 1, see docs/DESIGN.md), the JSONL store and `load_results`.

A run is two files in `results/<suite>/` (or the run's --out folder):
- `<run-id>.jsonl`: one JSON object per sample, appended and flushed as cases finish, so a
  killed run loses at most the case in flight;
- `<run-id>.run.json`: run metadata (machine, versions, git commit, eviction, command line).
Run ids start with a UTC timestamp, so sorting them sorts runs by start time.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from mrczbench.atomic import atomic_output
from mrczbench.bench import machine as machine_capture
from mrczbench.errors import ResultsError
from mrczbench.units import MiB

SCHEMA_VERSION = 1

OPS = ("encode", "decode", "write", "write_fsync", "read_cold", "read_warm")

# Every row has all of these keys (None where not applicable). Columns after `timestamp`
# are additions to the DESIGN table, allowed by the contract.
COLUMNS = (
    "schema", "run_id", "suite", "case_id", "sample",
    "dataset", "dataset_kind", "dose", "frames", "ny", "nx", "dtype",
    "format", "codec", "level", "blocksize", "threads", "filter", "params", "label",
    "raw_bytes", "stored_bytes", "ratio", "bound_ratio", "efficiency",
    "op", "seconds", "mib_per_s", "loops", "residency", "valid", "lossless", "error",
    "eviction", "timestamp",
    "case_index",  # position of the case in the (shuffled) run order
    "regime",      # "memory" (calibrated loops) or "file" (one call per sample)
)

# Columns that describe a case (everything but the timing of one sample). `figure` is not a
# row column: load_results adds it from run.json, the suite's declared figure ("Fig. 2a",
# "Table 1", "Fig. 3", or ""), which decides where the report shows the case.
CASE_COLUMNS = ("suite", "figure", "dataset", "dataset_kind", "dose", "frames", "ny", "nx",
                "dtype", "format", "codec", "level", "blocksize", "threads", "filter", "params",
                "label")
NUMERIC_COLUMNS = ("dose", "frames", "ny", "nx", "level", "blocksize", "threads", "raw_bytes",
                   "stored_bytes", "ratio", "bound_ratio", "efficiency", "seconds", "mib_per_s",
                   "loops", "residency", "case_index")

RUN_SUFFIX = ".jsonl"
META_SUFFIX = ".run.json"


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def make_row(**values: Any) -> dict[str, Any]:
    """A complete row: every column present, derived columns (ratio, MiB/s, efficiency) filled."""
    unknown = set(values) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown result columns: {', '.join(sorted(unknown))}")
    row = {name: values.get(name) for name in COLUMNS}
    row["schema"] = SCHEMA_VERSION
    row["timestamp"] = row["timestamp"] or utc_now()
    raw, stored = row["raw_bytes"], row["stored_bytes"]
    if row["ratio"] is None and raw and stored is not None:
        row["ratio"] = stored / raw
    if row["efficiency"] is None and row["bound_ratio"] is not None and row["ratio"]:
        row["efficiency"] = row["bound_ratio"] / row["ratio"]
    seconds = row["seconds"]
    if row["mib_per_s"] is None and raw and seconds:
        row["mib_per_s"] = raw / MiB / seconds
    if row["error"] is not None:
        row["error"] = one_line(row["error"])
        row["valid"] = False
    if row["valid"] is None:
        row["valid"] = True
    return row


def one_line(message: Any, limit: int = 300) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_default(value: Any) -> Any:
    # numpy scalars reach rows through shapes and dtypes; store them as plain numbers.
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def dumps_row(row: dict[str, Any]) -> str:
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
    return json.dumps(clean, default=_json_default, separators=(",", ":"))


class RunFile:
    """Append-only JSONL of one run. `append` writes whole rows and flushes them to the OS, so
    they survive a killed process."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_partial_last_line(self.path)
        self._handle = open(self.path, "a", encoding="utf-8")

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        text = "".join(dumps_row(row) + "\n" for row in rows)
        if text:
            self._handle.write(text)
            self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "RunFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _drop_partial_last_line(path: Path) -> None:
    """A run killed mid-write can leave half a line; cut it so appended rows stay parseable."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as handle:
        data = handle.read()
        if data.endswith(b"\n"):
            return
        handle.truncate(data.rfind(b"\n") + 1)


def meta_path_for(run_path: str | os.PathLike) -> Path:
    run_path = Path(run_path)
    return run_path.with_name(run_path.name[: -len(RUN_SUFFIX)] + META_SUFFIX)


def write_run_metadata(run_path: str | os.PathLike, meta: dict[str, Any]) -> Path:
    path = meta_path_for(run_path)
    with atomic_output(path, "w") as handle:
        json.dump({"schema": SCHEMA_VERSION, **meta}, handle, indent=2, default=_json_default)
        handle.write("\n")
    return path


def read_run_metadata(run_path: str | os.PathLike) -> dict[str, Any]:
    path = meta_path_for(run_path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: unreadable run metadata: {exc}") from None


def _not_a_result_file(path: Path) -> ResultsError | None:
    """An error for files that are plainly not result files (run metadata, binary data)."""
    if path.name.endswith(META_SUFFIX):
        return ResultsError(f"{path} is run metadata; pass the {RUN_SUFFIX} beside it "
                            f"(or the folder)")
    return None


def _binary(path: Path) -> ResultsError:
    return ResultsError(f"{path}: not a result file (binary data); pass the {RUN_SUFFIX} "
                        f"files or their folder")


def iter_rows(path: str | os.PathLike, skipped: dict[str, int] | None = None
              ) -> Iterator[dict[str, Any]]:
    """Rows of one JSONL file. A truncated last line (killed run) is skipped and counted in
    `skipped[str(path)]` when a dict is given; a corrupt line elsewhere is an error naming the
    file and line. Run metadata and binary files are errors saying what to pass instead."""
    path = Path(path)
    problem = _not_a_result_file(path)
    if problem:
        raise problem
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if b"\0" in data[:65536]:
        raise _binary(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _binary(path) from None
    lines = text.split("\n")
    last = len(lines) - 1
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if number - 1 == last:  # no newline after it: cut off by a kill
                if skipped is not None:
                    skipped[str(path)] = skipped.get(str(path), 0) + 1
                continue
            raise ResultsError(f"{path}:{number}: not a JSON row ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ResultsError(f"{path}:{number}: not a JSON row (expected an object, "
                               f"got {type(row).__name__})")
        schema = row.get("schema")
        if schema != SCHEMA_VERSION:
            raise ResultsError(f"{path}:{number}: result schema {schema!r} is not supported "
                               f"(this mrczbench reads schema {SCHEMA_VERSION})")
        yield row


@dataclasses.dataclass
class CaseProgress:
    """What a run file holds of one case: the rounds (sample numbers) it has rows for, and
    whether one of its rows is an error (such a case is not run in later rounds)."""
    rounds: set[int] = dataclasses.field(default_factory=set)
    failed: bool = False


def case_progress(path: str | os.PathLike) -> dict[str, CaseProgress]:
    """Per case id in a run file, the rounds it finished (rows are written per case and
    round, so a round with rows is complete)."""
    path = Path(path)
    progress: dict[str, CaseProgress] = {}
    if not path.exists():
        return progress
    for row in iter_rows(path):
        entry = progress.setdefault(row["case_id"], CaseProgress())
        if row.get("sample") is not None:
            entry.rounds.add(int(row["sample"]))
        entry.failed = entry.failed or row.get("error") is not None
    return progress


def run_files(folder: str | os.PathLike) -> list[Path]:
    """Run files in `folder` (not recursive), oldest first."""
    return sorted(Path(folder).glob("*" + RUN_SUFFIX), key=lambda p: p.name)


def _collect_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(path.rglob("*" + RUN_SUFFIX)))
        elif path.is_file():
            problem = _not_a_result_file(path)
            if problem:
                raise problem
            found.append(path)
        else:
            raise ResultsError(f"{path}: no such result file or folder")
    return found


def load_results(path_or_dir: str | os.PathLike | Iterable[str | os.PathLike],
                 errors: bool = True, warn: bool = True):
    """Result rows → pandas DataFrame, one row per sample.

    Accepts a run file, a folder (searched recursively for *.jsonl) or a list of either, so
    runs from several files and machines merge into one frame. Machine columns from each run's
    metadata are added (`host`, `cpu_model`, `kernel`, `fstype`) to tell machines apart, and
    the run's `profile` and declared `figure`.
    With errors=False, error rows are left out. Cut-off last lines (a crashed or running
    run) are skipped, counted in `frame.attrs["skipped_lines"]` ({file: count}) and, with
    warn=True, reported on stderr."""
    import pandas as pd

    if isinstance(path_or_dir, (str, os.PathLike)):
        path_or_dir = [path_or_dir]
    files = _collect_files(path_or_dir)
    if not files:
        raise ResultsError(f"no result files (*{RUN_SUFFIX}) in {', '.join(map(str, path_or_dir))}")
    rows = []
    skipped: dict[str, int] = {}
    for path in files:
        meta = read_run_metadata(path) if path.name.endswith(RUN_SUFFIX) else {}
        extra = {
            **machine_capture.recorded_columns(meta),
            "profile": meta.get("profile"),
            "figure": meta.get("figure") or "",
            "source_file": str(path),
        }
        for row in iter_rows(path, skipped):
            if not errors and row.get("error"):
                continue
            rows.append({**{c: None for c in COLUMNS}, **row, **extra})
    if warn:
        for name, count in skipped.items():
            print(f"mrczbench: warning: {name}: skipped {count} cut-off line"
                  f"{'s' if count != 1 else ''} (the run crashed or is still writing)",
                  file=sys.stderr)
    if not rows:
        raise ResultsError(f"no result rows in {', '.join(map(str, files))}")
    frame = pd.DataFrame(rows)
    frame.attrs["skipped_lines"] = skipped
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce")
    return frame


# --- normalised rows and the runs they came from (what report and compare read) -------------
def canonical_params(value: Any) -> str:
    """The format config as sorted JSON, so equal configs compare equal across runs."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def normalise_rows(rows):
    """Every schema column present, numbers numeric, params canonical, `valid` a plain bool
    (false for error rows), identifiers strings, an empty label replaced by the format."""
    import pandas as pd
    rows = rows.copy()
    for column in (*COLUMNS, "figure"):
        if column not in rows.columns:
            rows[column] = None
    rows["params"] = rows["params"].map(canonical_params)
    for column in NUMERIC_COLUMNS:
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    rows["error"] = rows["error"].where(rows["error"].notna() & (rows["error"] != ""), None)
    # valid is false for error rows and non-cold "cold" samples; missing means valid
    rows["valid"] = rows["valid"].map(lambda v: v is not False and v != 0 and v != "false")
    rows.loc[rows["error"].notna(), "valid"] = False
    for column in ("suite", "figure", "run_id", "case_id", "dataset", "format", "op", "label"):
        rows[column] = rows[column].fillna("").astype(str)
    rows.loc[rows["label"] == "", "label"] = rows["format"]
    return rows


@dataclasses.dataclass
class RecordedMachine:
    """The machine the runs were measured on, as their run.json recorded it."""
    cpu: str = "unknown CPU"
    physical_cores: int | None = None
    l2_bytes: int | None = None
    l3_bytes: int | None = None
    date: str = "unknown date"

    def describe(self) -> str:
        cores = f", {self.physical_cores} physical cores" if self.physical_cores else ""
        return f"{self.cpu}{cores}"


def recorded_machine(runs: list[dict], rows) -> RecordedMachine:
    """Machine of the runs (several CPUs are all named); date = start of the last run listed,
    else the earliest row timestamp."""
    machine = RecordedMachine()
    cpus: list[str] = []
    for run in runs:
        cpu = machine_capture.recorded_cpu_model(run)
        if cpu and str(cpu) not in cpus:
            cpus.append(str(cpu))
        machine.physical_cores = machine_capture.recorded_physical_cores(run) or machine.physical_cores
        machine.l2_bytes = machine_capture.recorded_cache_bytes(run, "L2") or machine.l2_bytes
        machine.l3_bytes = machine_capture.recorded_cache_bytes(run, "L3") or machine.l3_bytes
        if run.get("started"):
            machine.date = str(run["started"])[:10]
    if cpus:
        machine.cpu = " / ".join(cpus)
    if machine.date == "unknown date":
        stamps = rows["timestamp"].dropna().astype(str)
        if len(stamps):
            machine.date = stamps.min()[:10]
    return machine


@dataclasses.dataclass
class LoadedResults:
    rows: Any                      # pandas DataFrame of normalise_rows, all rows as loaded
    runs: list[dict]               # the run.json contents (may be empty dicts)
    machine: RecordedMachine
    suites: list[str]
    skipped_lines: dict = dataclasses.field(default_factory=dict)  # file -> cut-off lines skipped


def load_result_files(paths: Iterable[str | os.PathLike]) -> LoadedResults:
    """load_results over files/folders, normalised, with the run metadata of every file read."""
    loaded = load_results(list(paths))
    skipped = dict(loaded.attrs.get("skipped_lines") or {})
    rows = normalise_rows(loaded)
    runs = [read_run_metadata(path) for path in rows["source_file"].dropna().unique()
            if str(path).endswith(RUN_SUFFIX)]
    suites = sorted(s for s in rows["suite"].unique() if s) or ["unknown"]
    return LoadedResults(rows=rows, runs=runs, machine=recorded_machine(runs, rows),
                         suites=suites, skipped_lines=skipped)
