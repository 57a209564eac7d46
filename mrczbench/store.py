"""The results store: result rows (schema version 1, see docs/DESIGN.md), the run files that
hold them, their run.json, and `load_results`. The harness (bench/) writes it, analysis/ and
fuzz/ read it; it imports neither.

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
from mrczbench.errors import ResultsError
from mrczbench.jsonl import CUT_OFF, AppendLog, BadLine, json_problem, parse_lines
from mrczbench.units import MiB, parse_size

SCHEMA_VERSION = 1

OPS = ("encode", "decode", "write", "write_fsync", "read_cold", "read_warm", "alloc")

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
    # added with sampling to a precision (rows written before lack them: None)
    "profile",           # the run's profile (full, quick, reference): in every row, so a
                         # row never passes for a full-profile one without its run.json
    "precision_target",  # the series' target: relative half-width of its median's 95 %
                         # interval (0 = a fixed budget of samples: quick, --repeats)
    "budget_s",          # seconds of rounds a case may spend before it stops short of the target
    "cpu_seconds",       # process CPU time of the sample (per call, like seconds)
    "round_s",           # wall seconds of the case's round that gave this row
    "output",            # decode: "reused" (one pre-faulted output) or "fresh" (new memory)
)

# Columns that describe a case (everything but the timing of one sample). `figure` is not a
# row column: load_results adds it from run.json, the suite's declared figure ("Fig. 2a",
# "Table 1", "Fig. 3", or ""), which decides where the report shows the case.
CASE_COLUMNS = ("suite", "figure", "dataset", "dataset_kind", "dose", "frames", "ny", "nx",
                "dtype", "format", "codec", "level", "blocksize", "threads", "filter", "params",
                "label")
NUMERIC_COLUMNS = ("dose", "frames", "ny", "nx", "level", "blocksize", "threads", "raw_bytes",
                   "stored_bytes", "ratio", "bound_ratio", "efficiency", "seconds", "mib_per_s",
                   "loops", "residency", "case_index", "precision_target", "budget_s",
                   "cpu_seconds", "round_s")

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


class RunFile(AppendLog):
    """Append-only JSONL of one run (mrczbench.jsonl): `append` writes whole rows and fsyncs
    them, so they survive a killed process; a row cut off by a kill is cut before appending."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(path, dumps=dumps_row)


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
    except (OSError, ValueError, RecursionError) as exc:
        raise ResultsError(f"{path}: unreadable run metadata: {json_problem(exc)}") from None


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
    try:
        for number, row in parse_lines(text):
            if row is CUT_OFF:
                if skipped is not None:
                    skipped[str(path)] = skipped.get(str(path), 0) + 1
                continue
            _check_row(path, number, row)
            yield row
    except BadLine as exc:
        raise ResultsError(f"{path}:{exc.number}: not a JSON row ({exc.reason})") from None


def _check_row(path: Path, number: int, row: Any) -> None:
    if not isinstance(row, dict):
        raise ResultsError(f"{path}:{number}: not a JSON row (expected an object, "
                           f"got {type(row).__name__})")
    schema = row.get("schema")
    if schema != SCHEMA_VERSION:
        raise ResultsError(f"{path}:{number}: result schema {schema!r} is not supported "
                           f"(this mrczbench reads schema {SCHEMA_VERSION})")
    problem = _key_problem(row)
    if problem:
        raise ResultsError(f"{path}:{number}: not a result row: {problem}")


def _key_problem(row: dict[str, Any]) -> str | None:
    """What is wrong with the keys every reader of rows relies on (resume, report, compare)."""
    if not isinstance(row.get("case_id"), str):
        return f"case_id must be a string, got {type(row.get('case_id')).__name__}"
    if "op" not in row:
        return "no op column"
    if row["op"] is not None and not isinstance(row["op"], str):
        return f"op must be a string or null, got {type(row['op']).__name__}"
    sample = row.get("sample")
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int) or sample < 0):
        return f"sample must be a whole number >= 0 or null, got {sample!r:.40}"
    return None


@dataclasses.dataclass
class CaseProgress:
    """What a run file holds of one case: the rounds (sample numbers) it has rows for,
    whether one of its rows is an error (such a case is not run in later rounds), the valid
    seconds per op and the wall seconds its rounds took (what the stopping rule reads)."""
    rounds: set[int] = dataclasses.field(default_factory=set)
    failed: bool = False
    samples: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    spent_s: float = 0.0

    def add(self, rows: Iterable[dict[str, Any]], seconds: float | None = None) -> None:
        """Rows of one or more rounds; `seconds`: the round's wall time (else the rows'
        round_s, once per round)."""
        timed_rounds = set()
        for row in rows:
            if row.get("sample") is not None:
                self.rounds.add(int(row["sample"]))
            self.failed = self.failed or row.get("error") is not None
            if row.get("error") is None and row.get("valid", True) and row.get("seconds") is not None:
                self.samples.setdefault(row["op"], []).append(float(row["seconds"]))
            if seconds is None and row.get("round_s") is not None and row.get("sample") is not None \
                    and row["sample"] not in timed_rounds:
                timed_rounds.add(row["sample"])
                self.spent_s += float(row["round_s"])
        if seconds is not None:
            self.spent_s += seconds


def case_progress(path: str | os.PathLike) -> dict[str, CaseProgress]:
    """Per case id in a run file, the rounds it finished (rows are written per case and
    round, so a round with rows is complete)."""
    path = Path(path)
    progress: dict[str, CaseProgress] = {}
    if not path.exists():
        return progress
    by_case: dict[str, list[dict[str, Any]]] = {}
    for row in iter_rows(path):
        by_case.setdefault(row["case_id"], []).append(row)
    for case_id, rows in by_case.items():
        progress.setdefault(case_id, CaseProgress()).add(rows)
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
            **recorded_columns(meta),
            "figure": meta.get("figure") or "",
            "source_file": str(path),
        }
        for row in iter_rows(path, skipped):
            if not errors and row.get("error"):
                continue
            # the row's own profile first (26.5d); rows from before it take run.json's
            rows.append({**{c: None for c in COLUMNS}, **row, **extra,
                         "profile": row.get("profile") or meta.get("profile")})
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


# --- reading the machine capture back from run.json ---------------------------------------------------
# A run's `<run-id>.run.json` holds capture() under "machine"; these read it by the keys
# capture() writes (runs recorded before a key existed give None for it).

def recorded(run_meta: dict[str, Any]) -> dict[str, Any]:
    """The machine capture of a run.json (an empty dict when it has none)."""
    machine = run_meta.get("machine") if isinstance(run_meta, dict) else None
    return machine if isinstance(machine, dict) else {}


def recorded_cpu_model(run_meta: dict[str, Any]) -> str | None:
    return recorded(run_meta).get("cpu_model") or None


def recorded_physical_cores(run_meta: dict[str, Any]) -> int | None:
    cores = recorded(run_meta).get("physical_cores")
    return int(cores) if isinstance(cores, (int, float)) and not isinstance(cores, bool) and cores > 0 else None


def recorded_cache_bytes(run_meta: dict[str, Any], level: str) -> int | None:
    """Size in bytes of cache `level` ('L2', 'L3', 'L1d') as cache_sizes() recorded it."""
    sizes = recorded(run_meta).get("cache_sizes")
    return parse_size(sizes.get(level)) if isinstance(sizes, dict) else None


def recorded_columns(run_meta: dict[str, Any]) -> dict[str, Any]:
    """The machine columns load_results adds to every row of a run, to tell machines
    apart: host, cpu_model, kernel, fstype."""
    machine = recorded(run_meta)
    filesystem = machine.get("filesystem")
    return {"host": machine.get("hostname"), "cpu_model": machine.get("cpu_model"),
            "kernel": machine.get("kernel"),
            "fstype": filesystem.get("fstype") if isinstance(filesystem, dict) else None}


# --- run.json vocabulary the harness writes and compare reads -------------------------------
BUSY_LOAD_PER_CORE = 0.75  # load average above this x usable cores: the machine is busy
# (a 1-minute average still carries the previous run of a batch of suites: keep below 1 core)

# How samples are taken (run.json timing.sampling): "rounds" (round r times every case once,
# as sample r: Plan.round_cases); runs recorded without it took all samples of a case at once.
SAMPLING = "rounds"
CASE_BY_CASE = "case by case"
