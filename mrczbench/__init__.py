"""mrczbench: benchmark and evaluate compressed cryo-EM movie storage.

Public API:
- `mrczbench.mrcz`: the reference MRCZ codec (read/write/read_header, async variants).
- `mrczbench.load_results(path_or_dir)`: result files → pandas DataFrame.
- `mrczbench.run_suite(name, ...)`: run a benchmark suite from Python.
"""
from mrczbench.version import __version__  # noqa: F401  (mrczbench.__version__)


def load_results(path_or_dir, **kwargs):
    from mrczbench.store import load_results as _load

    return _load(path_or_dir, **kwargs)


def run_suite(name, **kwargs):
    from mrczbench.analysis.summary import print_summary
    from mrczbench.bench.runner import run_suite as _run

    path = _run(name, **kwargs)
    if kwargs.get("summary", True):
        print_summary(path)
    return path
