"""Planning a run (main process): the suite's cases in a seeded order, what a resumed run
still has to do and with which settings, the run lock, and the run's metadata (run.json)."""
from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

from mrczbench import store
from mrczbench.argtypes import EER_GROUPING
from mrczbench.bench import timing
from mrczbench.bench.suites import PROFILES, Case, Suite, load_suite
from mrczbench.errors import SuiteError
from mrczbench.store import BUSY_LOAD_PER_CORE, CASE_BY_CASE, SAMPLING

# `--quick --data`: users' movies are cut to the quick profile's stack; a profile that names
# no frame count or shape (its datasets are named specs) gets these
QUICK_DATA_FRAMES = 4
QUICK_DATA_SHAPE = [512, 512]


def order_cases(cases: list[Case], seed: int | str) -> list[Case]:
    """Shuffle cases (seeded) so drift in machine speed does not favour one contender, while
    keeping cases on the same dataset together (the worker loads each dataset once)."""
    rng = random.Random(seed)
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(json.dumps(case.dataset, sort_keys=True), []).append(case)
    keys = list(groups)
    rng.shuffle(keys)
    ordered: list[Case] = []
    for key in keys:
        members = list(groups[key])
        rng.shuffle(members)  # a fresh permutation per dataset: no contender is always first
        ordered.extend(members)
    return ordered


@dataclasses.dataclass
class Plan:
    """What one `run` does: the suite (settings applied), where its rows go, and the cases."""

    suite: Suite
    out_dir: Path
    run_path: Path
    run_id: str
    data_files: list[str]
    eviction: str                  # requested: auto, or a method
    meta: dict[str, Any]           # run.json so far ({} for a new run)
    cases: list[Case]              # all cases, in run order
    resume: bool
    data_subset: dict[str, Any] | None = None  # --quick --data: the part of each movie used
    eer_grouping: int = EER_GROUPING  # --data EER movies: internal frames a frame
    done: dict[str, store.CaseProgress] = dataclasses.field(default_factory=dict)  # resumed

    def todo(self) -> list[Case]:
        """Cases with a round left to run (call while holding the run lock)."""
        self.done = store.case_progress(self.run_path) if self.resume else {}
        if self.resume:
            self.meta["resumed"][-1]["cases_done_before"] = sum(
                1 for case in self.cases if self._finished(case))
        return [case for case in self.cases if not self._finished(case)]

    def rounds(self) -> int:
        """The most rounds a case can get (the stopping rule's maximum)."""
        return self.suite.sampling().max_samples

    def round_cases(self, number: int, failed: set[str]) -> list[Case]:
        """Round `number`: every case not yet timed in it that still samples (stop_reason),
        once (sample `number`), in an order of its own (seeded), so that slow drift of the
        machine's speed spreads over the samples of every case instead of shifting whole
        cases. A case with an error row (here or in `failed`) is not run again: its error
        would repeat. A case that met its target (or spent its budget) leaves the rounds."""
        todo = [case for case in self.cases
                if case.case_id not in failed and not self.progress_of(case).failed
                and number not in self.progress_of(case).rounds and not self.stopped(case)]
        return [dataclasses.replace(case, repeats=1, first_sample=number)
                for case in order_cases(todo, f"{self.suite.seed}/{number}")]

    def record(self, case: Case, rows: list[dict[str, Any]], seconds: float) -> None:
        """Add a finished round of `case` (its rows, its wall time) to what the stopping
        rule sees."""
        progress = self.done.setdefault(case.case_id, store.CaseProgress())
        progress.add(rows, seconds)

    def stopped(self, case: Case) -> str | None:
        """Why `case` takes no more rounds (sampling.stop_reason), or None."""
        from mrczbench.sampling import stop_reason
        progress = self.progress_of(case)
        samples = {op: progress.samples.get(op, []) for op in case.ops}
        return stop_reason(self.suite.sampling(), samples, progress.spent_s, len(progress.rounds))

    def progress_of(self, case: Case) -> store.CaseProgress:
        return self.done.get(case.case_id) or store.CaseProgress()

    def rounds_left(self, case: Case) -> int:
        """Rounds `case` still takes at least (the minimum; a case short of its target
        takes more, up to rounds())."""
        progress = self.progress_of(case)
        if progress.failed or self.stopped(case):
            return 0
        return max(1, self.suite.sampling().min_samples - len(progress.rounds))

    def _finished(self, case: Case) -> bool:
        return self.rounds_left(case) == 0


def plan_run(name: str, quick: bool = False, profile: str | None = None, data: list[str] | None = None,
             out: str | os.PathLike | None = None, resume: bool = False,
             repeats: int | None = None, timeout: float | None = None, seed: int | None = None,
             eviction: str = "auto", cache_dir: str | os.PathLike | None = None,
             command_line: list[str] | None = None, eer_grouping: int | None = None,
             precision: float | None = None) -> Plan:
    """Load and validate the suite (every case's format config) and settle the settings. A
    resumed run takes the original run's profile, data and settings; options given again
    must match them. Nothing is created on disk."""
    check_folder_option("--cache-dir", cache_dir)
    check_folder_option("--out", out)
    suite = load_suite(name, quick=quick, profile=profile)
    out_dir = Path(out) if out else Path("results") / suite.name
    data_files = [str(Path(p).resolve()) for p in data] if data else []
    meta: dict[str, Any] = {}
    if resume:
        run_path, meta = _latest_run(out_dir, suite.name)
        if not quick and profile is None and meta.get("profile") in PROFILES:
            suite = load_suite(name, profile=meta["profile"])  # the original run's profile
        if meta.get("profile") != suite.profile or (data and meta.get("data_files", []) != data_files):
            raise SuiteError(
                f"--resume: the latest run {run_path.name} used profile {meta.get('profile')!r} and "
                f"data {meta.get('data_files') or 'synthetic'}; run with the same options "
                f"(this run: profile {suite.profile!r}, data {data_files or 'synthetic'})")
        data_files = list(meta.get("data_files", []))
        recorded = meta.get("eer_grouping", EER_GROUPING)
        if eer_grouping is not None and eer_grouping != recorded:
            raise SuiteError(f"--resume: the latest run {run_path.name} used --eer-grouping "
                             f"{recorded}; resume with the same (or without the option)")
        eer_grouping = recorded
        _check_resume_settings(run_path, meta, repeats=repeats, seed=seed, timeout=timeout,
                               eviction=eviction, precision=precision)
        original = meta.get("timing") or {}
        # settings not given again come from the original run, never from the suite's
        # current defaults: one run file holds one set of settings
        repeats = repeats if repeats is not None else original.get("repeats")
        timeout = timeout if timeout is not None else original.get("timeout")
        # runs from before sampling to a precision took a fixed count of samples
        precision = original.get("precision", 0.0)
        suite.max_repeats = original.get("max_repeats", suite.max_repeats)
        suite.budget = original.get("budget", suite.budget)
        seed = seed if seed is not None else meta.get("seed")
        original_method = (meta.get("eviction") or {}).get("method")
        if eviction == "auto" and original_method in timing.EVICTION_METHODS:
            eviction = original_method
        run_id = meta["run_id"]
        meta.setdefault("resumed", []).append({"started": store.utc_now(),
                                               "command": command_line or sys.argv})
    else:
        run_id = store.new_run_id()
        run_path = out_dir / f"{run_id}{store.RUN_SUFFIX}"
        if repeats is not None and precision is None:
            precision = 0.0  # --repeats N alone: exactly N samples, as asked
    _apply_settings(suite, repeats, timeout, seed, precision)
    eer_grouping = EER_GROUPING if eer_grouping is None else eer_grouping
    cases = order_cases(suite.cases(data=data_files or None, eer_grouping=eer_grouping), suite.seed)
    subset = quick_data_subset(suite) if data_files else None
    for case in cases if subset else []:
        case.dataset["subset"] = subset
    check_datasets(cases)
    return Plan(suite, out_dir, run_path, run_id, data_files, eviction, meta, cases, resume,
                subset, eer_grouping)


def check_datasets(cases: list[Case]) -> None:
    """Every synthetic dataset of the run fits this machine (its whole stack in memory, as a
    case holds it): one line before anything starts, not a failed row per case."""
    from mrczbench.bench.measure import dataset_spec
    from mrczbench.movies.datasets import check_resources
    seen = set()
    for case in cases:
        key = json.dumps(case.dataset, sort_keys=True, default=str)
        if "path" in case.dataset or case.dataset.get("kind") == "metadata" or key in seen:
            continue
        seen.add(key)
        check_resources(dataset_spec(case.dataset), whole_stack=True)


def quick_data_subset(suite: Suite) -> dict[str, Any] | None:
    """What a quick run measures of a user's movie: its first frames, centrally cropped to the
    quick profile's stack (a quick run must stay quick on a full-size movie). None for the
    full profile (whole movies)."""
    if suite.profile != "quick":
        return None
    frames = suite.dataset.get("frames") or QUICK_DATA_FRAMES
    shape = list(suite.dataset.get("shape") or QUICK_DATA_SHAPE)
    return {"frames": frames, "shape": shape,
            "note": f"--quick: the first {frames} frames of each movie, central "
                    f"{shape[0]} x {shape[1]} crop (smaller movies keep their size); run "
                    f"without --quick to measure whole movies"}


def _apply_settings(suite: Suite, repeats: int | None, timeout: float | None, seed: int | None,
                    precision: float | None = None) -> None:
    if repeats is not None:
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise SuiteError(f"--repeats: expected an integer >= 1. Got {repeats!r}")
        suite.repeats = repeats
    if timeout is not None:
        import math
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise SuiteError(f"--timeout: expected a finite number of seconds > 0. Got {timeout!r}")
        suite.timeout = float(timeout)
    if seed is not None:
        suite.seed = int(seed)
    if precision is not None:
        import math
        if not (isinstance(precision, (int, float)) and not isinstance(precision, bool)
                and math.isfinite(precision) and 0 <= precision < 1):
            raise SuiteError(f"--precision: expected a fraction in [0, 1) (0.05 = ±5 %; 0 = a "
                             f"fixed count of --repeats samples). Got {precision!r}")
        suite.precision = float(precision)


def check_folder_option(option: str, folder: str | os.PathLike | None) -> None:
    """A folder option naming something that is not a folder: one line, before any work."""
    if folder is not None and Path(folder).exists() and not Path(folder).is_dir():
        raise SuiteError(f"{option} {folder}: not a folder (give a folder, or a path that "
                         f"does not exist yet)")


def _latest_run(out_dir: Path, suite: str) -> tuple[Path, dict[str, Any]]:
    previous = [p for p in store.run_files(out_dir)
                if store.read_run_metadata(p).get("suite") == suite] if out_dir.is_dir() else []
    if not previous:
        raise SuiteError(f"--resume: no earlier run of suite {suite!r} in {out_dir}")
    return previous[-1], store.read_run_metadata(previous[-1])


def _check_resume_settings(run_path: Path, meta: dict[str, Any], repeats: int | None,
                           seed: int | None, timeout: float | None, eviction: str,
                           precision: float | None = None) -> None:
    """A resumed run must measure the remaining cases as the original run measured the others:
    refuse settings given now that differ from the original ones."""
    differing = []
    original = meta.get("timing") or {}
    if original.get("sampling", CASE_BY_CASE) != SAMPLING:
        raise SuiteError(f"--resume: {run_path.name} was made case by case (all samples of a "
                         f"case at once, mrczbench before rounds); this mrczbench samples in "
                         f"rounds and cannot continue it the same way: start a new run")
    if repeats is not None and original.get("repeats") is not None and repeats != original["repeats"]:
        differing.append(f"--repeats {repeats} (the original run used {original['repeats']})")
    if timeout is not None and original.get("timeout") is not None and timeout != original["timeout"]:
        differing.append(f"--timeout {timeout:g} (the original run used {original['timeout']:g})")
    if precision is not None and precision != original.get("precision", 0.0):
        differing.append(f"--precision {precision:g} (the original run used "
                         f"{original.get('precision', 0.0):g})")
    if seed is not None and "seed" in meta and int(seed) != meta["seed"]:
        differing.append(f"--seed {seed} (the original run used {meta['seed']})")
    original_method = (meta.get("eviction") or {}).get("method")
    if eviction != "auto" and original_method and eviction != original_method:
        differing.append(f"--eviction {eviction} (the original run used {original_method})")
    if differing:
        raise SuiteError(f"--resume: {run_path.name} was run with other settings: "
                         f"{'; '.join(differing)}; resume must use the original settings "
                         f"(leave the option out, or start a new run without --resume)")


# --- the run lock ---------------------------------------------------------------------------------

class RunLock:
    """An advisory lock (flock) on the run's JSONL file while a process appends to it: a
    second `run --resume` of the same run is refused instead of appending the same cases again.
    The lock goes with the process (also when it is killed)."""

    def __init__(self, run_path: Path):
        self.path = run_path
        self.handle = open(run_path, "a", encoding="utf-8")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise SuiteError(f"{run_path}: another mrczbench run is writing this run now; wait "
                             f"for it to finish (or stop it) before resuming") from None

    def release(self) -> None:
        self.handle.close()  # closing the file releases the lock

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


# --- run.json -------------------------------------------------------------------------------------

EVICTION_HOW = {
    "drop_caches": "sync; echo 3 > /proc/sys/vm/drop_caches, then one read of a copy of the file "
                   "re-warms the reader's code (not the file) before the timed cold read",
    "fadvise": "fsync + posix_fadvise(POSIX_FADV_DONTNEED) on the file",
    "none": "no eviction: cold reads are marked invalid",
}


def run_metadata(plan: Plan, method: str, note: str, scratch_dir: Path,
                 command_line: list[str] | None) -> dict[str, Any]:
    """run.json of the run: the plan's settings, the machine and its load at the start."""
    from mrczbench.bench.machine import capture

    suite, meta = plan.suite, dict(plan.meta)
    meta.update({
        "run_id": plan.run_id, "suite": suite.name, "suite_file": str(suite.path),
        "profile": suite.profile, "description": suite.description, "figure": suite.figure,
        "seed": suite.seed, "case_order": [c.case_id for c in plan.cases],
        "cases": len(plan.cases), "data_files": plan.data_files, "data_subset": plan.data_subset,
        "eer_grouping": plan.eer_grouping,
        "eviction": {"method": method, "note": note,
                     "cold_residency_limit": timing.COLD_RESIDENCY_LIMIT,
                     "code_rewarmed": method == "drop_caches", "how": EVICTION_HOW[method]},
        "scratch_dir": str(scratch_dir.resolve()), "results_dir": str(plan.out_dir.resolve()),
        "timing": {"clock": "time.perf_counter", "cpu_clock": "time.process_time",
                   "sampling": SAMPLING, "repeats": suite.repeats,
                   "precision": suite.precision, "max_repeats": suite.max_repeats,
                   "budget": suite.budget, "rule": suite.describe_sampling(),
                   "min_batch_seconds": suite.min_batch_seconds, "timeout": suite.timeout},
        "suite_definition": suite.to_dict(),
        "eviction_requested": meta.get("eviction_requested", plan.eviction),
        "load_at_start": load_at_start(),
    })
    meta.setdefault("command", command_line or sys.argv)
    meta.setdefault("started", store.utc_now())
    meta["machine"] = capture(plan.out_dir)
    return meta


def load_at_start() -> dict[str, Any] | None:
    """1-minute load average against the cores this process may use, and whether other work
    is running (then timings will be noisy)."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return {"load_average": round(load, 2), "usable_cores": cores,
            "busy_threshold": BUSY_LOAD_PER_CORE * cores,
            "busy": load > BUSY_LOAD_PER_CORE * cores}
