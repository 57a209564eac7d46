"""Helpers shared by the test files (import them: `from conftest import ...`).

- poisson_stack: a small movie of Poisson counts, as a counting detector gives them.
- cli_exit / one_error_line: the CLI's main(argv) in this process, argparse's own exits
  included, and the "one error line, exit 2" rule every bad input follows.
- run_cli: the CLI in a child process (`python -m mrczbench`), this checkout imported.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def poisson_stack(shape=(4, 24, 32), dtype=np.int16, dose: float = 2.0, seed: int = 0) -> np.ndarray:
    """(frames, ny, nx) Poisson counts at `dose` per pixel, as `dtype`."""
    return np.random.default_rng(seed).poisson(dose, shape).astype(dtype)


def cli_exit(argv) -> int:
    """main(argv)'s exit code, argparse's SystemExit included."""
    from mrczbench.cli import main
    try:
        return main(list(map(str, argv)))
    except SystemExit as exc:
        return exc.code


def one_error_line(capsys, argv, word: str = "") -> str:
    """Run main(argv), which must exit 2 with exactly one stderr line (no traceback), holding
    `word`; the line."""
    code = cli_exit(argv)
    captured = capsys.readouterr()
    assert code == 2, (argv, captured)
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, (argv, captured.err)
    assert word in captured.err, (argv, captured.err)
    return captured.err


def run_cli(*argv, timeout: float = 60, cwd=None, env=None) -> subprocess.CompletedProcess:
    """`python -m mrczbench ARGV` in a child process (text output captured), importing this
    checkout whatever the current folder."""
    env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "mrczbench", *map(str, argv)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=cwd)
