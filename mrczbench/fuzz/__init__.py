"""Fuzz harness: mutated inputs for every reader the project owns, each read in a child
process with a time and memory limit, every outcome classified (see runner.py).

    from mrczbench.fuzz import run_fuzz
    report = run_fuzz(seconds=60, seed=1)   # or max_inputs=3000
    report.counts["mrcz"]["documented-error"], report.findings

`mrczbench fuzz --seconds N --seed S` is the command line (cli.py)."""
from mrczbench.fuzz.runner import EXPECTED, READERS, UNEXPECTED, FuzzReport, Reader, run_fuzz

__all__ = ["run_fuzz", "Reader", "READERS", "FuzzReport", "EXPECTED", "UNEXPECTED"]
