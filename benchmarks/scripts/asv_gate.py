"""asv regression gate: compare the deterministic metrics with the committed baseline
(benchmarks/baseline.json) and the timings with a base commit (default: HEAD's parent) run in
the same job, and exit 1 on a regression.

Why a committed baseline: a submission often holds several commits, and comparing only HEAD
with its parent lets a regression in any commit but the last pass unseen. Every track_ value
(ratio, stored bytes, efficiency, traced peaks) is deterministic, so it is compared with the
value the baseline file records; a regression anywhere since the baseline was written fails,
and a deliberate change is an edit of benchmarks/baseline.json in the diff (written with
`--write-baseline`, reason in the commit message). The baseline records the versions of the
libraries that make those bytes (Python, numpy, blosc, blosc2, mrcz, zstandard, lz4): when
they differ from the environment's, the deterministic values are compared with the base run
instead, and the gate says so (the gate measures code, not dependency updates). Timings and
peak RSS (peakmem_) depend on the machine, so they stay a same-run comparison with the base.

Both sides run in the SAME Python environment (`asv run --python=same`): the base's
`mrczbench/` package is extracted with `git archive` into a temporary folder and put first on
PYTHONPATH; the new side is the checkout itself. Both run today's benchmarks/ (as `asv
continuous` does). Results go to a temporary folder (`--keep DIR` keeps them for `asv
compare` / `asv publish`), tagged with the two commit hashes (`--set-commit-hash`).
Why not `asv continuous`: it builds a wheel and a fresh virtualenv per commit (numpy, pandas,
blosc2, ... : minutes per commit, and network). The gate measures code changes only; a change
of dependency versions is not what it compares.

Rules (issue 19):
- track_* (ratio, stored bytes, efficiency, bound): deterministic, so ANY regression from the
  baseline fails (larger ratio/bytes, smaller efficiency), beyond float rounding; a value
  better than the baseline passes with a note (write the baseline to lock it in); a track_
  benchmark with no baseline value fails (add it with --write-baseline). Exception:
  track_*peak* (traced memory, MiB) is a memory measure and gets the memory tolerance.
- peakmem_* (and track_*peak*): fail when more than --memory-tolerance (10 %) larger.
- time_*: 5 samples a side. Changes beyond 10 % that pass asv's significance test are
  reported. Benchmarks slower than --factor (1.5x) and significant are re-run alone, base
  and new interleaved for three rounds (18 samples a side); only a regression that the re-run
  confirms fails: median AND fastest sample both slower than --factor, and significant
  (Mann-Whitney U), so a burst of load on a shared machine does not.
- A benchmark that fails on the new side fails the gate (every benchmark runs once on the
  new side with MRCZBENCH_ASV_STRICT=1, so this also is the smoke test). Benchmarks the base
  cannot run (a module it lacks: "n/a") are reported, not compared.
- An intended regression: a line `asv-gate-accept: REGEX` in HEAD's commit message turns
  regressions of the benchmarks whose full name (with parameters) matches into "accepted".

Exit status: 0 green, 1 regression or benchmark failure, 2 the gate itself could not run.
Usage: python benchmarks/scripts/asv_gate.py [--base REV] [--keep DIR] [-b REGEX]
       python benchmarks/scripts/asv_gate.py --write-baseline [-b REGEX]
(see .ci/asv-gate, which falls back to the smoke run when HEAD has no parent). With -b,
--write-baseline replaces only the matching entries and keeps the others.
"""
import argparse
import importlib.metadata
import json
import platform
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLOAT_EPS = 1e-9  # relative: float rounding of a deterministic metric, not a change
HIGHER_IS_BETTER = ("track_efficiency",)  # every other metric: lower is better
FIRST_PASS = ["-a", "repeat=5", "-a", "rounds=1", "-a", "warmup_time=0.05"]
RERUN_PASS = ["-a", "repeat=6", "-a", "rounds=1", "-a", "warmup_time=0.05"]
BASELINE = ROOT / "benchmarks" / "baseline.json"
# The libraries whose versions decide the deterministic values (the bytes blosc writes, the
# Poisson data numpy draws, python-mrcz's files, the allocations tracemalloc sees).
BASELINE_LIBRARIES = ("numpy", "blosc", "blosc2", "mrcz", "zstandard", "lz4")
RERUN_ROUNDS = 3  # base, new, base, new, base, new: a burst of load hits both sides
REPORT_FACTOR = 1.1  # time changes listed in the report (the failing factor is --factor)


class GateError(Exception):
    """The gate itself could not run (not a regression)."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="HEAD~1", help="base commit (default HEAD~1)")
    parser.add_argument("--factor", type=float, default=1.5,
                        help="time_ slow-down that fails, once confirmed (default 1.5)")
    parser.add_argument("--memory-tolerance", type=float, default=0.10,
                        help="peak-memory growth that fails (default 0.10 = 10 %%)")
    parser.add_argument("-b", "--bench", default=None,
                        help="only benchmarks matching this regex (default: all)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the results and config in this new folder")
    parser.add_argument("--baseline", type=Path, default=BASELINE,
                        help="the committed deterministic values (default "
                             "benchmarks/baseline.json)")
    parser.add_argument("--write-baseline", action="store_true",
                        help="run the track_ benchmarks on the working tree and write their "
                             "values to --baseline (with -b: only the matching entries)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        if args.write_baseline:
            write_baseline(args)
            return 0
        verdict = Gate(args).run()
    except GateError as exc:
        print(f"asv-gate: ERROR: {exc}", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - start
    state = "ok" if verdict.ok else "FAILED"
    print(f"asv-gate: {state} ({verdict.summary}; {elapsed:.0f}s)",
          file=sys.stdout if verdict.ok else sys.stderr)
    return 0 if verdict.ok else 1


def git(*args) -> str:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise GateError(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


class Verdict:
    def __init__(self):
        self.failures = []
        self.counts = {"track": 0, "memory": 0, "time": 0}
        self.notes = []

    @property
    def ok(self):
        return not self.failures

    @property
    def summary(self):
        compared = ", ".join(f"{n} {kind}" for kind, n in self.counts.items())
        return f"{compared} compared; {len(self.failures)} regression(s)/failure(s)"


class Gate:
    def __init__(self, args):
        self.args = args
        self.base = git("rev-parse", "--verify", "-q", f"{args.base}^{{commit}}")
        self.new = git("rev-parse", "--verify", "HEAD^{commit}")
        if self.base == self.new:
            raise GateError(f"--base {args.base} is HEAD itself: nothing to compare")
        if git("status", "--porcelain", "--untracked-files=no"):
            print("asv-gate: note: the working tree has uncommitted changes; they are "
                  f"measured as {self.new[:8]}")
        message = git("log", "-1", "--format=%B", self.new)
        accepted = re.findall(r"^asv-gate-accept:\s*(.+?)\s*$", message, re.MULTILINE)
        self.accept = re.compile("|".join(f"(?:{a})" for a in accepted)) if accepted else None
        self.baseline = usable_baseline(args.baseline)

    def run(self) -> Verdict:
        keep = self.args.keep
        if keep is not None:
            try:
                keep.mkdir(parents=True)
            except OSError as exc:
                raise GateError(f"--keep {keep}: cannot create a new folder there ({exc})")
            work = keep.resolve()
        else:
            work = Path(tempfile.mkdtemp(prefix="asv-gate-"))
        try:
            self.prepare(work)
            return self.measure(work)
        finally:
            if keep is not None:
                print(f"asv-gate: results kept in {work} "
                      f"(asv compare/publish/preview --config {work / 'asv.conf.json'})")
            else:
                shutil.rmtree(work, ignore_errors=True)

    # ------------------------------------------------------------ setup

    def prepare(self, work: Path):
        from asv import util
        self.sides = {self.base: work / "base", self.new: ROOT}
        (work / "base").mkdir()
        archive = subprocess.run(["git", "archive", self.base, "mrczbench"], cwd=ROOT,
                                 capture_output=True, check=False)
        if archive.returncode != 0:
            raise GateError(f"git archive {self.base[:8]} mrczbench: "
                            f"{archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", str(work / "base")], input=archive.stdout, check=True)
        for name in ("results", "rerun"):
            conf = util.load_json(str(ROOT / "asv.conf.json"), js_comments=True)
            conf.update(repo=str(ROOT), benchmark_dir=str(ROOT / "benchmarks"),
                        results_dir=str(work / name), html_dir=str(work / f"html-{name}"),
                        env_dir=str(work / "env"),
                        # CI may check out a detached commit with no "main" branch.
                        branches=["HEAD"])
            (work / f"{name}.conf.json").write_text(json.dumps(conf, indent=1))
        # The copy the developer keeps: its results are the first pass.
        os.replace(work / "results.conf.json", work / "asv.conf.json")
        for commit, tree in self.sides.items():
            self.check_import(commit, tree)
        self.asv(work, "machine", "--yes", config=None, quiet=True)

    def env(self, tree: Path, strict: bool) -> dict:
        env = dict(os.environ)
        path = os.pathsep.join([str(tree)] + [p for p in
                                              env.get("PYTHONPATH", "").split(os.pathsep) if p])
        # asv drops PYTHONPATH from the benchmark processes and uses ASV_PYTHONPATH instead.
        env["PYTHONPATH"] = env["ASV_PYTHONPATH"] = path
        # benchmarks.optional() checks each mrczbench module it imports comes from here.
        env["MRCZBENCH_ASV_TREE"] = str(tree)
        env.pop("MRCZBENCH_ASV_STRICT", None)
        if strict:
            env["MRCZBENCH_ASV_STRICT"] = "1"
        return env

    def check_import(self, commit: str, tree: Path):
        """Both sides must import their own mrczbench, not the installed one."""
        out = subprocess.run([sys.executable, "-c", "import mrczbench; print(mrczbench.__file__)"],
                             env=self.env(tree, False), capture_output=True, text=True, cwd="/")
        found = Path(out.stdout.strip() or "?").resolve()
        if out.returncode != 0 or tree.resolve() not in found.parents:
            raise GateError(f"{commit[:8]}: mrczbench imports from {found}, not from {tree} "
                            f"({out.stderr.strip()[-200:]})")

    def asv(self, work, *args, config="asv.conf.json", env=None, check=True,
            quiet=False) -> int:
        cmd = [sys.executable, "-m", "asv", args[0]]
        if config:
            cmd += ["--config", str(work / config)]
        cmd += args[1:]
        print("asv-gate: $", " ".join(cmd[1:]), flush=True)
        status = subprocess.run(cmd, cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL if quiet else None).returncode
        if check and status not in (0, 2):  # 2: a benchmark failed (judged from the results)
            raise GateError(f"asv {args[0]} exited {status}")
        return status

    def run_side(self, work, commit, bench, extra, config="asv.conf.json", append=False):
        strict = commit == self.new
        args = ["run", "--python=same", "--set-commit-hash", commit, "--launch-method",
                "forkserver", "--show-stderr", "-b", bench, *extra]
        if append:
            args.append("--append-samples")
        return self.asv(work, *args, config=config, env=self.env(self.sides[commit], strict))

    # ------------------------------------------------------------ measuring

    def measure(self, work: Path) -> Verdict:
        verdict = Verdict()
        only = self.args.bench
        lookahead = f"(?=.*(?:{only}))" if only else ""
        quick = rf"^{lookahead}.*\.(track_|peakmem_)"
        # With a usable baseline the base needs no track_ run: its values are in the file.
        base_quick = rf"^{lookahead}.*\.peakmem_" if self.baseline else quick
        timed = rf"^{lookahead}.*\.time_"
        failed_new = 0
        names = benchmark_names()
        passes = ((quick, base_quick, ["--quick"]),
                  (timed, timed, FIRST_PASS + ["--record-samples"]))
        for new_bench, base_bench, extra in passes:
            for commit, bench in ((self.base, base_bench), (self.new, new_bench)):
                if not any(re.search(bench, name) for name in names):
                    continue  # asv exits 1 on "No benchmarks selected"
                status = self.run_side(work, commit, bench, extra)
                failed_new += status != 0 and commit == self.new
        base, new = load(work / "results", self.base), load(work / "results", self.new)
        if self.baseline:
            self.check_baseline_coverage(new, verdict)
        if not new:
            raise GateError(f"no results for {self.new[:8]}: no benchmark matched or ran")
        if base and all(value is None for value, _, _ in base.values()) and not self.baseline:
            raise GateError(f"every benchmark failed on the base {self.base[:8]} "
                            "(see its output above): nothing to compare against")
        self.asv(work, "compare", "--split", "--factor", str(REPORT_FACTOR), "--only-changed",
                 self.base, self.new, check=False)
        flagged = self.judge(base, new, verdict)
        if flagged:
            self.rerun(work, flagged, verdict)
        if failed_new:
            verdict.notes.append("asv reported failed benchmarks on the new side")
        for note in verdict.notes:
            print(f"asv-gate: note: {note}")
        for failure in verdict.failures:
            print(f"asv-gate: REGRESSION {failure}", file=sys.stderr)
        return verdict

    def judge(self, base: dict, new: dict, verdict: Verdict) -> list:
        """Apply the deterministic and memory rules; return the time_ benchmarks to re-run."""
        from asv import _stats
        flagged = []
        for name in sorted(new):
            value, stats, samples = new[name]
            old = base.get(name)
            kind = kind_of(name)
            deterministic = is_track(name)
            if deterministic and self.baseline:
                recorded = self.baseline["values"].get(name)
                old = None if recorded is None else (recorded, None, None)
            if value is None:
                if old is not None and old[0] is not None:
                    self.fail(verdict, name, "failed on the new side (ran on the base)")
                else:
                    self.fail(verdict, name, "failed on the new side")
                continue
            if old is None or old[0] is None or _isnan(old[0]) or _isnan(value):
                continue  # not run (n/a, new benchmark) on one side: nothing to compare
            verdict.counts[kind] += 1
            change = relative_change(name, old[0], value)
            against = "baseline" if deterministic and self.baseline else "base"
            if kind == "track" and change > FLOAT_EPS:
                self.fail(verdict, name, f"{against} {old[0]:.6g} -> {value:.6g} "
                                         f"({change:+.2%} worse; deterministic metric)")
            elif kind == "track" and self.baseline and change < -FLOAT_EPS:
                # (traced peaks move by a few hundred bytes between runs: no note for them)
                verdict.notes.append(f"{name}: {old[0]:.6g} -> {value:.6g}, better than the "
                                     "baseline: write it (--write-baseline) to lock it in")
            elif kind == "memory" and change > self.args.memory_tolerance:
                self.fail(verdict, name, f"{against} {old[0]:.6g} -> {value:.6g} ({change:+.1%}, "
                                         f"tolerance {self.args.memory_tolerance:.0%})")
            elif kind == "time":
                ratio = value / old[0] if old[0] > 0 else math.inf
                significant = (stats is not None and old[1] is not None
                               and _stats.is_different(old[2], samples, old[1], stats))
                if ratio > self.args.factor and significant:
                    flagged.append(name)
                    print(f"asv-gate: {name}: {ratio:.2f}x slower (significant): re-running")
        return flagged

    def rerun(self, work: Path, flagged: list, verdict: Verdict):
        from asv import _stats
        # asv matches -b against "name(param, ...)" too, so only the flagged combinations run.
        bench = "^(" + "|".join(re.escape(name) for name in flagged) + ")$"
        for round_ in range(RERUN_ROUNDS):
            for commit in (self.base, self.new):
                self.run_side(work, commit, bench, RERUN_PASS + ["--record-samples"],
                              config="rerun.conf.json", append=round_ > 0)
        base, new = load(work / "rerun", self.base), load(work / "rerun", self.new)
        for name in flagged:
            old, cur = base.get(name), new.get(name)
            if not old or not cur or old[0] is None or cur[0] is None:
                self.fail(verdict, name, "re-run failed")
                continue
            ratio = cur[0] / old[0] if old[0] > 0 else math.inf
            # Load only ever adds time, so the fastest sample of each side is the least
            # disturbed: a real slow-down shows in it too, a burst of load rarely does.
            fastest = (min(cur[2]) / min(old[2]) if old[2] and cur[2] and min(old[2]) > 0
                       else ratio)
            significant = _stats.is_different(old[2], cur[2], old[1], cur[1])
            what = (f"{old[0] * 1e3:.3g} ms -> {cur[0] * 1e3:.3g} ms ({ratio:.2f}x, fastest "
                    f"{fastest:.2f}x, re-run with {len(cur[2] or [])} samples a side)")
            if ratio > self.args.factor and fastest > self.args.factor and significant:
                self.fail(verdict, name, what)
            else:
                verdict.notes.append(f"{name}: not confirmed by the re-run: {what}")

    def check_baseline_coverage(self, new: dict, verdict: Verdict):
        """Every track_ benchmark that ran needs a baseline value; entries the run should
        have produced but did not are stale."""
        values = self.baseline["values"]
        for name, (value, _, _) in sorted(new.items()):
            if is_track(name) and name not in values and value is not None and not _isnan(value):
                self.fail(verdict, name, f"no value in {display(self.args.baseline)}: add it "
                                         "with `python benchmarks/scripts/asv_gate.py "
                                         "--write-baseline`")
        if self.args.bench is None:
            stale = sorted(set(values) - set(new))
            if stale:
                verdict.notes.append(f"{len(stale)} baseline entries no benchmark produced "
                                     f"(e.g. {stale[0]}): rewrite the baseline to drop them")

    def fail(self, verdict: Verdict, name: str, what: str):
        if self.accept is not None and self.accept.search(name):
            verdict.notes.append(f"{name}: {what}: accepted by asv-gate-accept in the commit")
        else:
            verdict.failures.append(f"{name}: {what}")


def is_track(name: str) -> bool:
    """A deterministic metric: compared with the committed baseline."""
    return name.split("(")[0].rsplit(".", 1)[-1].startswith("track_")


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def environment_versions() -> dict:
    versions = {"python": platform.python_version()}
    for library in BASELINE_LIBRARIES:
        try:
            versions[library] = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            versions[library] = None
    return versions


def read_baseline(path: Path):
    """The baseline file's content, or None when there is none; GateError when unreadable."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise GateError(f"{display(path)} is not a readable baseline ({exc}); rewrite it with "
                        "`python benchmarks/scripts/asv_gate.py --write-baseline`")
    if (not isinstance(data, dict) or not isinstance(data.get("values"), dict)
            or not isinstance(data.get("versions"), dict)
            or not all(isinstance(v, (int, float)) for v in data["values"].values())):
        raise GateError(f"{display(path)} is not a baseline (want {{versions: {{...}}, values: "
                        "{name: number}}); rewrite it with --write-baseline")
    return data


def usable_baseline(path: Path):
    """The baseline when its library versions match this environment, else None (said)."""
    data = read_baseline(path)
    if data is None:
        print(f"asv-gate: note: no baseline at {display(path)}: deterministic values are "
              "compared with the base commit only (write one with --write-baseline)")
        return None
    here = environment_versions()
    differ = {k: (data["versions"].get(k), v) for k, v in here.items()
              if data["versions"].get(k) != v}
    if differ:
        what = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in sorted(differ.items()))
        print(f"asv-gate: note: {display(path)} was written with other library versions "
              f"({what}): deterministic values are compared with the base commit instead; "
              "rewrite the baseline in this environment if the change is the libraries'")
        return None
    print(f"asv-gate: deterministic values are compared with {display(path)} "
          f"({len(data['values'])} values)")
    return data


def write_baseline(args):
    """Run the track_ benchmarks on the working tree and write their values (atomically)."""
    only = args.bench
    lookahead = f"(?=.*(?:{only}))" if only else ""
    bench = rf"^{lookahead}.*\.track_"
    if not any(re.search(bench, name) for name in benchmark_names()):
        raise GateError(f"no track_ benchmark matches -b {only!r}")
    old = read_baseline(args.baseline) if only else None
    work = Path(tempfile.mkdtemp(prefix="asv-baseline-"))
    try:
        from asv import util
        conf = util.load_json(str(ROOT / "asv.conf.json"), js_comments=True)
        conf.update(repo=str(ROOT), benchmark_dir=str(ROOT / "benchmarks"),
                    results_dir=str(work / "results"), html_dir=str(work / "html"),
                    env_dir=str(work / "env"), branches=["HEAD"])
        (work / "asv.conf.json").write_text(json.dumps(conf, indent=1))
        commit = git("rev-parse", "--verify", "HEAD^{commit}")
        env = dict(os.environ)
        env["PYTHONPATH"] = env["ASV_PYTHONPATH"] = os.pathsep.join(
            [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        env["MRCZBENCH_ASV_TREE"] = str(ROOT)
        env["MRCZBENCH_ASV_STRICT"] = "1"
        config = ["--config", str(work / "asv.conf.json")]
        subprocess.run([sys.executable, "-m", "asv", "machine", "--yes", *config], cwd=ROOT,
                       stdout=subprocess.DEVNULL, check=True)
        status = subprocess.run([sys.executable, "-m", "asv", "run", *config, "--python=same",
                                 "--quick", "--set-commit-hash", commit, "--launch-method",
                                 "forkserver", "--show-stderr", "-b", bench],
                                cwd=ROOT, env=env).returncode
        values = {name: value for name, (value, _, _) in load(work / "results", commit).items()
                  if is_track(name)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    broken = sorted(name for name, value in values.items() if value is None)
    if status not in (0, 2) or broken or not values:
        raise GateError(f"the track_ benchmarks did not all run (asv exit {status}; failed: "
                        f"{', '.join(broken) or 'none'}): baseline not written")
    values = {name: value for name, value in values.items() if not _isnan(value)}
    if old is not None:
        values = {**old["values"], **values}
    data = {"written_by": "python benchmarks/scripts/asv_gate.py --write-baseline",
            "versions": environment_versions(),
            "values": dict(sorted(values.items()))}
    args.baseline.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.baseline.with_name(f".{args.baseline.name}.tmp")
    temporary.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(temporary, args.baseline)
    print(f"asv-gate: wrote {len(values)} values to {display(args.baseline)}")


def benchmark_names() -> list:
    """The names asv discovers in benchmarks/ (importing it imports no mrczbench module)."""
    from asv_runner.discovery import disc_benchmarks
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return [bench.name for bench in disc_benchmarks(str(ROOT / "benchmarks"))]


def kind_of(name: str) -> str:
    method = name.split("(")[0].rsplit(".", 1)[-1]
    if method.startswith("peakmem_") or (method.startswith("track_") and "peak" in method):
        return "memory"
    if method.startswith("track_"):
        return "track"
    return "time"


def relative_change(name: str, old: float, new: float) -> float:
    """How much worse new is than old, relative (> 0 worse, <= 0 same or better)."""
    method = name.split("(")[0].rsplit(".", 1)[-1]
    worse = old - new if method.startswith(HIGHER_IS_BETTER) else new - old
    return worse / abs(old) if old else (math.inf if worse > 0 else 0.0)


def _isnan(value) -> bool:
    return isinstance(value, float) and value != value


def load(results_dir: Path, commit: str) -> dict:
    """{"bench.Class.method(param, ...)": (value, stats, samples)} for one commit."""
    from asv.commands.compare import unroll_result
    from asv.results import iter_results_for_machine_and_hash
    machines = [p.name for p in results_dir.iterdir() if p.is_dir()] if results_dir.exists() else []
    out = {}
    for machine in machines:
        for result in iter_results_for_machine_and_hash(str(results_dir), machine, commit):
            for key in result.get_all_result_keys():
                params = result.get_result_params(key)
                for name, value, stats, samples in unroll_result(
                        key, params, result.get_result_value(key, params),
                        result.get_result_stats(key, params),
                        result.get_result_samples(key, params)):
                    out[name] = (value, stats, samples)
    return out


if __name__ == "__main__":
    sys.exit(main())
