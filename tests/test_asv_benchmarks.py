"""The asv set-up: config loads, discovery finds only benchmarks/bench_*.py (never
benchmarks/scripts/), benchmark modules import no mrczbench submodule at import time, and
the streaming peak-memory benchmark measures something bounded. The benchmarks themselves
run in .ci/asv-smoke."""
import json
import os
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
    stack_bytes = os.path.getsize(tmp_path / "large.mrcz")  # compressed; raw is 64 MiB
    assert stack_bytes > 0
    # Reading all holds the 64 MiB stack; streaming holds about one 1 MiB frame.
    assert peak["peakmem_read_all"] - peak["peakmem_iter_frames"] > 48 * 2**20, peak
