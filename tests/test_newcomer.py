"""What a newcomer met on a first pass through the README (issue 26, items 13, 17, 25, 26):
a movie to try `compress` on, --json and --no-progress where the other commands have them,
`info` that tells plain MRC from MRCZ and says when there is nothing to verify, whole counts
in progress lines."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from mrczbench import mrcz
from mrczbench.cli import main
from mrczbench.progress import Progress


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MRCZBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_datasets_generate_out_gives_a_movie_to_compress(here, capsys):
    assert main(["datasets", "generate", "quick-counting", "--out", "movie.mrc", "--no-progress"]) == 0
    movie = mrcz.read("movie.mrc")
    assert movie.shape == (8, 512, 512) and movie.dtype == np.int8
    assert mrcz.read_header("movie.mrc").codec is None  # plain MRC, as the tour's compress wants
    assert capsys.readouterr().err == ""  # --no-progress: nothing on stderr
    assert main(["compress", "movie.mrc", "movie.mrcz"]) == 0
    np.testing.assert_array_equal(mrcz.read("movie.mrcz"), movie)
    # an existing file is never replaced; a name that is no movie is refused
    before = (here / "movie.mrc").read_bytes()
    assert main(["datasets", "generate", "quick-counting", "--out", "movie.mrc"]) == 2
    assert (here / "movie.mrc").read_bytes() == before
    assert main(["datasets", "generate", "quick-counting", "--out", "movie.txt"]) == 2
    assert "--out movie.txt: the name must end in .mrc, .mrcs or .mrcz" in capsys.readouterr().err


def test_datasets_list_json(here, capsys):
    assert main(["datasets", "list", "--json"]) == 0
    listed = {spec["name"]: spec for spec in json.loads(capsys.readouterr().out)}
    assert listed["quick-counting"]["shape"] == [512, 512]
    assert listed["quick-counting"]["raw_bytes"] == 8 * 512 * 512
    assert listed["quick-counting"]["source"] == "package" and listed["quick-counting"]["cached"] is None


def _converted(here):
    for i in range(3):
        mrcz.write(here / f"m{i}.mrc", np.full((2, 8, 8), i, np.int8), codec=None)
    assert main(["convert", "m0.mrc", "m1.mrc", "m2.mrc", "--out", "C", "--jobs", "1",
                 "--no-progress"]) == 0


def test_verify_json_and_progress(here, capsys):
    _converted(here)
    capsys.readouterr()
    assert main(["verify", "C", "--json"]) == 0
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    assert (answer["verified"], answer["movies"], answer["bad"], answer["not_converted"]) == (3, 3, 0, 0)
    assert [m["ok"] for m in answer["movies_checked"]] == [True] * 3
    assert "verify [3/3] 100%" in captured.err  # verify shows progress (off a terminal: a line)
    (here / "C/m1.mrcz").write_bytes(b"garbage")
    assert main(["verify", "C", "--json", "--no-progress"]) == 1
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    assert answer["bad"] == 1 and captured.err == ""
    assert [m["output"] for m in answer["movies_checked"] if not m["ok"]] == ["m1.mrcz"]


def test_progress_counts_are_whole_items():
    stream = io.StringIO()
    progress = Progress(378, "run", stream=stream, interval=0)
    progress.update(111.3, "case")
    assert "[111/378]  29%" in stream.getvalue() and "111.3" not in stream.getvalue()


def test_info_verify_without_checksums_says_so(here, capsys):
    mrcz.write("plain.mrcz", np.ones((3, 8, 8), np.int8), codec="zstd")
    assert main(["info", "plain.mrcz", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "VERIFY FAILED" not in out
    assert "not possible: no checksums stored (written without --checksum); all 3 frames decode" in out
    mrcz.write("sums.mrcz", np.ones((3, 8, 8), np.int8), codec="zstd", checksum=True)
    assert main(["info", "sums.mrcz", "--verify"]) == 0
    assert "3 frames match their stored SHA-256" in capsys.readouterr().out


def test_info_on_plain_mrc_says_it_is_plain_and_warns_of_no_chunks(here, capsys):
    mrcz.write("plain.mrc", np.ones((3, 8, 8), np.int8), codec=None)
    assert main(["info", "plain.mrc", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "plain, uncompressed MRC" in shown["label"]
    assert "chunk" not in shown["checksum"] and "plain MRC stores no checksum" in shown["checksum"]
    mrcz.write("z.mrcz", np.ones((3, 8, 8), np.int8), codec="zstd")
    assert main(["info", "z.mrcz", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["label"] == "MRCZ0.6.0" and "compressed chunk" in shown["checksum"]


@pytest.mark.parametrize("argv", [["fuzz", "--no-progress", "--help"],
                                  ["convert", "--no-progress", "--help"],
                                  ["datasets", "generate", "--no-progress", "--help"]])
def test_no_progress_is_accepted_where_progress_is_printed(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0 and "--no-progress" in capsys.readouterr().out


def test_suites_state_their_measured_duration_per_profile(tmp_path):
    from mrczbench.bench.suites import load_suite
    suite = tmp_path / "timed.toml"
    suite.write_text(TINY_SUITE + '[quick]\nrepeats = 1\n[reference]\nduration = "about 5 min"\n')
    assert load_suite(str(suite)).duration == "about 2 h"
    assert load_suite(str(suite), quick=True).duration == ""  # another workload
    assert load_suite(str(suite), profile="reference").duration == "about 5 min"


def test_a_run_sampled_to_a_precision_states_its_budget_bound(here, capsys):
    """Sampling to a precision makes the length depend on the noise: run says its bound
    (cases x budget) before it starts."""
    (here / "tiny.toml").write_text(TINY_SUITE.replace('duration = "about 2 h"\n', "")
                                    .replace("repeats = 1\n", "repeats = 6\nbudget = 1\n"))
    assert main(["run", "--suite", "tiny.toml", "--out", "R", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "at most about 0:01 of timed rounds (1 cases x a budget of 1 s" in err


TINY_SUITE = """
description = "one small case"
duration = "about 2 h"
ops = ["encode"]
repeats = 1
min_batch_seconds = 0.001
[dataset]
kind = "poisson"
frames = 2
shape = [32, 32]
dose = 1.0
dtype = "int8"
[format]
format = "mrcz"
codec = "lz4"
"""


def test_run_states_the_expected_duration_before_it_starts(here, capsys):
    (here / "tiny.toml").write_text(TINY_SUITE)
    assert main(["run", "--suite", "tiny.toml", "--out", "R"]) == 0
    err = capsys.readouterr().err
    said = err.index("expected duration: about 2 h")
    assert said < err.index("run [")  # before the first progress line


def test_recommend_output_is_git_ignored_and_readme_names_what_ci_runs():
    import subprocess
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", "recommend/sweep.toml"], cwd=root)
    assert ignored.returncode == 0
    readme = (root / "README.md").read_text()
    assert "asv smoke run" not in readme and "asv-gate" in (root / ".ci/run").read_text()
    assert "A contender that\nWith" not in readme
