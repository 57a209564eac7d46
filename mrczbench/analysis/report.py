"""`mrczbench report`: the MRCZ paper's figures and Table 1 from result files.

Reads only result files (JSONL rows, schema v1 in docs/DESIGN.md, plus the `<run-id>.run.json`
beside each), summarises the raw samples per case and operation (median, p10-p90, min) and
writes PNG + SVG figures, Markdown + CSV tables and one self-contained `index.html`.

Conventions (docs/DESIGN.md, the MRCZ paper): ratio = stored/raw (0.37 = 37 % of the original),
MB = MiB = 2^20 bytes, speeds in MiB/s of raw data, link speeds in Gbit/s = 10^9 bit/s.
A series is "unstable" when its p10-p90 spread exceeds 10 % of its median (as pyperf warns).
Cold samples marked `valid == false` are excluded and counted; error rows are listed.

Heavy imports (pandas, matplotlib) happen inside functions so `mrczbench --help` stays fast.
"""
from __future__ import annotations

import argparse
import base64
import dataclasses
import html
import io
import json
import math
import re
from pathlib import Path
from typing import Any

from mrczbench.atomic import atomic_output

MIB = 2**20
UNSTABLE_SPREAD = 0.10          # p10-p90 spread / median above which a series is flagged
GBIT_IN_MIB_PER_S = 1e9 / 8 / MIB  # 1 Gbit/s (network, 10^9 bit) in MiB/s
LINK_RANGE_GBIT = (0.1, 10.0)
MIN_SWEEP_POINTS = 3            # a sweep figure needs a series with at least this many x values
MAX_LINK_SERIES = 8             # more contenders than this: the link figure shows the Pareto front

# Columns of schema v1 that describe a case (everything but the timing of one sample).
CASE_COLUMNS = ["suite", "dataset", "dataset_kind", "dose", "frames", "ny", "nx", "dtype",
                "format", "codec", "level", "blocksize", "threads", "filter", "params", "label"]
SCHEMA_COLUMNS = ["schema", "run_id", "suite", "case_id", "sample", *CASE_COLUMNS[1:],
                  "raw_bytes", "stored_bytes", "ratio", "bound_ratio", "efficiency", "op",
                  "seconds", "mib_per_s", "loops", "residency", "valid", "lossless", "error",
                  "eviction", "timestamp"]
METADATA_SUITES = {"metadata"}
FIG3_OPS = ("encode", "decode", "write", "read", "read_cold")

# --- the paper's Table 1 -----------------------------------------------------------------------
PAPER_CITATION = (
    "McLeod R.A., Diogo Righetto R., Stewart A., Stahlberg H. (2018). MRCZ - A file format for "
    "cryo-TEM data with fast compression. J. Struct. Biol., doi:10.1016/j.jsb.2017.11.012. "
    "Table 1: 60 x 3838 x 3710 int8 stack (854 MB), 48 threads on 2 x 12-core Xeon E5-2680 v3, "
    "RAID0 disk ~300 MB/s, caches dropped between operations, averages of 20 read/writes; "
    "pigz, lbzip2 and pxz times include a read and a write.")
# (paper contender, family, codec, level, size MB (2^20), ratio stored/raw, write s, read s)
PAPER_TABLE1 = [
    ("None/int8", "uncompressed", None, None, 854, 1.00, 3.40, 3.21),
    ("uint4", "uint4", None, None, 427, 0.50, 2.14, 6.05),
    ("blosc-lz4/int8/9", "blosc", "lz4", 9, 340, 0.40, 0.50, 0.96),
    ("blosc-zstd/int8/1", "blosc", "zstd", 1, 320, 0.37, 0.76, 1.10),
    ("blosc-zstd/int8/5", "blosc", "zstd", 5, 319, 0.37, 0.86, 1.09),
    ("JPEG2000/uint8", "jpeg2000", None, None, 317, 0.37, 106.8, None),
    ("pigz/int8/1", "gzip", None, 1, 367, 0.43, 0.86, 4.74),
    ("lbzip2/int8/9", "bzip2", None, 9, 314, 0.37, 3.17, 2.23),
    ("pxz/int8/6", "xz", None, 6, 305, 0.36, 47.5, 31.8),
]


# =============================================================================================
# Loading
# =============================================================================================
@dataclasses.dataclass
class Machine:
    """What every figure names: the machine, the date and the suite."""
    cpu: str = "unknown CPU"
    physical_cores: int | None = None
    l2_bytes: int | None = None
    l3_bytes: int | None = None
    date: str = "unknown date"

    def describe(self) -> str:
        cores = f", {self.physical_cores} physical cores" if self.physical_cores else ""
        return f"{self.cpu}{cores}"


@dataclasses.dataclass
class Results:
    rows: Any                      # pandas DataFrame, all rows as loaded
    runs: list[dict]               # the run.json contents (may be empty dicts)
    machine: Machine
    suites: list[str]
    skipped_lines: dict = dataclasses.field(default_factory=dict)  # file -> cut-off lines skipped

    @property
    def footer(self) -> str:
        return self.footer_for(self.suites)

    def footer_for(self, suites) -> str:
        """Machine, date and the suites a figure's data came from."""
        names = sorted({str(s) for s in suites if s}) or self.suites
        return f"{self.machine.describe()} · {self.machine.date} · suite {', '.join(names)}"


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
    """Every schema column present, params canonical, `valid` a plain bool."""
    import pandas as pd
    rows = rows.copy()
    for column in SCHEMA_COLUMNS:
        if column not in rows.columns:
            rows[column] = None
    rows["params"] = rows["params"].map(canonical_params)
    for column in ("dose", "frames", "ny", "nx", "level", "blocksize", "threads", "raw_bytes",
                   "stored_bytes", "ratio", "bound_ratio", "efficiency", "seconds", "mib_per_s",
                   "loops", "residency"):
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    rows["error"] = rows["error"].where(rows["error"].notna() & (rows["error"] != ""), None)
    # valid is false for error rows and non-cold "cold" samples; missing means valid
    rows["valid"] = rows["valid"].map(lambda v: v is not False and v != 0 and v != "false")
    rows.loc[rows["error"].notna(), "valid"] = False
    for column in ("suite", "run_id", "case_id", "dataset", "format", "op", "label"):
        rows[column] = rows[column].fillna("").astype(str)
    rows.loc[rows["label"] == "", "label"] = rows["format"]
    return rows


def load_result_files(paths: list[str | Path]) -> Results:
    """Load result files/folders (results.load_results) into one normalised DataFrame, with
    the run metadata of every file read."""
    from mrczbench.analysis.results import RUN_SUFFIX, load_results, read_run_metadata
    loaded = load_results(list(paths))
    skipped = dict(loaded.attrs.get("skipped_lines") or {})
    rows = normalise_rows(loaded)
    runs = [read_run_metadata(path) for path in rows["source_file"].dropna().unique()
            if str(path).endswith(RUN_SUFFIX)]
    suites = sorted(s for s in rows["suite"].unique() if s) or ["unknown"]
    return Results(rows=rows, runs=runs, machine=machine_from_runs(runs, rows), suites=suites,
                   skipped_lines=skipped)


# --- machine description from run.json (its exact layout belongs to machine.py) -------------
def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{str(key).lower()}."))
    else:
        flat[prefix.rstrip(".")] = value
    return flat


def _find(flat: dict[str, Any], *names: str) -> Any:
    for name in names:
        for key, value in flat.items():
            if key.rsplit(".", 1)[-1] == name and value not in (None, "", [], 0):
                return value
    return None


def parse_bytes(value: Any) -> int | None:
    """Cache sizes as bytes: ints are bytes; strings like '256 KiB', '30M', '1 MiB (2 instances)'."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    match = re.match(r"\s*([\d.]+)\s*([KMG]?)i?B?", str(value), re.IGNORECASE)
    if not match:
        return None
    scale = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[match.group(2).upper()]
    return int(float(match.group(1)) * scale)


def machine_from_runs(runs: list[dict], rows) -> Machine:
    machine = Machine()
    cpus: list[str] = []
    for run in runs:
        flat = _flatten(run)
        cpu = _find(flat, "cpu_model", "model_name", "cpu_brand", "brand", "processor", "cpu")
        if cpu and str(cpu) not in cpus:
            cpus.append(str(cpu))
        cores = _find(flat, "physical_cores", "cores_physical", "cpu_count_physical", "cores")
        machine.physical_cores = int(cores) if cores else machine.physical_cores
        machine.l2_bytes = parse_bytes(_find(flat, "l2_bytes", "l2_cache_bytes", "l2_cache",
                                             "l2_cache_size", "l2")) or machine.l2_bytes
        machine.l3_bytes = parse_bytes(_find(flat, "l3_bytes", "l3_cache_bytes", "l3_cache",
                                             "l3_cache_size", "l3")) or machine.l3_bytes
        date = _find(flat, "started", "start_time", "started_at", "date", "timestamp")
        if date:
            machine.date = str(date)[:10]
    if cpus:
        machine.cpu = " / ".join(cpus)  # runs from several machines: name them all
    if machine.date == "unknown date":
        stamps = rows["timestamp"].dropna().astype(str)
        if len(stamps):
            machine.date = stamps.min()[:10]
    return machine


# =============================================================================================
# Summaries
# =============================================================================================
def summarise(rows):
    """One row per (run, case, op): sample statistics of the valid, error-free samples.

    Columns: the case columns, n, invalid (excluded cold samples), median_s, p10_s, p90_s,
    min_s, spread (p10-p90 / median), unstable, mib_per_s (raw MiB / median s), ratio,
    bound_ratio, raw_bytes, stored_bytes."""
    import pandas as pd
    keys = ["run_id", "case_id", "op"]  # a case id is unique within its run
    timed = rows[rows["error"].isna()]
    invalid = timed[~timed["valid"]].groupby(keys).size().rename("invalid")
    valid = timed[timed["valid"] & timed["seconds"].notna()]
    if valid.empty:
        return pd.DataFrame(columns=[*keys, *CASE_COLUMNS, "n", "invalid", "median_s", "p10_s",
                                     "p90_s", "min_s", "spread", "unstable", "mib_per_s", "ratio",
                                     "bound_ratio", "raw_bytes", "stored_bytes"])
    grouped = valid.groupby(keys, sort=False)
    stats = grouped[CASE_COLUMNS].first()
    seconds = grouped["seconds"]
    stats["n"] = seconds.count()
    stats["median_s"] = seconds.median()
    stats["p10_s"] = seconds.quantile(0.10)
    stats["p90_s"] = seconds.quantile(0.90)
    stats["min_s"] = seconds.min()
    for column in ("ratio", "bound_ratio", "raw_bytes", "stored_bytes"):
        stats[column] = grouped[column].median()
    stats = stats.join(invalid, how="left")
    stats["invalid"] = stats["invalid"].fillna(0).astype(int)
    stats["spread"] = (stats["p90_s"] - stats["p10_s"]) / stats["median_s"]
    stats["unstable"] = (stats["n"] >= 2) & (stats["spread"] > UNSTABLE_SPREAD)
    stats["mib_per_s"] = stats["raw_bytes"] / MIB / stats["median_s"]
    return stats.reset_index()


def case_table(stats):
    """One row per (run, case): the case columns, ratio, and per op `<op>_s`, `<op>_mibs`,
    `<op>_unstable`."""
    import pandas as pd
    if stats.empty:
        return pd.DataFrame(columns=["run_id", "case_id", *CASE_COLUMNS, "ratio", "bound_ratio"])
    keys = ["run_id", "case_id"]
    grouped = stats.groupby(keys, sort=False)
    cases = grouped[CASE_COLUMNS].first()
    # in-memory and on-disk sizes differ by the file header: one size per case, the median
    for column in ("raw_bytes", "stored_bytes", "ratio", "bound_ratio"):
        cases[column] = grouped[column].median()
    for op, part in stats.groupby("op"):
        part = part.set_index(keys)
        cases[f"{op}_s"] = part["median_s"]
        cases[f"{op}_mibs"] = part["mib_per_s"]
        cases[f"{op}_lo_mibs"] = part["raw_bytes"] / MIB / part["p90_s"]
        cases[f"{op}_hi_mibs"] = part["raw_bytes"] / MIB / part["p10_s"]
        cases[f"{op}_unstable"] = part["unstable"].astype(bool)
    return cases.reset_index()


def _first_op(cases, *ops: str) -> str | None:
    """Of `ops`, the one timed for the most cases, the earlier on a tie (e.g. encode, else
    write: a table of file formats without in-memory codecs still gets a speed axis)."""
    counts = [(cases[f"{op}_mibs"].notna().sum() if f"{op}_mibs" in cases.columns else 0, -i, op)
              for i, op in enumerate(ops)]
    count, _, op = max(counts)
    return op if count else None


def _params(value: str) -> dict:
    try:
        params = json.loads(value) if value else {}
    except ValueError:
        return {}
    return params if isinstance(params, dict) else {}


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def series_names(cases, swept: str):
    """A readable name per case for a sweep over `swept`: format, codec and the parameters that
    vary between cases (other than `swept`), plus dataset and run when several are shown."""
    params = cases["params"].map(_params)
    keys = sorted({key for p in params for key in p} - {"format", "codec", swept})
    varying = [key for key in keys if len({_fmt(p.get(key)) for p in params}) > 1]
    context = [column for column in ("dataset", "run_id")
               if column != swept and swept != "dose" and cases[column].nunique() > 1]

    def name(index) -> str:
        row, p = cases.loc[index], params.loc[index]
        parts = [row["format"]]
        codec = p.get("codec", row["codec"])
        if codec is not None and str(codec) not in ("", "nan", "None"):
            parts.append(str(codec))
        parts += [f"{key}={_fmt(p.get(key))}" for key in varying]
        parts += [f"{column}={row[column]}" for column in context]
        return " ".join(parts)

    import pandas as pd
    return pd.Series([name(i) for i in cases.index], index=cases.index, dtype=object)


def is_metadata(cases):
    return cases["suite"].isin(METADATA_SUITES) | (cases["dataset_kind"] == "metadata")


def main_dataset(cases) -> str:
    """The dataset the scatter and link figures use: most cases, then dose nearest 1 e/px/frame."""
    counts = cases.groupby("dataset").agg(n=("case_id", "size"), dose=("dose", "first"))
    counts["distance"] = counts["dose"].fillna(1.0).clip(lower=1e-6).map(math.log).abs()
    return counts.sort_values(["n", "distance"], ascending=[False, True]).index[0]


def pareto_front(speed, ratio) -> list[int]:
    """Positions of the points no other point beats on both speed (higher) and ratio (lower),
    ordered by speed."""
    order = sorted(range(len(speed)), key=lambda i: (-speed[i], ratio[i]))
    front, best_ratio = [], math.inf
    for i in order:
        if ratio[i] < best_ratio:
            front.append(i)
            best_ratio = ratio[i]
    return sorted(front, key=lambda i: speed[i])


def link_throughput(encode_mibs: float, decode_mibs: float, ratio: float, link_mibs):
    """Raw MiB/s moved when compress, transfer of ratio x the data, and decompress run one after
    the other (no overlap: the pessimistic case)."""
    return 1.0 / (1.0 / encode_mibs + ratio / link_mibs + 1.0 / decode_mibs)


def break_even_gbit(encode_mibs: float, decode_mibs: float, ratio: float) -> float:
    """Link speed below which compressing pays: 1/enc + r/L + 1/dec < 1/L."""
    if ratio >= 1.0:
        return 0.0
    return (1.0 - ratio) / (1.0 / encode_mibs + 1.0 / decode_mibs) / GBIT_IN_MIB_PER_S


# =============================================================================================
# Figures (each returns a matplotlib Figure, or None when the data does not support it)
# =============================================================================================
UNSTABLE_LABEL = "unstable (p10–p90 > 10 % of median)"


def _figure(results: Results, title: str, cases, ncols: int = 1, width: float = 6.0):
    """A figure titled with `title` and, below it, the machine, date and suites of `cases`."""
    from matplotlib.figure import Figure
    figure = Figure(figsize=(width * ncols + 3.0, 4.8), layout="constrained", dpi=100)
    axes = figure.subplots(1, ncols, squeeze=False)[0]
    figure.suptitle(f"{title}\n{results.footer_for(cases['suite'].unique())}", fontsize=10)
    return figure, list(axes)


def _legend(ax) -> None:
    """One legend right of `ax`, outside the data, gathering the entries of every panel."""
    entries: dict[str, Any] = {}
    for panel in ax.figure.axes:
        for handle, label in zip(*panel.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if UNSTABLE_LABEL in entries:  # the flag explains the red rings: list it last
        entries[UNSTABLE_LABEL] = entries.pop(UNSTABLE_LABEL)
    if entries:
        ax.legend(entries.values(), entries.keys(), loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  fontsize=8, frameon=False)


def _plot_series(ax, x, y, label, unstable=None, lo=None, hi=None, **style):
    """One data series (gid 'series'); p10-p90 band when given; unstable points ringed in red
    (_legend keeps one legend entry for all rings)."""
    style = {"marker": "o", "markersize": 4, **style}
    line, = ax.plot(x, y, label=label, **style)
    line.set_gid("series")
    if lo is not None and hi is not None:
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
    if unstable is not None and any(unstable):
        xs = [a for a, bad in zip(x, unstable) if bad]
        ys = [b for b, bad in zip(y, unstable) if bad]
        ring = ax.scatter(xs, ys, s=110, facecolors="none", edgecolors="red", linewidths=1.2,
                          label=UNSTABLE_LABEL, zorder=5)
        ring.set_gid("unstable")
    return line


def _sweep_cases(cases, column: str):
    """Movie cases (not metadata) in series where `column` takes MIN_SWEEP_POINTS values or more."""
    import pandas as pd
    cases = cases[~is_metadata(cases) & cases[column].notna()]
    if column == "blocksize":
        cases = cases[cases["blocksize"] > 0]  # 0 = automatic, not a point on the axis
    if cases.empty:
        return cases
    # A series never mixes suites or kinds of data: the detectors suite's doses (one per
    # detector model) are not a dose sweep, and must not join the Poisson dose sweep's lines.
    origin = cases["suite"].astype(str) + "/" + cases["dataset_kind"].astype(str) + "/" + cases["dtype"].astype(str)
    cases = cases.assign(origin=origin)
    # a dose sweep changes the dataset, not the contender: its series are the contenders;
    # other sweeps name what varies within their own suite
    if column == "dose":
        names = cases["label"]
    else:
        names = pd.concat([series_names(part, column) for _, part in cases.groupby("origin")])
    cases = cases.assign(series=names)
    counts = cases.groupby(["origin", "series"])[column].nunique()
    swept = counts[counts >= MIN_SWEEP_POINTS].index
    cases = cases[cases.set_index(["origin", "series"]).index.isin(swept)]
    if cases["origin"].nunique() > 1:  # name where each series came from
        cases = cases.assign(series=cases["series"] + " [" + cases["origin"] + "]")
    return cases


def figure_dose(results: Results, cases):
    """Fig. 2a: ratio vs dose per contender, with the Shannon bound."""
    cases = _sweep_cases(cases, "dose")
    if cases.empty:
        return None
    figure, (ax,) = _figure(results, "Fig. 2a — compression ratio vs dose", cases)
    for name, part in cases.groupby("series", sort=True):
        part = part.groupby("dose")["ratio"].median()
        _plot_series(ax, part.index.to_numpy(), part.to_numpy(), name)
    bound = cases.groupby("dose")["bound_ratio"].median().dropna()
    if len(bound):
        line, = ax.plot(bound.index, bound.to_numpy(), color="black", linestyle="--",
                        linewidth=1.5, label="Shannon bound (i.i.d. entropy)")
        line.set_gid("reference")
    ax.set_xscale("log")
    ax.set_xlabel("dose (e⁻/px/frame)")
    ax.set_ylabel("compression ratio (stored/raw, lower is better)")
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax)
    return figure


def _speed_panel(ax, cases, x_column: str, op: str) -> None:
    for name, part in cases.groupby("series", sort=True):
        part = part.groupby(x_column).agg(
            mibs=(f"{op}_mibs", "median"), lo=(f"{op}_lo_mibs", "median"),
            hi=(f"{op}_hi_mibs", "median"), unstable=(f"{op}_unstable", "any")).dropna(
                subset=["mibs"])
        if len(part):
            _plot_series(ax, part.index.to_numpy(), part["mibs"].to_numpy(), name,
                         unstable=part["unstable"].astype(bool).tolist(),
                         lo=part["lo"].to_numpy(), hi=part["hi"].to_numpy())


def _ratio_and_speed_figure(results: Results, title: str, cases, x_column: str):
    """Ratio per series vs `x_column` in the left panel and, when the cases have one, the
    compression (or write) speed in the right panel (Fig. 2b and 2d share this layout)."""
    op = _first_op(cases, "encode", "write")
    figure, axes = _figure(results, title, cases, ncols=2 if op else 1, width=4.8)
    for name, part in cases.groupby("series", sort=True):
        part = part.groupby(x_column)["ratio"].median()
        _plot_series(axes[0], part.index.to_numpy(), part.to_numpy(), name)
    axes[0].set_ylabel("compression ratio (stored/raw)")
    if op:
        _speed_panel(axes[1], cases, x_column, op)
        axes[1].set_ylabel(f"{'compression' if op == 'encode' else 'write'} speed (MiB/s raw)")
    return figure, axes, op


def figure_level(results: Results, cases):
    """Fig. 2b: ratio vs compression level (and the compression speed it costs)."""
    cases = _sweep_cases(cases, "level")
    if cases.empty:
        return None
    figure, axes, op = _ratio_and_speed_figure(
        results, "Fig. 2b — compression ratio and speed vs level", cases, "level")
    if op:
        axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("compression level (codec effort, 1 = fastest)")
        ax.grid(True, which="both", alpha=0.3)
    _legend(axes[-1])
    return figure


def figure_threads(results: Results, cases):
    """Fig. 2c: MiB/s vs threads, compress and decompress, physical cores marked."""
    cases = _sweep_cases(cases, "threads")
    ops = [op for op in (_first_op(cases, "encode", "write"), _first_op(cases, "decode", "read_warm"))
           if op]
    if cases.empty or not ops:
        return None
    figure, axes = _figure(results, "Fig. 2c — throughput vs threads", cases, ncols=len(ops), width=4.8)
    names = {"encode": "compression", "decode": "decompression", "write": "write",
             "read_warm": "read (warm)"}
    for ax, op in zip(axes, ops):
        _speed_panel(ax, cases, "threads", op)
        cores = results.machine.physical_cores
        if cores:
            mark = ax.axvline(cores, color="black", linestyle="--", linewidth=1,
                              label=f"{cores} physical cores")
            mark.set_gid("reference")
            ax.axvspan(cores, max(cores, cases["threads"].max()) + 0.5, color="grey", alpha=0.1)
        ax.set_xlabel("threads (count)")
        ax.set_ylabel(f"{names[op]} speed (MiB/s raw)")
        ax.set_title(names[op], fontsize=9)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, alpha=0.3)
    _legend(axes[-1])
    return figure


def figure_blocksize(results: Results, cases):
    """Fig. 2d: ratio and compression speed vs blocksize, L2/L3 cache sizes marked."""
    from matplotlib.ticker import FuncFormatter
    cases = _sweep_cases(cases, "blocksize")
    if cases.empty:
        return None
    cases = cases.assign(blocksize_kib=cases["blocksize"] / 1024)
    figure, axes, _ = _ratio_and_speed_figure(
        results, "Fig. 2d — compression ratio and speed vs blocksize", cases, "blocksize_kib")
    for ax in axes:
        for size, name, style in ((results.machine.l2_bytes, "L2", "--"),
                                  (results.machine.l3_bytes, "L3", ":")):
            if size:
                mark = ax.axvline(size / 1024, color="black", linestyle=style, linewidth=1,
                                  label=f"{name} cache {size / 1024:g} KiB")
                mark.set_gid("reference")
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.set_xlabel("blosc blocksize (KiB)")
        ax.grid(True, which="both", alpha=0.3)
    _legend(axes[-1])
    return figure


def figure_metadata(results: Results, cases):
    """Fig. 3: metadata serialisation, time per operation and size on disk per method."""
    import numpy as np
    from matplotlib.patches import Patch
    cases = cases[is_metadata(cases)]
    # the paper's Fig. 3 shows write and read; serialise-only times (encode/decode) beside them
    # tell the format's cost from the disk's. The other ops are in the tables.
    ops = [op for op in FIG3_OPS if f"{op}_s" in cases.columns and cases[f"{op}_s"].notna().any()]
    if cases.empty or not ops:
        return None
    by_method = cases.groupby("label", sort=True)
    methods = list(by_method.groups)
    figure, (ax_time, ax_size) = _figure(results, "Fig. 3 — metadata serialisation", cases, ncols=2,
                                         width=max(4.0, 0.6 * len(methods)))
    x = np.arange(len(methods))
    width = 0.8 / len(ops)
    handles = []
    any_unstable = False
    for i, op in enumerate(ops):
        seconds = by_method[f"{op}_s"].median().reindex(methods).to_numpy() * 1000
        unstable = by_method[f"{op}_unstable"].any().reindex(methods).fillna(False).to_numpy()
        bars = ax_time.bar(x + (i - (len(ops) - 1) / 2) * width, seconds, width, label=op)
        handles.append(Patch(facecolor=bars.patches[0].get_facecolor(), label=op))
        for bar, bad in zip(bars, unstable):
            if bad:
                bar.set_hatch("///")
                bar.set_edgecolor("red")
                any_unstable = True
    if any_unstable:
        handles.append(Patch(facecolor="white", edgecolor="red", hatch="///", label=UNSTABLE_LABEL))
    sizes = by_method["stored_bytes"].median().reindex(methods).to_numpy() / MIB
    ax_size.bar(x, sizes, 0.6, color="tab:grey")
    ax_time.set_ylabel("time per operation (ms)")
    ax_size.set_ylabel("size on disk (MiB)")
    for ax in (ax_time, ax_size):
        ax.set_xticks(x, methods, rotation=35, ha="right", fontsize=8)
        ax.set_xlabel("serialisation method (+ compression)")
        ax.grid(True, axis="y", alpha=0.3)
    # explicit handles: a container's own handle would copy its first bar's unstable hatching
    ax_size.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8,
                   frameon=False)
    return figure


def _speed_cases(cases):
    """Movie cases on the main dataset with a compression speed and a ratio."""
    cases = cases[~is_metadata(cases)]
    op = _first_op(cases, "encode", "write")
    if cases.empty or op is None:
        return cases.iloc[0:0], None, None
    dataset = main_dataset(cases[cases[f"{op}_mibs"].notna()])
    cases = cases[(cases["dataset"] == dataset) & cases[f"{op}_mibs"].notna() & cases["ratio"].notna()]
    return cases, op, dataset


def figure_scatter(results: Results, cases):
    """Ratio vs compression speed per case, with the Pareto front."""
    cases, op, dataset = _speed_cases(cases)
    if len(cases) < 2:
        return None
    several_threads = cases["threads"].nunique() > 1
    cases = cases.assign(name=cases["label"] + cases["threads"].map(
        lambda t: f" ({int(t)} thread{'s' if t > 1 else ''})" if several_threads and t == t else ""))
    figure, (ax,) = _figure(results, f"Ratio vs {'compression' if op == 'encode' else 'write'} "
                                     f"speed — dataset {dataset}", cases)
    markers = "osD^v<>pPhX*"
    for i, (name, part) in enumerate(cases.groupby("name", sort=True)):
        points = ax.scatter(part[f"{op}_mibs"], part["ratio"], s=36, label=name,
                            marker=markers[i % len(markers)])
        points.set_gid("series")
        bad = part[part[f"{op}_unstable"].fillna(False).astype(bool)]
        if len(bad):
            ring = ax.scatter(bad[f"{op}_mibs"], bad["ratio"], s=140, facecolors="none",
                              edgecolors="red", linewidths=1.2, zorder=5, label=UNSTABLE_LABEL)
            ring.set_gid("unstable")
    speed, ratio = cases[f"{op}_mibs"].tolist(), cases["ratio"].tolist()
    front = pareto_front(speed, ratio)
    line, = ax.plot([speed[i] for i in front], [ratio[i] for i in front], color="black",
                    linewidth=1, linestyle="-", label="Pareto front (nothing both faster and smaller)")
    line.set_gid("front")
    ax.set_xscale("log")
    ax.set_xlabel(f"{'compression' if op == 'encode' else 'write'} speed (MiB/s raw, log)")
    ax.set_ylabel("compression ratio (stored/raw, lower is better)")
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax)
    return figure


def link_contenders(cases):
    """Cases with compress and decompress speeds on the main dataset, their names and ops."""
    cases, encode_op, dataset = _speed_cases(cases)
    decode_op = _first_op(cases, "decode", "read_warm", "read_cold")
    if cases.empty or decode_op is None:
        return cases.iloc[0:0], None, None, dataset
    cases = cases[cases[f"{decode_op}_mibs"].notna()]
    return cases, encode_op, decode_op, dataset


def figure_links(results: Results, cases):
    """Effective throughput of compress + transfer + decompress over 0.1-10 Gbit/s links."""
    import numpy as np
    cases, encode_op, decode_op, dataset = link_contenders(cases)
    if cases.empty:
        return None
    cases = cases.assign(name=cases["label"])
    if len(cases) > MAX_LINK_SERIES:
        front = pareto_front(cases[f"{encode_op}_mibs"].tolist(), cases["ratio"].tolist())
        cases = cases.iloc[front]
        note = " (Pareto-front contenders)"
    else:
        note = ""
    if cases["name"].duplicated().any():
        cases["name"] = cases["name"] + " (" + cases["threads"].map(_fmt) + " threads)"
    gbit = np.logspace(math.log10(LINK_RANGE_GBIT[0]), math.log10(LINK_RANGE_GBIT[1]), 60)
    link_mibs = gbit * GBIT_IN_MIB_PER_S
    figure, (ax,) = _figure(results, f"When does compression pay? compress + transfer + decompress"
                                     f" — dataset {dataset}{note}", cases)
    raw, = ax.plot(gbit, link_mibs, color="black", linestyle="--", linewidth=1.5,
                   label="send raw (no compression)")
    raw.set_gid("reference")
    for _, case in cases.sort_values("name").iterrows():
        throughput = link_throughput(case[f"{encode_op}_mibs"], case[f"{decode_op}_mibs"],
                                     case["ratio"], link_mibs)
        unstable = _truthy(case.get(f"{encode_op}_unstable")) or _truthy(case.get(f"{decode_op}_unstable"))
        # a curve has no single point to ring: an unstable input dashes the line instead
        _plot_series(ax, gbit, throughput, case["name"] + (" (unstable)" if unstable else ""),
                            marker=None, linestyle=":" if unstable else "-")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("link speed (Gbit/s, 1 Gbit = 10⁹ bit)")
    ax.set_ylabel("effective throughput (MiB/s of raw data)")
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax)
    return figure


FIGURES = {
    "fig2a_ratio_vs_dose": figure_dose,
    "fig2b_ratio_vs_level": figure_level,
    "fig2c_speed_vs_threads": figure_threads,
    "fig2d_blocksize": figure_blocksize,
    "fig3_metadata": figure_metadata,
    "ratio_vs_speed": figure_scatter,
    "link_throughput": figure_links,
}


def make_figures(results: Results, cases=None) -> dict:
    """name -> matplotlib Figure, only for the figures the data supports."""
    if cases is None:
        cases = case_table(summarise(results.rows))
    figures = {}
    if cases.empty:
        return figures
    for name, build in FIGURES.items():
        figure = build(results, cases)
        if figure is not None:
            figures[name] = figure
    return figures


# =============================================================================================
# Tables
# =============================================================================================
def paper_family(format_name: str) -> str | None:
    name = re.sub(r"[^a-z0-9]", "", format_name.lower())
    if any(key in name for key in ("4bit", "uint4", "mode101", "mrc101")):
        return "uint4"
    if any(key in name for key in ("jpeg2000", "j2k", "jp2")):
        return "jpeg2000"
    if "bz2" in name or "bzip" in name:
        return "bzip2"
    if "xz" in name or "lzma" in name:
        return "xz"
    if "gz" in name:
        return "gzip"
    if name.startswith("mrcz") or name == "blosc":
        return "blosc"
    if name in ("mrc", "raw", "none", "uncompressed", "plain"):
        return "uncompressed"
    return None


def paper_row_for(case) -> tuple | None:
    params = _params(case["params"])
    family = paper_family(case["format"])
    codec = str(params.get("codec", case["codec"]) or "").lower()
    level = params.get("level", case["level"])
    for row in PAPER_TABLE1:
        _, paper_family_name, paper_codec, paper_level, *_ = row
        if family != paper_family_name:
            continue
        if paper_codec and codec != paper_codec:
            continue
        if paper_level is not None and level is not None and level == level and int(level) != paper_level:
            continue
        return row
    return None


def _truthy(value: Any) -> bool:
    return value is not None and value == value and bool(value)  # value == value: not NaN


TABLE1_SUITES = {"table1"}


def table1(cases):
    """Table 1 reproduction from the rows of the `table1` suite only (other suites' datasets
    are not the paper's stack): one block per dataset of the table1 run(s), every contender
    with its file timings, next to the paper's published numbers. None without table1 rows."""
    import pandas as pd
    cases = cases[cases["suite"].isin(TABLE1_SUITES) & ~is_metadata(cases)]
    if cases.empty:
        return None
    write_op = _first_op(cases, "write", "write_fsync")
    read_op = _first_op(cases, "read_cold", "read_warm")
    read_column = f"decompress-read{' warm' if read_op == 'read_warm' else ' cold'} (s)"
    several_runs = cases["run_id"].nunique() > 1
    table = []
    for (dataset, run_id), block in cases.groupby(["dataset", "run_id"], sort=True):
        matched = set()
        for _, case in block.sort_values("ratio").iterrows():
            paper = paper_row_for(case)
            if paper:
                matched.add(paper[0])
            unstable = [op for op in ("write", "write_fsync", "read_cold", "read_warm")
                        if _truthy(case.get(f"{op}_unstable"))]
            row = {
                "dataset": case["dataset"],
                "contender": case["label"],
                "threads": case["threads"],
                "size (MB)": case["stored_bytes"] / MIB,
                "ratio (stored/raw)": case["ratio"],
                "bound ratio": case["bound_ratio"],
                "compress-write (s)": case.get(f"{write_op}_s") if write_op else None,
                "write+fsync (s)": case.get("write_fsync_s"),
                read_column: case.get(f"{read_op}_s") if read_op else None,
                "unstable": ", ".join(unstable),
                "paper contender": paper[0] if paper else "",
                "paper size (MB)": paper[4] if paper else None,
                "paper ratio": paper[5] if paper else None,
                "paper write (s)": paper[6] if paper else None,
                "paper read (s)": paper[7] if paper else None,
            }
            if several_runs:
                row["run"] = run_id
            table.append(row)
        for paper in PAPER_TABLE1:
            if paper[0] not in matched:
                row = {"dataset": dataset, "contender": "(not run)", "paper contender": paper[0],
                       "paper size (MB)": paper[4], "paper ratio": paper[5],
                       "paper write (s)": paper[6], "paper read (s)": paper[7]}
                if several_runs:
                    row["run"] = run_id
                table.append(row)
    return pd.DataFrame(table)


def link_table(cases):
    """Per movie contender: speeds, ratio, break-even link speed and throughput at 1/10 Gbit/s."""
    import pandas as pd
    cases = cases[~is_metadata(cases)]
    encode_op = _first_op(cases, "encode", "write")
    decode_op = _first_op(cases, "decode", "read_warm", "read_cold")
    if cases.empty or not encode_op or not decode_op:
        return None
    cases = cases[cases[f"{encode_op}_mibs"].notna() & cases[f"{decode_op}_mibs"].notna()]
    if cases.empty:
        return None
    table = []
    for _, case in cases.sort_values(["dataset", "ratio"]).iterrows():
        encode, decode, ratio = case[f"{encode_op}_mibs"], case[f"{decode_op}_mibs"], case["ratio"]
        row = {"dataset": case["dataset"], "contender": case["label"], "threads": case["threads"],
               "ratio (stored/raw)": ratio, f"{encode_op} (MiB/s)": encode,
               f"{decode_op} (MiB/s)": decode,
               "pays below (Gbit/s)": break_even_gbit(encode, decode, ratio),
               "unstable": ", ".join(op for op in (encode_op, decode_op)
                                     if _truthy(case.get(f"{op}_unstable")))}
        for gbit in (1.0, 10.0):
            link = gbit * GBIT_IN_MIB_PER_S
            row[f"speed-up vs raw at {gbit:g} Gbit/s (×)"] = link_throughput(encode, decode, ratio, link) / link
        table.append(row)
    return pd.DataFrame(table)


def summary_table(stats):
    """All cases x ops with sample statistics, for the CSV and the appendix."""
    columns = ["dataset", "label", "format", "codec", "level", "blocksize", "threads", "op", "n",
               "invalid", "median_s", "p10_s", "p90_s", "min_s", "spread", "unstable",
               "mib_per_s", "ratio", "bound_ratio", "stored_bytes", "run_id", "case_id"]
    table = stats[columns].rename(columns={
        "label": "contender", "median_s": "median (s)", "p10_s": "p10 (s)", "p90_s": "p90 (s)",
        "min_s": "min (s)", "spread": "spread (p10-p90 / median)", "mib_per_s": "median MiB/s",
        "ratio": "ratio (stored/raw)", "stored_bytes": "stored (bytes)", "blocksize": "blocksize (bytes)"})
    table["unstable"] = table["unstable"].map(lambda bad: "UNSTABLE" if bad else "")
    return table.sort_values(["dataset", "contender", "op"])


def error_table(rows):
    errors = rows[rows["error"].notna()]
    return errors[["dataset", "label", "op", "case_id", "sample", "error", "run_id"]].rename(
        columns={"label": "contender"}).drop_duplicates(["dataset", "contender", "op", "error"])


# =============================================================================================
# Output
# =============================================================================================
def _format_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def markdown_table(table) -> str:
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(_format_cell(v).replace("|", "\\|") for v in row) + " |"
            for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def html_table(table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(
        f"<td{' class=bad' if _format_cell(v) == 'UNSTABLE' else ''}>{html.escape(_format_cell(v))}</td>"
        for v in row) + "</tr>" for row in table.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _freeze_layout(figure) -> None:
    """Run the constrained layout once and keep its positions: it is half the cost of a save,
    and would otherwise run again for the PNG and the SVG."""
    engine = figure.get_layout_engine()
    if engine is not None and engine.__class__.__name__ == "ConstrainedLayoutEngine":
        engine.execute(figure)
        figure.set_layout_engine("none")


def _png_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    # no Software tag: it carries a URL, and the HTML must reference nothing outside itself
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _svg_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Creator": None, "Date": None})
    return buffer.getvalue()


def _write(path: Path, data: bytes | str) -> None:
    with atomic_output(path) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


CAPTIONS = {
    "fig2a_ratio_vs_dose": "Compression ratio (stored/raw) vs dose per contender; the dashed line "
                           "is the Shannon bound of i.i.d. counts (no lossless coder goes below).",
    "fig2b_ratio_vs_level": "Compression ratio and compression speed vs codec level.",
    "fig2c_speed_vs_threads": "Throughput vs threads; dashed line = physical cores, grey = more "
                              "threads than cores. Bands are p10–p90.",
    "fig2d_blocksize": "Compression ratio and speed vs blosc blocksize; dashed = L2, dotted = L3.",
    "fig3_metadata": "Metadata serialisation: time per operation and size on disk per method.",
    "ratio_vs_speed": "Ratio vs compression speed; the black line joins the Pareto front "
                      "(no other contender is both faster and smaller).",
    "link_throughput": "Raw data moved per second when compressing, sending the stored bytes and "
                       "decompressing one after the other, vs sending raw (dashed). Compression "
                       "pays where a line is above the dashed one. Dotted: unstable timings.",
}

STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;
padding:2px 6px;text-align:right}th{background:#eee}td.bad{color:#b00;font-weight:bold}
img{max-width:100%;border:1px solid #ddd}figcaption{font-size:13px;color:#444}
.warn{color:#b00}"""


TABLE_NAMES = ("table1", "link_break_even", "summary", "errors")


def report_file_names() -> set[str]:
    """Every file name write_report can produce."""
    return ({f"{name}{suffix}" for name in FIGURES for suffix in (".png", ".svg")}
            | {f"{name}{suffix}" for name in TABLE_NAMES for suffix in (".csv", ".md")}
            | {"index.html", "report.md"})


def remove_stale_outputs(out: Path, keep) -> list[Path]:
    """Remove files of an earlier report in `out` that this report will not write again (e.g.
    a dose-sweep figure beside a metadata report). Only names the report writer produces are
    touched; any other file stays."""
    removed = []
    for name in sorted(report_file_names() - set(keep)):
        path = out / name
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed


def write_report(results: Results, out: Path, figures: dict | None = None) -> list[Path]:
    """Write figures, tables and index.html into `out`; return the files written.
    `figures` (from make_figures) saves building them again when the caller has them."""
    out.mkdir(parents=True, exist_ok=True)
    stats = summarise(results.rows)
    cases = case_table(stats)
    if figures is None:
        figures = make_figures(results, cases)
    tables = {"table1": table1(cases), "link_break_even": link_table(cases),
              "summary": summary_table(stats) if len(stats) else None,
              "errors": error_table(results.rows)}
    tables = {name: table for name, table in tables.items() if table is not None and len(table)}
    remove_stale_outputs(out, [f"{name}{suffix}" for name in figures for suffix in (".png", ".svg")]
                         + [f"{name}{suffix}" for name in tables for suffix in (".csv", ".md")]
                         + ["index.html", "report.md"])
    written: list[Path] = []

    pngs: dict[str, bytes] = {}
    for name, figure in figures.items():
        _freeze_layout(figure)
        pngs[name] = _png_bytes(figure)
        _write(out / f"{name}.png", pngs[name])
        _write(out / f"{name}.svg", _svg_bytes(figure))
        written += [out / f"{name}.png", out / f"{name}.svg"]

    titles = {"table1": "Table 1 — reproduction next to the paper's published numbers",
              "link_break_even": "When does compression pay? (compress + transfer + decompress)",
              "summary": "All cases and operations (median, p10–p90, min of valid samples)",
              "errors": "Error rows (no timing)"}
    if "table1" in tables:
        names = list(dict.fromkeys(tables["table1"]["dataset"]))
        titles["table1"] += f" (dataset{'s' if len(names) > 1 else ''} {', '.join(names)})"
    for name, table in tables.items():
        _write(out / f"{name}.csv", table.to_csv(index=False))
        _write(out / f"{name}.md", f"## {titles[name]}\n\n{markdown_table(table)}\n")
        written += [out / f"{name}.csv", out / f"{name}.md"]

    rows = results.rows
    timed = rows[rows["error"].isna()]
    counts = {
        "samples": len(rows), "valid samples": int(timed["valid"].sum()),
        "invalid cold samples excluded": int((~timed["valid"]).sum()),
        "error rows": int(rows["error"].notna().sum()),
        "unstable series": int(stats["unstable"].sum()) if len(stats) else 0,
        "runs": rows["run_id"].nunique(),
    }
    if results.skipped_lines:
        counts["cut-off lines skipped (crashed or running run)"] = "; ".join(
            f"{count} in {name}" for name, count in sorted(results.skipped_lines.items()))
    notes = [
        "ratio = stored/raw (the paper's convention: 0.37 = 37 % of the original); "
        "MB = MiB = 2^20 bytes; speeds are MiB/s of raw data; link speeds Gbit/s = 10^9 bit/s.",
        f"Unstable: the p10–p90 spread of a series exceeds {UNSTABLE_SPREAD:.0%} of its median "
        "(ringed red in figures, UNSTABLE in tables) — rerun on a quieter machine.",
        "Cold-read samples whose file was still in the page cache (valid = false) are excluded.",
    ]
    if "table1" in tables:
        notes.append(f"Paper numbers: {PAPER_CITATION}")
    title = f"mrczbench report — suite {', '.join(results.suites)}"
    _write(out / "index.html", _html(title, results, counts, notes, figures, pngs, tables, titles))
    _write(out / "report.md", _markdown(title, results, counts, notes, figures, tables, titles))
    written += [out / "index.html", out / "report.md"]
    return written


def _html(title, results, counts, notes, figures, pngs, tables, titles) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p><b>Machine:</b> {html.escape(results.machine.describe())} · "
             f"<b>date:</b> {html.escape(results.machine.date)} · "
             f"<b>runs:</b> {html.escape(', '.join(sorted(results.rows['run_id'].unique())))}</p>",
             "<ul>" + "".join(f"<li>{html.escape(k)}: {v}</li>" for k, v in counts.items()) + "</ul>"]
    if (counts["invalid cold samples excluded"] or counts["error rows"] or counts["unstable series"]
            or results.skipped_lines):
        parts.append("<p class=warn>Some samples were excluded or failed, or some series are "
                     "unstable: see the counts above and the tables below.</p>")
    parts.append("<ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in notes) + "</ul>")
    for name in figures:
        data = base64.b64encode(pngs[name]).decode("ascii")
        parts.append(f"<figure id='{name}'><img alt='{name}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{html.escape(CAPTIONS[name])}</figcaption></figure>")
    for name, table in tables.items():
        parts.append(f"<h2 id='{name}'>{html.escape(titles[name])}</h2>{html_table(table)}")
    parts.append("</body></html>")
    return "\n".join(parts)


def _markdown(title, results, counts, notes, figures, tables, titles) -> str:
    lines = [f"# {title}", "",
             f"Machine: {results.machine.describe()} · date: {results.machine.date}", ""]
    lines += [f"- {k}: {v}" for k, v in counts.items()] + [""]
    lines += [f"- {note}" for note in notes] + [""]
    for name in figures:
        lines += [f"![{name}]({name}.png)", "", CAPTIONS[name], ""]
    for name, table in tables.items():
        lines += [f"## {titles[name]}", "", markdown_table(table), ""]
    return "\n".join(lines)


# =============================================================================================
# CLI
# =============================================================================================
def default_out(results: Results) -> Path:
    return Path("reports") / "+".join(results.suites)


def run_report(args: argparse.Namespace) -> int:
    import matplotlib
    matplotlib.use("Agg")
    results = load_result_files(args.results)
    out = Path(args.out) if args.out else default_out(results)
    written = write_report(results, out)
    figures = sum(1 for path in written if path.suffix == ".png")
    print(f"wrote {figures} figures and {len(written)} files to {out}/ (open {out / 'index.html'})")
    return 0


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="figures and tables (paper Fig. 2, 3, Table 1) from result files",
        description="Read result files (JSONL rows, or folders of them) and write PNG/SVG "
        "figures, Markdown/CSV tables and a self-contained index.html. Only the figures the "
        "data supports are made (a dose sweep gives the ratio-vs-dose figure, a thread sweep "
        "the threads figure, ...). Ratio = stored/raw, MB = 2^20 bytes.")
    parser.add_argument("results", nargs="+", metavar="RESULTS",
                        help="result files (.jsonl) or folders holding them")
    parser.add_argument("--out", metavar="DIR",
                        help="output folder (default: reports/<suite>/)")
    parser.set_defaults(func=run_report)
