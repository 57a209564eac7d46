"""mrczbench: benchmark and evaluate compressed cryo-EM movie storage.

Public API:
- `mrczbench.mrcz`: the reference MRCZ codec (read/write/read_header, async variants).
- `mrczbench.load_results(path_or_dir)`: result files → pandas DataFrame.
- `mrczbench.run_suite(name, ...)`: run a benchmark suite from Python.
"""
__version__ = "0.1.0"


def load_results(path_or_dir, **kwargs):
    from mrczbench.store import load_results as _load

    return _load(path_or_dir, **kwargs)


def run_suite(name, **kwargs):
    from mrczbench.bench.runner import run_suite as _run

    return _run(name, **kwargs)
