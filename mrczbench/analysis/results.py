"""Result rows (schema version 1, see docs/DESIGN.md), the JSONL store and `load_results`.

A run is two files in `results/<suite>/` (or the run's --out folder):
- `<run-id>.jsonl`: one JSON object per sample, appended and flushed as cases finish, so a
  killed run loses at most the case in flight;
- `<run-id>.run.json`: run metadata (machine, versions, git commit, eviction, command line).
Run ids start with a UTC timestamp, so sorting them sorts runs by start time.
"""
from __future__ import annotations

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

SCHEMA_VERSION = 1
MIB = 2 ** 20  # the paper's "MB"

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
        row["mib_per_s"] = raw / MIB / seconds
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


def finished_case_ids(path: str | os.PathLike) -> set[str]:
    """Case ids with rows in a run file: those cases were completed (rows are written per case)."""
    path = Path(path)
    if not path.exists():
        return set()
    return {row["case_id"] for row in iter_rows(path)}


def run_files(folder: str | os.PathLike) -> list[Path]:
    """Run files in `folder` (not recursive), oldest first."""
    return sorted(Path(folder).glob("*" + RUN_SUFFIX), key=lambda p: p.name)


def latest_run(folder: str | os.PathLike) -> Path | None:
    files = run_files(folder) if Path(folder).is_dir() else []
    return files[-1] if files else None


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
    metadata are added (`host`, `cpu_model`, `kernel`, `fstype`) to tell machines apart.
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
        machine = meta.get("machine", {})
        extra = {
            "host": machine.get("hostname"),
            "cpu_model": machine.get("cpu_model"),
            "kernel": machine.get("kernel"),
            "fstype": (machine.get("filesystem") or {}).get("fstype"),
            "profile": meta.get("profile"),
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
