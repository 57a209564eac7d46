"""Running a suite: its steps and progress (the `run` command is mrczbench.commands.run, the
terminal summary it prints mrczbench.analysis.summary).

A run is: plan (bench/plan.py: suite → validated cases, resume, run.json), then execute the
cases in rounds: round r times every case once, as sample r, each round in its own seeded
order, so that the machine's slow drift in speed spreads over the samples of every case
(within-run spread that compare's tests see) instead of shifting whole cases between two
runs. Each case runs in a worker process (bench/worker.py), which times it by the measurement
protocol (bench/measure.py) and sends its rows back; the rows of a case's round are appended
(and flushed) together when it ends, so a killed run loses at most the round of the case in
flight and `--resume` runs exactly the rounds missing from the file. A contender that fails
gives error rows and the run goes on; a failure of mrczbench's own harness stops the run with
its traceback.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from mrczbench import store
from mrczbench.bench import timing
from mrczbench.bench.measure import case_tag, error_row
from mrczbench.bench.plan import (Plan, RunLock, check_folder_option, plan_run,
                                  run_metadata)
from mrczbench.bench.suites import Case
from mrczbench.bench.worker import Worker
from mrczbench.errors import SuiteError
from mrczbench.progress import Progress, duration


def run_suite(name: str, quick: bool = False, profile: str | None = None, data: list[str] | None = None,
              out: str | os.PathLike | None = None, scratch: str | os.PathLike | None = None,
              resume: bool = False, repeats: int | None = None, timeout: float | None = None,
              seed: int | None = None, cache_dir: str | os.PathLike | None = None,
              eviction: str = "auto", progress: bool = True, summary: bool = True,
              command_line: list[str] | None = None, eer_grouping: int | None = None,
              precision: float | None = None) -> Path:
    """Run suite `name` (a name from suites/ or a .toml path); return the run's JSONL path.

    Results go to `out` (default results/<suite>/); scratch files to `scratch` (default: a
    hidden folder inside `out`, i.e. the same filesystem), removed at the end. With `resume`,
    the latest run of the suite in `out` continues with its own profile and settings.
    `summary`: announce the run on stderr (mrczbench.run_suite and the `run` command then
    print its summary table)."""
    plan = plan_run(name, quick=quick, profile=profile, data=data, out=out, resume=resume, repeats=repeats,
                    timeout=timeout, seed=seed, eviction=eviction, cache_dir=cache_dir,
                    command_line=command_line, eer_grouping=eer_grouping, precision=precision)
    check_folder_option("--scratch", scratch)
    scratch_dir = Path(scratch or plan.out_dir) / f".scratch-{plan.run_id}"
    new_dirs = _make_folders(plan.out_dir, scratch_dir)
    locked = False  # a run refused by the lock touches nothing: the scratch is the other run's
    try:
        with RunLock(plan.run_path):
            locked = True
            scratch_dir.mkdir(exist_ok=True)
            todo = plan.todo()
            method, note = _eviction(plan, todo, scratch_dir)
            meta = run_metadata(plan, method, note, scratch_dir, command_line)
            store.write_run_metadata(plan.run_path, meta)
            _announce(plan, todo, method, note, meta["load_at_start"], progress or summary)
            settings = {"scratch": str(scratch_dir), "eviction": method,
                        "cache_dir": str(cache_dir) if cache_dir else None}
            rule = plan.suite.sampling()
            base = {"run_id": plan.run_id, "suite": plan.suite.name, "eviction": method,
                    "profile": plan.suite.profile, "precision_target": rule.precision,
                    "budget_s": rule.budget_s}
            execute(todo, plan, settings, base, progress)
            meta["finished"] = store.utc_now()
            meta["timing"]["stopped"] = stop_counts(plan)
            store.write_run_metadata(plan.run_path, meta)
    except BaseException:
        if locked:
            shutil.rmtree(scratch_dir, ignore_errors=True)
        if locked and plan.run_path.exists() and plan.run_path.stat().st_size == 0 \
                and not plan.resume and not store.meta_path_for(plan.run_path).exists():
            plan.run_path.unlink()  # the lock made it; nothing was written
        _remove_empty_dirs(new_dirs)
        raise
    shutil.rmtree(scratch_dir, ignore_errors=True)
    return plan.run_path


def _make_folders(out_dir: Path, scratch_dir: Path) -> list[Path]:
    """Create the output folder and the scratch folder's parent (the scratch folder itself is
    made once the run lock is held); return the ones created (deepest first) so a failed start
    can remove them again."""
    new_dirs = sorted({*_missing_dirs(out_dir), *_missing_dirs(scratch_dir.parent)},
                      key=lambda d: len(d.parts), reverse=True)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        scratch_dir.parent.mkdir(parents=True, exist_ok=True)
    except BaseException:
        _remove_empty_dirs(new_dirs)
        raise
    return new_dirs


def _eviction(plan: Plan, todo: list[Case], scratch_dir: Path) -> tuple[str, str]:
    """The page-cache eviction method for cold reads, probed on the scratch filesystem; a
    resumed run must get its original method."""
    if not any("read_cold" in case.ops for case in todo):
        return "none", "no cold reads in this suite"
    method, note = timing.probe_eviction(scratch_dir, preferred=plan.eviction)
    original = (plan.meta.get("eviction") or {}).get("method", method)
    if plan.resume and method != original:
        raise SuiteError(
            f"--resume: the latest run {plan.run_path.name} used eviction {original!r}, which "
            f"gives {method!r} here now; resume must use the original settings (start a new "
            f"run instead)")
    return method, note


def _announce(plan: Plan, todo: list[Case], method: str, note: str, load: dict | None,
              enabled: bool) -> None:
    if enabled:
        left = sum(plan.rounds_left(case) for case in todo)
        rule = plan.suite.sampling()
        print(f"mrczbench run: suite {plan.suite.name} ({plan.suite.profile}), {len(todo)} of "
              f"{len(plan.cases)} cases to run ({left} case rounds of "
              f"{len(plan.cases) * rule.min_samples}{'' if rule.fixed else ' at least'}), "
              f"eviction {method} → {plan.run_path}", file=sys.stderr)
        print(f"mrczbench run: sampling {plan.suite.describe_sampling()}", file=sys.stderr)
        if plan.suite.duration and not plan.resume:
            print(f"mrczbench run: expected duration: {plan.suite.duration} (this profile with "
                  f"the suite's own settings, measured on a quiet 2-core machine); the "
                  f"progress line's ETA follows the real pace", file=sys.stderr)
        elif rule.budget_s and todo:
            # a precision target makes the length depend on the noise: say its bound instead
            print(f"mrczbench run: at most about {duration(len(todo) * rule.budget_s)} of timed "
                  f"rounds ({len(todo)} cases x a budget of {rule.budget_s:g} s; a case whose "
                  f"first {rule.min_samples} rounds take longer still runs them), plus data "
                  f"generation; the progress line's ETA follows the real pace", file=sys.stderr)
        if method == "none" and any("read_cold" in case.ops for case in todo):
            print(f"mrczbench run: warning: {note}", file=sys.stderr)
        if plan.data_subset:
            print(f"mrczbench run: {plan.data_subset['note']}", file=sys.stderr)
        crowded = threads_at_vcpus(todo)
        if crowded:
            print(f"mrczbench run: warning: {crowded}", file=sys.stderr)
    if load and load["busy"]:
        print(f"mrczbench run: warning: load average {load['load_average']:.2f} on "
              f"{load['usable_cores']} cores: other work is running; timings will be noisy "
              f"(marked unstable)", file=sys.stderr)


def threads_at_vcpus(cases: list[Case]) -> str | None:
    """A warning when cases run as many threads as this process has vCPUs: each thread then
    shares a core with the harness and any other work, and samples split into a fast mode
    and a starved one (measured on a 2-vCPU VM: spread 3.6 % at 1 thread, 52.6 % at 2)."""
    from mrczbench import system
    cores = system.usable_cores()
    crowded = [case for case in cases if int(case.format.get("threads") or 0) >= cores]
    if not crowded:
        return None
    return (f"{len(crowded)} of {len(cases)} cases use {cores} threads = all {cores} vCPUs of "
            f"this machine: their threads compete with everything else for the cores, so their "
            f"samples are noisier (starved samples are flagged by their CPU/wall ratio)")


def _missing_dirs(path: Path) -> list[Path]:
    """`path` and its ancestors that do not exist yet, deepest first."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists() or folder == folder.parent:
            break
        missing.append(folder)
    return missing


def _remove_empty_dirs(folders: list[Path]) -> None:
    """Remove folders (deepest first) that this run created and left empty."""
    for folder in folders:
        try:
            folder.rmdir()  # only succeeds when empty
        except OSError:
            pass


# --- executing the cases --------------------------------------------------------------------------

def execute(cases: list[Case], plan: Plan, settings: dict[str, Any], base: dict[str, Any],
            show_progress: bool) -> None:
    """Run `cases` in rounds (plan.round_cases): each round times every case once, in a
    worker, and appends its rows; a worker that crashed or timed out is killed (with its
    process group) and the case gets an error row and leaves the later rounds."""
    index_of = {case.case_id: i for i, case in enumerate(plan.cases)}
    progress = Progress(sum(plan.rounds_left(case) for case in cases),
                        "run", enabled=show_progress)
    failed: set[str] = set()
    steps = 0
    worker: Worker | None = None
    try:
        with store.RunFile(plan.run_path) as run_file:
            for number in range(plan.rounds()):
                for case in plan.round_cases(number, failed):
                    label = f"round {number + 1}/{plan.rounds()} {case.case_id}"
                    progress.update(steps, label)
                    if worker is None or not worker.process.is_alive():
                        worker = Worker(settings)
                    samples = max(1, len(case.ops))
                    received = []

                    def on_row(row, steps=steps, label=label, received=received):
                        # progress within a case: one step per sample row
                        received.append(row)
                        progress.update(steps + min(len(received) / samples, 0.99),
                                        f"{label} {row.get('op') or ''}")

                    started = timing.clock()
                    rows, failure = worker.run(case, on_row)
                    round_s = timing.clock() - started
                    if failure:
                        worker.kill()
                        worker = None
                        _remove_case_files(Path(settings["scratch"]), case)
                        rows.append(error_row(case, failure, op=rows[-1].get("op") if rows else None))
                    if any(row.get("error") for row in rows):
                        _check_scratch(Path(settings["scratch"]), case)
                        failed.add(case.case_id)
                    case_base = {**base, "case_id": case.case_id, "case_index": index_of[case.case_id],
                                 "round_s": round_s}
                    made = [store.make_row(**{**case_base, **row}) for row in rows]
                    run_file.append(made)
                    plan.record(case, made, round_s)
                    steps += 1
                    if not plan.stopped(case) and case.case_id not in failed and \
                            len(plan.progress_of(case).rounds) >= plan.suite.sampling().min_samples:
                        progress.total += 1  # short of its target: one more round
                stopped = sum(1 for case in cases if case.case_id not in failed and plan.stopped(case))
                if stopped == len([c for c in cases if c.case_id not in failed]):
                    break
            progress.update(progress.total)
    except BaseException:
        # Ctrl-C or a harness bug: do not wait for the case in flight; its rows are not written
        if worker is not None:
            worker.kill()
            worker = None
        raise
    finally:
        progress.close()
        if worker is not None:
            worker.stop()


def _check_scratch(scratch: Path, case: Case) -> None:
    """Error rows are the contender's only while the harness's scratch folder is intact: a
    folder removed under the run (by another process) fails every later case, so the run
    stops (exit 2) without recording that case's rows; --resume runs it again."""
    if not scratch.is_dir():
        raise SuiteError(f"{scratch}: the run's scratch folder disappeared during case "
                         f"{case.case_id} (removed by another process?): the run stops here, its "
                         f"error rows not recorded; continue it with --resume")


def stop_counts(plan: Plan) -> dict[str, int]:
    """How many cases stopped for each reason (run.json timing.stopped)."""
    counts: dict[str, int] = {}
    for case in plan.cases:
        reason = "failed" if plan.progress_of(case).failed else (plan.stopped(case) or "unfinished")
        counts[reason] = counts.get(reason, 0) + 1
    return counts


def _remove_case_files(scratch: Path, case: Case) -> None:
    """Files a killed worker left behind (temp files of atomic writes included)."""
    for path in scratch.glob(f"*case{case_tag(case)}-*"):
        path.unlink(missing_ok=True)
