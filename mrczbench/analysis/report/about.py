"""What a report is: the profile of each run (quick = smoke test), the machine's load when each
run started (busy or quiet) and its physical cores, read from the runs' run.json.

A quick profile runs tiny stacks (e.g. 4 x 256 x 256) for millisecond timings: its speeds are
smoke-test figures that must not be quoted. Every report says so on its first screen, and the
speed figures built from quick runs carry it in their title and a watermark."""
from __future__ import annotations

from typing import Any

from mrczbench.analysis.results import LoadedResults

QUICK = "quick"
QUICK_WARNING = ("QUICK PROFILE: a smoke test on small stacks; do not quote these speeds "
                 "(rerun without --quick for measurements)")
QUICK_MARK = "[quick run: smoke test, do not quote speeds]"
WATERMARK = "QUICK RUN\ndo not quote these speeds"


def run_profiles(results: LoadedResults) -> dict[str, str]:
    """run_id -> profile ('quick', 'full', ... or 'unknown') from run.json, else the rows."""
    profiles = {str(run.get("run_id")): str(run.get("profile") or "unknown")
                for run in results.runs if run.get("run_id")}
    rows = results.rows
    if "profile" in rows.columns:
        for run_id, profile in rows.groupby("run_id")["profile"].first().items():
            if profile is not None and profile == profile:  # not NaN
                profiles.setdefault(str(run_id), str(profile))
    for run_id in rows["run_id"].unique():
        profiles.setdefault(str(run_id), "unknown")
    return profiles


def quick_runs(results: LoadedResults, run_ids=None) -> list[str]:
    """The runs (of `run_ids`, default all) recorded with the quick profile."""
    profiles = run_profiles(results)
    wanted = profiles if run_ids is None else {str(r) for r in run_ids}
    return sorted(r for r in wanted if profiles.get(r) == QUICK)


def load_text(load: Any) -> tuple[str, bool | None]:
    """('0.42 on 2 usable cores', busy) from run.json's load_at_start; ('not recorded', None)."""
    if not isinstance(load, dict) or not isinstance(load.get("load_average"), (int, float)):
        return "not recorded", None
    cores = load.get("usable_cores")
    busy = load.get("busy")
    text = f"{load['load_average']:g}" + (f" on {cores} usable cores" if cores else "")
    return text, bool(busy) if busy is not None else None


def runs_table(results: LoadedResults):
    """One row per run: suite, profile, load at start, busy, physical cores, started."""
    import pandas as pd
    from mrczbench import store
    by_id = {str(run.get("run_id")): run for run in results.runs if run.get("run_id")}
    profiles = run_profiles(results)
    suites = results.rows.groupby("run_id")["suite"].first()
    table = []
    for run_id in sorted(profiles):
        run = by_id.get(run_id, {})
        load, busy = load_text(run.get("load_at_start"))
        profile = profiles[run_id]
        table.append({
            "run": run_id, "suite": run.get("suite") or suites.get(run_id, ""),
            "profile": profile + (" (smoke test)" if profile == QUICK else ""),
            "load at start": load,
            "busy (load > 3/4 of usable cores)": {True: "BUSY", False: "no", None: "unknown"}[busy],
            "physical cores": store.recorded_physical_cores(run),
            "started": run.get("started", ""),
        })
    return pd.DataFrame(table)


def summary_lines(results: LoadedResults) -> list[str]:
    """The first-screen statement of what the report is (profiles, load, cores)."""
    table = runs_table(results)
    profiles = sorted(set(run_profiles(results).values()))
    busy = table[table["busy (load > 3/4 of usable cores)"] == "BUSY"]["run"].tolist()
    unknown = table[table["busy (load > 3/4 of usable cores)"] == "unknown"]["run"].tolist()
    cores = results.machine.physical_cores
    lines = [f"Profile{'s' if len(profiles) > 1 else ''}: {', '.join(profiles)}; "
             f"{len(table)} run{'s' if len(table) != 1 else ''}; "
             f"{cores if cores else 'unknown'} physical cores."]
    if busy:
        lines.append(f"BUSY machine at the start of {len(busy)} of {len(table)} runs "
                     f"({', '.join(busy)}): other work was running, timings are noisy.")
    elif unknown and len(unknown) == len(table):
        lines.append("The load at the start of the runs was not recorded (older runs).")
    else:
        lines.append("The machine was quiet at the start of every run that recorded its load.")
    return lines


def figure_mark(results: LoadedResults, cases) -> str:
    """QUICK_MARK when any run behind `cases` is quick, else ''."""
    if cases is None or not len(cases):
        return ""
    return QUICK_MARK if quick_runs(results, cases["run_id"].unique()) else ""
