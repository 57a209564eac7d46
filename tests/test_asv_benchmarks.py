"""The asv set-up: config loads, discovery finds only benchmarks/bench_*.py (never
benchmarks/scripts/), benchmark modules import no mrczbench submodule at import time, the
streaming peak-memory benchmarks measure something bounded, and the CI gate
(benchmarks/scripts/asv_gate.py) turns red on a planted compression regression. The
benchmarks themselves run in .ci/asv-gate; the gate's full proof (doubled streaming memory,
a 50 ms sleep in read, three green unchanged runs) is benchmarks/scripts/check_asv_gate.sh,
too long for a test."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_asv_conf_loads():
    config = pytest.importorskip("asv.config")
    conf = config.Config.load(str(ROOT / "asv.conf.json"))
    assert conf.repo == "."
    assert conf.branches == ["main"]
    assert conf.environment_type == "virtualenv"
    assert conf.benchmark_dir == "benchmarks"
    assert conf.results_dir.startswith(".asv") and conf.html_dir.startswith(".asv")


def test_discovery_skips_scripts_folder():
    pytest.importorskip("asv_runner")
    assert not (ROOT / "benchmarks" / "scripts" / "__init__.py").exists()
    code = (
        "import json, sys\n"
        "from asv_runner.discovery import disc_benchmarks\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        f"names = [b.name for b in disc_benchmarks({str(ROOT / 'benchmarks')!r})]\n"
        "mods = sorted(m for m in sys.modules if m.startswith('mrczbench.'))\n"
        "print(json.dumps({'names': names, 'mods': mods}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    names = found["names"]
    assert names, "asv discovered no benchmarks"
    assert all(name.startswith("bench_") for name in names), names
    assert not [name for name in names if "scripts" in name]
    # Importing the suite must not import mrczbench submodules (asv continuous runs today's
    # benchmarks against older commits, which may lack them).
    assert found["mods"] == [], found["mods"]


def test_streaming_peak_memory_is_bounded(tmp_path):
    pytest.importorskip("mrczbench.mrcz")
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from benchmarks.bench_stream import LargeStack\n"
        "bench = LargeStack()\n"
        "bench.setup('large.mrcz')\n"
        "getattr(bench, sys.argv[1])('large.mrcz')\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking parent
        # (pytest, often larger than either reader), which would hide the difference.
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])\n"
    )
    writer = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from benchmarks.bench_stream import LargeStack\n"
        "LargeStack().setup_cache()\n"
    )
    subprocess.run([sys.executable, "-c", writer], cwd=tmp_path, check=True)
    peak = {}
    for name in ("peakmem_iter_frames", "peakmem_read_all"):
        out = subprocess.run([sys.executable, "-c", code, name], cwd=tmp_path,
                             capture_output=True, text=True, check=True)
        peak[name] = int(out.stdout.split()[-1]) * 1024
    traced = {}
    for name in ("track_traced_peak_iter_frames", "track_traced_peak_read_all"):
        out = subprocess.run([sys.executable, "-c", code.replace(
                              "getattr(bench, sys.argv[1])('large.mrcz')",
                              "print(getattr(bench, sys.argv[1])('large.mrcz'))"), name],
                             cwd=tmp_path, capture_output=True, text=True, check=True)
        traced[name] = float(out.stdout.split()[-2])
    # Traced: streaming holds a frame or two (1 MiB each), reading all the 64 MiB stack.
    assert 0.9 < traced["track_traced_peak_iter_frames"] < 8, traced
    assert 63 < traced["track_traced_peak_read_all"] < 80, traced
    stack_bytes = os.path.getsize(tmp_path / "large.mrcz")  # compressed; raw is 64 MiB
    assert stack_bytes > 0
    # Reading all holds the 64 MiB stack; streaming holds about one 1 MiB frame.
    assert peak["peakmem_read_all"] - peak["peakmem_iter_frames"] > 48 * 2**20, peak


def load_gate():
    spec = importlib.util.spec_from_file_location(
        "asv_gate", ROOT / "benchmarks" / "scripts" / "asv_gate.py")
    gate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gate)
    return gate


def test_gate_rules_kind_and_direction():
    gate = load_gate()
    assert gate.kind_of("bench_ratio.Ratio.track_ratio('zstd', 1)") == "track"
    assert gate.kind_of("bench_stream.LargeStack.track_traced_peak_iter_frames") == "memory"
    assert gate.kind_of("bench_stream.LargeStack.peakmem_read_all") == "memory"
    assert gate.kind_of("bench_mrcz.Read.time_read('zstd', 1)") == "time"
    # Larger ratio: worse; higher efficiency: better.
    assert gate.relative_change("bench_ratio.Ratio.track_ratio('zstd', 1)", 0.26, 0.273) > 0.04
    assert gate.relative_change("bench_ratio.Ratio.track_efficiency('zstd', 1)", 0.9, 0.95) < 0
    assert gate.relative_change("bench_ratio.Ratio.track_efficiency('zstd', 1)", 0.9, 0.85) > 0


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
                   cwd=cwd, check=True, capture_output=True)


def gate_repo(tmp_path) -> Path:
    """A git repository of this tree's code, benchmarks, CI scripts, committed baseline and
    README, as one first commit."""
    pytest.importorskip("asv")
    pytest.importorskip("mrczbench.movies.entropy")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("mrczbench", "benchmarks", ".ci"):
        shutil.copytree(ROOT / name, repo / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "asv.conf.json", repo)
    shutil.copy(ROOT / "README.md", repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the tree")
    return repo


def plant_smaller_blocks(repo: Path):
    """blosc's default block cap 64 KiB -> 8 KiB: every zstd file ~5 % larger."""
    source = repo / "mrczbench" / "mrc" / "chunks.py"
    text = source.read_text()
    assert text.count("DEFAULT_BLOCK_CAP = 2**16") == 1
    source.write_text(text.replace("DEFAULT_BLOCK_CAP = 2**16", "DEFAULT_BLOCK_CAP = 2**13"))


def touch_readme(repo: Path, message: str):
    with open(repo / "README.md", "a") as f:
        f.write("\n<!-- a README line -->\n")
    git(repo, "commit", "-q", "-am", message)


def run_gate(repo: Path, *args):
    return subprocess.run([sys.executable, "benchmarks/scripts/asv_gate.py", *args],
                          cwd=repo, capture_output=True, text=True, timeout=900)


def test_gate_sees_a_regression_in_any_commit_since_the_baseline(tmp_path):
    """Three commits: the tree, blosc forced to 8 KiB blocks, a README line. HEAD's parent
    already holds the regression, so only the committed baseline can see it: the gate (on
    the deterministic ratio benchmarks) exits 1 naming the zstd values and nothing of the
    codecs the change does not affect."""
    repo = gate_repo(tmp_path)
    plant_smaller_blocks(repo)
    git(repo, "commit", "-q", "-am", "smaller default block")
    touch_readme(repo, "a README line")
    out = run_gate(repo, "-b", r"Ratio\.")
    regressions = [line for line in out.stderr.splitlines() if "REGRESSION" in line]
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert "compared with benchmarks/baseline.json" in out.stdout, out.stdout[-3000:]
    for metric in ("track_ratio", "track_stored_bytes", "track_efficiency"):
        assert any(f"{metric}('zstd', 1)" in line and "baseline" in line
                   for line in regressions), regressions
    assert not any("blosclz" in line for line in regressions), regressions


def test_gate_is_green_on_an_unchanged_tree(tmp_path):
    repo = gate_repo(tmp_path)
    touch_readme(repo, "a README line")
    out = run_gate(repo, "-b", r"Ratio\.")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "0 regression(s)" in out.stdout
    assert "REGRESSION" not in out.stderr


def test_a_deliberate_baseline_update_passes(tmp_path):
    """The same smaller blocks, committed with the baseline rewritten (only the Ratio
    entries): the gate is green, and the change is visible as a baseline edit."""
    repo = gate_repo(tmp_path)
    before = json.loads((repo / "benchmarks" / "baseline.json").read_text())["values"]
    plant_smaller_blocks(repo)
    written = run_gate(repo, "--write-baseline", "-b", r"Ratio\.")
    assert written.returncode == 0, written.stdout[-3000:] + written.stderr[-3000:]
    git(repo, "commit", "-q", "-am", "smaller default block, baseline updated: 8 KiB blocks")
    touch_readme(repo, "a README line")
    after = json.loads((repo / "benchmarks" / "baseline.json").read_text())["values"]
    assert set(after) == set(before)  # the other entries are kept
    key = "bench_ratio.Ratio.track_stored_bytes('zstd', 1)"
    assert after[key] > before[key]
    assert after["bench_ratio.track_bound_ratio"] == before["bench_ratio.track_bound_ratio"]
    out = run_gate(repo, "-b", r"Ratio\.")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def test_committed_baseline_matches_the_benchmarks():
    """benchmarks/baseline.json lists every track_ benchmark and names its libraries."""
    pytest.importorskip("asv_runner")
    gate = load_gate()
    baseline = gate.read_baseline(gate.BASELINE)
    assert set(baseline["versions"]) == {"python", *gate.BASELINE_LIBRARIES}
    tracks = {name.split("(")[0] for name in baseline["values"]}
    discovered = {name for name in gate.benchmark_names() if gate.is_track(name)}
    assert tracks == discovered


def test_baseline_of_other_library_versions_is_not_used(tmp_path, capsys):
    gate = load_gate()
    baseline = json.loads(gate.BASELINE.read_text())
    baseline["versions"]["blosc"] = "0.0.1"
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(baseline))
    assert gate.usable_baseline(path) is None
    assert "blosc 0.0.1 -> " in capsys.readouterr().out
    path.write_text('{"values": {"a": "x"}, "versions": {}}')
    with pytest.raises(gate.GateError, match="is not a baseline"):
        gate.usable_baseline(path)