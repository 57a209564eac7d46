"""The terminal summary of one run (`mrczbench run` prints it when the run ends): the median
per case of ratio, Shannon bound, efficiency and MiB/s per op, with the rows' errors."""
from __future__ import annotations

import math
from typing import Any

from mrczbench.analysis.stats import series_target, summarise
from mrczbench.bench.worker import TIMED_OUT
from mrczbench.store import OPS, iter_rows
from mrczbench.units import MiB, format_table


def _per_case(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """case id -> first row, ratios, seconds of valid samples per op, errors, invalid count.
    Seconds, not MiB/s: the median's interval and the met target are stats.case_stats's (the
    report's), whose intervals are of seconds; MiB/s is then raw MiB / median seconds."""
    cases: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = cases.setdefault(row["case_id"], {"first": row, "ops": {}, "ratios": [], "errors": [],
                                                  "invalid": 0, "targets": {}, "sampled": {}})
        if row.get("error"):
            entry["errors"].append(f"{row.get('op') or 'case'}: {row['error']}")
            continue
        if row.get("ratio") is not None and row.get("op") in ("write", "write_fsync", "encode"):
            entry["ratios"].append(row["ratio"])
        if not row.get("valid"):
            entry["invalid"] += 1
            continue
        if row.get("seconds") and row.get("raw_bytes"):
            entry["ops"].setdefault(row["op"], []).append(row["seconds"])
            entry["raw_bytes"] = row["raw_bytes"]
            if row["op"] not in entry["targets"]:
                entry["targets"][row["op"]] = series_target([row.get("precision_target")])
                entry["sampled"][row["op"]] = row.get("precision_target") != 0
    return cases


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Median per case: ratio (stored/raw), Shannon bound, efficiency, MiB/s per op with the
    relative half-width of its 95 % interval; a '†' marks a series that missed its precision
    target (mrczbench.analysis.stats: the report's and compare's rule), and the last lines say
    how many series met it."""
    cases = _per_case(rows)
    if not cases:
        return "(no results)"
    ops = [op for op in OPS if any(op in e["ops"] for e in cases.values())]
    varying = _varying_params(cases)
    header = ["contender", "dataset", "dose (e/px/frame)"] + [_param_header(k) for k in varying] + \
        ["ratio (stored/raw)", "bound (stored/raw)", "efficiency (%)"] + [f"{op} (MiB/s)" for op in ops]
    table, notes, series = [], [], []  # series: (target, met) of every timed case/op
    for entry in sorted(cases.values(), key=_sort_key):
        first = entry["first"]
        ratio = summarise(entry["ratios"]).median if entry["ratios"] else None
        bound = first.get("bound_ratio")
        line = [str(first.get("label")), str(first.get("dataset")), _num(first.get("dose"))]
        line += [_num(first.get(k)) if k != "blocksize" else _blocksize(first.get(k)) for k in varying]
        line += [_num(ratio, 3), _num(bound, 3),
                 _num(100 * bound / ratio, 0) if (ratio and bound is not None) else "-"]
        for op in ops:
            cell, judged = _speed_cell(entry, op)
            line.append(cell)
            series += [judged] if judged else []
        notes += _case_notes(entry)
        table.append(line)
    keep = [i for i in range(len(header)) if i < 2 or any(r[i] != "-" for r in table)]
    header = [header[i] for i in keep]
    table = [[r[i] for i in keep] for r in table]
    text = format_table(header, table, align="ll" + "r" * (len(header) - 2), rule=True).splitlines()
    text.append("ratio = stored/raw (0.37 = 37 % of the raw size); MiB = 2^20 bytes of raw data per "
                "second, median of valid samples; efficiency = bound/ratio.")
    return "\n".join(text + _precision_lines(rows, series) + ["! " + note for note in notes]
                     + _timed_out_lines(rows))


def _varying_params(cases: dict[str, dict[str, Any]]) -> list[str]:
    """The parameters worth a column: those that tell one contender's cases apart (a sweep)."""
    varying = []
    for key in ("level", "threads", "blocksize"):
        per_label: dict[str, set] = {}
        for entry in cases.values():
            per_label.setdefault(str(entry["first"].get("label")), set()).add(entry["first"].get(key))
        if any(len(values) > 1 for values in per_label.values()):
            varying.append(key)
    return varying


def _sort_key(entry: dict[str, Any]) -> tuple:
    first = entry["first"]
    return (str(first.get("dataset")), first.get("dose") or 0, str(first.get("format")),
            str(first.get("codec")), *[first.get(k) or 0 for k in ("level", "threads", "blocksize")],
            str(first.get("label")))


def _speed_cell(entry: dict[str, Any], op: str) -> tuple[str, tuple[float, bool] | None]:
    """('MiB/s ±x%' with a † for a missed target, (target, met)), or ('-', None) untimed."""
    values = entry["ops"].get(op)
    if not values:
        return "-", None
    series = summarise(values)
    target = entry["targets"].get(op, series_target([]))
    met = series.met(target)
    median = entry["raw_bytes"] / MiB / series.median
    spread = f" ±{100 * series.precision:.0f}%" if series.ci_low is not None else ""
    sampled = entry["sampled"].get(op, True)  # to a precision (not a fixed count)
    mark = "" if met or not sampled else "†"
    return (f"{median:,.0f}" if median >= 100 else f"{median:.3g}") + spread + mark, (target, met)


def _case_notes(entry: dict[str, Any]) -> list[str]:
    first, errors = entry["first"], entry["errors"]
    name = f"{first.get('label')} / {first.get('dataset')}"
    notes = []
    if errors:
        notes.append(f"{name}: {errors[0]}" + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""))
    if entry["invalid"]:
        notes.append(f"{name}: {entry['invalid']} invalid sample(s) left out (cold read not cold)")
    return notes


def _precision_lines(rows: list[dict[str, Any]], series: list[tuple[float, bool]]) -> list[str]:
    """How many series met their target, and whether the run sampled to a precision at all."""
    if not series:
        return []
    met = sum(ok for _, ok in series)
    goal = " / ".join(f"±{100 * t:g} %" for t in sorted({target for target, _ in series}))
    lines = [f"±: half-width of the median's 95 % interval (6 or more samples). {met} of "
             f"{len(series)} series met the {goal} target" +
             ("; † marks the others that sampled to it." if met < len(series) else ".")]
    if {row.get("precision_target") for row in rows if row.get("op")} == {0}:
        lines.append("This run took a fixed number of samples (quick profile or --repeats), "
                     "not sampling to a precision: a smoke test, not figures to quote.")
    return lines


def _timed_out_lines(rows: list[dict[str, Any]]) -> list[str]:
    timed_out = {row["case_id"]: row["error"] for row in rows
                 if str(row.get("error") or "").startswith(TIMED_OUT)}
    if not timed_out:
        return []
    limit = next(iter(timed_out.values()))[len(TIMED_OUT):].split()[0]
    return [f"! {len(timed_out)} case(s) timed out at the limit of {limit} s per case "
            f"(--timeout {limit}): run again with a larger --timeout SECONDS, or with "
            f"--quick for a short run"]


def _param_header(key: str) -> str:
    return {"blocksize": "blocksize (bytes)", "threads": "threads", "level": "level"}[key]


def _blocksize(value: Any) -> str:
    if value == 0:
        return "auto"
    if isinstance(value, int) and value >= 1024:
        return f"{value // 1024}KiB" if value < 2**20 else f"{value / 2**20:g}MiB"
    return _num(value)


def _num(value: Any, digits: int | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if digits is not None:
        return f"{value:.{digits}f}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def print_summary(run_path) -> None:
    """The summary table of a finished run and where its rows are (what `mrczbench run` and
    mrczbench.run_suite print at the end)."""
    print(summary_table(list(iter_rows(run_path))))
    print(f"results: {run_path}")
