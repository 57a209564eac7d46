"""Result rows as analysis reads them: normalised (numbers numeric, params canonical), with
the runs they came from and the machine those runs recorded (what report and compare read).
Reading and writing the run files themselves is mrczbench.store's."""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Iterable

from mrczbench import store
from mrczbench.store import COLUMNS, NUMERIC_COLUMNS, RUN_SUFFIX, load_results, read_run_metadata


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
        cpu = store.recorded_cpu_model(run)
        if cpu and str(cpu) not in cpus:
            cpus.append(str(cpu))
        machine.physical_cores = store.recorded_physical_cores(run) or machine.physical_cores
        machine.l2_bytes = store.recorded_cache_bytes(run, "L2") or machine.l2_bytes
        machine.l3_bytes = store.recorded_cache_bytes(run, "L3") or machine.l3_bytes
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
