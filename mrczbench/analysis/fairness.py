"""Is a comparison fair? What the run.json of each side says against comparing their
timings: a busy run, other machines, other mrczbench, other eviction methods or sampling."""
from __future__ import annotations

from mrczbench.store import BUSY_LOAD_PER_CORE, CASE_BY_CASE, recorded
from mrczbench.units import format_number


def _busy(run: dict) -> str | None:
    """'load average 3.1 on 2 usable cores' when the run was recorded as busy at its start
    (run.json `load_at_start`, the harness's rule; older runs: the machine's load average)."""
    load = run.get("load_at_start")
    if isinstance(load, dict) and "busy" in load:
        if not load["busy"]:
            return None
        average, cores = load.get("load_average"), load.get("usable_cores")
    else:
        machine = recorded(run)
        averages, cores = machine.get("load_average"), machine.get("usable_cpus")
        if not averages or not cores:
            return None
        average = averages[0]
        if average <= BUSY_LOAD_PER_CORE * cores:
            return None
    return f"load average {format_number(average)} on {cores} usable cores"


def _software(run: dict) -> str | None:
    """'mrczbench 0.1.0, commit abc…'; None when the run recorded neither (nothing to compare)."""
    machine = recorded(run)
    version = (machine.get("libraries") or {}).get("mrczbench")
    git = machine.get("git") or {}
    if not version and not git.get("commit"):
        return None
    version = version or "unknown version"
    commit = f", commit {str(git['commit'])[:10]}" if git.get("commit") else ""
    return f"mrczbench {version}{commit}{' (uncommitted changes)' if git.get('dirty') else ''}"


def _machine(run: dict) -> str | None:
    machine = recorded(run)
    if not machine.get("hostname") and not machine.get("cpu_model"):
        return None  # not recorded: nothing to compare
    return f"{machine.get('hostname') or 'unknown host'} ({machine.get('cpu_model') or 'unknown CPU'})"


def _eviction(run: dict) -> str | None:
    eviction = run.get("eviction")
    return eviction.get("method") if isinstance(eviction, dict) else None


def _sampling(run: dict) -> str | None:
    if not run:
        return None  # no run.json: nothing to compare
    return (run.get("timing") or {}).get("sampling", CASE_BY_CASE)


def run_warnings(base_runs: list[dict], new_runs: list[dict]) -> list[str]:
    """One line per reason the timings of BASE and NEW may differ for reasons other than the
    contenders: a busy run, other machines, other mrczbench, other eviction methods or
    sampling (rounds or case by case)."""
    warnings = []
    for side, runs in (("BASE", base_runs), ("NEW", new_runs)):
        for run in runs:
            busy = _busy(run)
            if busy:
                warnings.append(f"{side} run {run.get('run_id', '?')} was recorded as busy at its "
                                f"start ({busy}): its timings are noisy; compare runs made on a "
                                f"quiet machine")

    def differ(describe, what: str, consequence: str) -> None:
        base = sorted({d for d in map(describe, base_runs) if d})
        new = sorted({d for d in map(describe, new_runs) if d})
        if base and new and base != new:
            warnings.append(f"BASE and NEW ran {what}: BASE {' / '.join(base)}, NEW "
                            f"{' / '.join(new)}; {consequence}")

    differ(_machine, "on different machines", "time ratios include the machines' difference")
    differ(_software, "different mrczbench versions",
           "a change in the harness can change the timings")
    differ(_eviction, "with different page-cache eviction methods", "cold reads are not comparable")
    differ(_sampling, "with different sampling",
           "a run made case by case shifts whole cases with the machine's drift, one made in "
           "rounds spreads it over every case's samples: compare runs sampled the same way")
    return warnings
