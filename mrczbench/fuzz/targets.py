"""The reads under test: each target takes a path and returns what the reader gives back
(an array, a list of arrays, or a parsed object), through the project's public entry points.
They run inside the fuzz worker process, never in the process that runs the fuzzer."""
from __future__ import annotations

import numpy as np

from mrczbench.formats import framed_formats
from mrczbench.fuzz.seeds import EER_GROUPING


def _open_movies():
    from mrczbench.movies.readers import open_movies
    return open_movies


def read_mrc(path):
    from mrczbench import mrcz
    return mrcz.read(path)


def iter_mrc(path):
    from mrczbench import mrcz
    header = mrcz.read_header(path)
    frames = list(mrcz.iter_frames(path))
    if len(frames) != header.shape[0]:
        raise AssertionError(f"iter_frames gave {len(frames)} frames, header says {header.shape[0]}")
    return np.stack(frames)


def movies(path):
    return [movie.read() for movie in _open_movies()(path)]


def eer_movies(path):
    return [movie.read() for movie in _open_movies()(path, eer_grouping=EER_GROUPING)]


def read_framed(path):
    from mrczbench.formats import get_format
    name = next(name for suffix, name in framed_formats().items() if str(path).endswith(suffix))
    return get_format(name).read(path)


def load_suite(path):
    from mrczbench.bench.suites import load_suite as load
    return repr(load(path))


def load_spec(path):
    from mrczbench.movies.datasets import load_spec as load
    return repr(load(path))


def load_results(path):
    from mrczbench.store import load_results as load
    frame = load(path, warn=False)
    return frame.drop(columns=["source_file"]).to_json(orient="records", date_format="iso")


def preload() -> None:
    """Import what the readers import, so the memory limit is set after the libraries load
    and the first input is not charged with import time."""
    import blosc2  # noqa: F401
    import imagecodecs  # noqa: F401
    import mrcfile  # noqa: F401
    import pandas  # noqa: F401
    import tifffile  # noqa: F401

    import mrczbench.store  # noqa: F401
    import mrczbench.bench.suites  # noqa: F401
    import mrczbench.formats.framed  # noqa: F401
    import mrczbench.mrcz  # noqa: F401
    _open_movies()
