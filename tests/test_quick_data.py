"""`run --quick --data MOVIE` on a full-size movie is quick too: the first frames of the movie,
centrally cropped to the quick profile's stack, said at the start and in run.json; a case that
times out names --timeout and its value."""
from __future__ import annotations

import numpy as np
import pytest

from mrczbench import mrcz
from mrczbench import store
from mrczbench.bench.measure import read_subset
from mrczbench.bench.plan import plan_run
from mrczbench.analysis.summary import summary_table
from mrczbench.bench.runner import run_suite
from mrczbench.bench.worker import timeout_message
from mrczbench.movies.readers import open_movies


@pytest.fixture(scope="module")
def big_movie(tmp_path_factory):
    """20 x 1024 x 1024 int8 Poisson counts (20 MiB raw): a user's full-size movie."""
    path = tmp_path_factory.mktemp("movies") / "mymovie.mrc"
    rng = np.random.default_rng(7)
    mrcz.write(path, (rng.poisson(1.0, (1024, 1024)).astype(np.int8) for _ in range(20)))
    return path


def test_quick_data_dose_sweep_uses_cropped_frames_and_finishes(tmp_path, big_movie, capfd):
    out = tmp_path / "out"
    run_path = run_suite("dose-sweep", quick=True, data=[str(big_movie)], out=out,
                         repeats=1, progress=False, summary=True)
    rows = list(store.iter_rows(run_path))
    suite_rows = {row["case_id"] for row in rows}
    assert len(suite_rows) == len(plan_run("dose-sweep", quick=True, data=[str(big_movie)]).cases)
    timed = [row for row in rows if row["seconds"] is not None]
    assert timed, "no case was timed"
    # every row, timed or not, describes the 4 x 256 x 256 crop (the quick profile's stack)
    assert {(row["frames"], row["ny"], row["nx"]) for row in rows if row["frames"]} == {(4, 256, 256)}
    assert {row["raw_bytes"] for row in timed} == {4 * 256 * 256}
    assert {row["dataset"] for row in rows} == {"mymovie"}
    assert not [row["error"] for row in rows if "timed out" in str(row["error"])]
    meta = store.read_run_metadata(run_path)
    assert meta["data_subset"]["frames"] == 4 and meta["data_subset"]["shape"] == [256, 256]
    err = capfd.readouterr().err
    start = next(line for line in err.splitlines() if "first 4 frames" in line)
    assert "central 256 x 256 crop" in start and "without --quick" in start


def test_full_profile_keeps_whole_movies(big_movie):
    plan = plan_run("dose-sweep", data=[str(big_movie)])
    assert plan.data_subset is None
    assert all("subset" not in case.dataset for case in plan.cases)


def test_a_profile_without_a_stack_shape_still_crops(big_movie):
    # the detectors suite's quick datasets are named specs (no frames/shape of its own)
    plan = plan_run("detectors", quick=True, data=[str(big_movie)])
    subset = plan.cases[0].dataset["subset"]
    assert subset["frames"] == 2 and subset["shape"] == [512, 512]


def test_subset_is_the_first_frames_and_a_central_crop(tmp_path):
    # each pixel holds frame * 10000 + y * 100 + x, so the crop's origin can be read back
    frames, ny, nx = 6, 40, 50
    z, y, x = np.meshgrid(np.arange(frames), np.arange(ny), np.arange(nx), indexing="ij")
    stack = (z * 10000 + y * 100 + x).astype(np.float32)
    path = tmp_path / "ramp.mrc"
    mrcz.write(path, stack)
    movie = open_movies([path])[0]
    cut = read_subset(movie, 4, [16, 20])
    np.testing.assert_array_equal(cut, stack[:4, 12:28, 15:35])
    # a movie smaller than the crop, with fewer frames than asked, keeps its own size
    np.testing.assert_array_equal(read_subset(movie, 10, [64, 64]), stack)


def test_a_timed_out_case_names_the_timeout_option_in_its_row_and_the_summary():
    base = dict(run_id="r", suite="s", dataset="mymovie", format="mrcz", label="mrcz zstd-1",
                op="encode", valid=False)
    rows = [store.make_row(case_id="a", error=timeout_message(60), **base),
            store.make_row(case_id="b", error=timeout_message(60), **base)]
    assert "--timeout 60" in rows[0]["error"] and "larger --timeout SECONDS" in rows[0]["error"]
    text = summary_table(rows)
    assert "2 case(s) timed out at the limit of 60 s per case (--timeout 60)" in text
