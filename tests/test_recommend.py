"""`mrczbench recommend`: the transfer/storage model on hand-computed cases, the ranking by
goal, the readers constraint, thread extrapolation, bad input, and one real focused sweep."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mrczbench import load_results, mrcz
from mrczbench.analysis import recommend as model
from mrczbench.store import make_row
from mrczbench.cli import main
from mrczbench.errors import MrczbenchError

from conftest import one_error_line

MIB = 2 ** 20


def scenario(**changes) -> model.Scenario:
    values = dict(detector="counting", dose=1.0, shape=(1024, 1024), frames=10, bytes_per_pixel=1,
                  movies_per_hour=360.0, link_gbps=0.1, link_fraction=0.5, storage_cost=150.0,
                  hours_per_year=1000.0, writer_cores=2, reader_cores=2, goal="transfer",
                  readers=("any",), allow_conversion=False, headroom=0.25)
    values.update(changes)
    return model.Scenario(**values)


def candidate(ratio=0.25, write=100.0, read=200.0, config=None, native=True) -> model.Candidate:
    return model.Candidate("c", config or {"format": "mrcz"}, ratio, 1.0,
                           model.Speed(write, "write"), model.Speed(read, "read_warm"), native)


def test_model_matches_hand_computed_case():
    e = model.evaluate(candidate(), scenario())
    # 10 MiB raw; 2.5 MiB stored over 0.1 Gbit/s x 0.5 = 6.25e6 bytes/s
    assert e.write_s == pytest.approx(10 / 100)
    assert e.send_s == pytest.approx(10 * MIB * 0.25 / 6.25e6)
    assert e.read_s == pytest.approx(10 / 200)
    assert e.transfer_s == pytest.approx(max(0.1, 0.4194304) + 0.05)
    assert e.keeps_up  # interval 10 s: write 0.1 <= 7.5, send 0.42 <= 10
    assert e.margin == pytest.approx(1 - 0.4194304 / 10)
    assert e.tb_per_year == pytest.approx(10 * MIB * 0.25 * 360 * 1000 / 1e12)
    assert e.cost_per_year == pytest.approx(e.tb_per_year * 150)


def test_model_keep_up_uses_headroom_and_link():
    # write 8 s of a 10 s interval: over the 75 % the headroom leaves
    assert not model.evaluate(candidate(write=10 / 8), scenario()).keeps_up
    # a link too slow for one movie per interval
    assert not model.evaluate(candidate(ratio=1.0), scenario(link_gbps=0.001)).keeps_up


def test_conversion_cost_counts_for_non_native_formats():
    e = model.evaluate(candidate(native=False), scenario(), plain_write_mibs=500.0)
    assert e.convert_s == pytest.approx(10 / 200 + 10 / 500)
    assert e.transfer_s == pytest.approx(0.4194304 + 0.05 + e.convert_s)


def test_speed_extrapolation_is_marked_and_follows_amdahl():
    measured = model.speed_at({1: 100.0, 2: 180.0}, 2, "write", False)
    assert measured.mib_per_s == 180.0 and measured.note == ""
    # Karp-Flatt serial fraction of 1 -> 2 threads at 1.8x: 1/9; Amdahl at 4: 3.0x vs 1.8x
    beyond = model.speed_at({1: 100.0, 2: 180.0}, 4, "write", False)
    assert beyond.mib_per_s == pytest.approx(300.0)
    assert "Amdahl" in beyond.note
    single = model.speed_at({2: 100.0}, 4, "write", False)
    assert single.mib_per_s == pytest.approx(170.0) and "0.7" in single.note
    between = model.speed_at({1: 100.0, 4: 400.0}, 2, "write", False)
    assert between.mib_per_s == pytest.approx(200.0) and "interpolated" in between.note
    fewer = model.speed_at({4: 400.0}, 2, "write", False)
    assert fewer.mib_per_s == pytest.approx(200.0) and "linearly" in fewer.note
    ignored = model.speed_at({2: 50.0}, 16, "write", True)
    assert ignored.mib_per_s == 50.0 and "ignores threads" in ignored.note


def write_rows(path, contenders, dose=1.0, threads=2, samples=3, spread=0.0):
    """Real result rows of a run on disk: contenders = {label: (config, ratio, write, read)}."""
    raw = 10 * 3838 * 3710
    lines = []
    for label, (config, ratio, write, read) in contenders.items():
        params = json.dumps({**config, "threads": threads}, sort_keys=True)
        for op, mibs in (("write", write), ("read_cold", read)):
            for sample in range(samples):
                mibs_sample = mibs * (1 + spread * (sample / max(1, samples - 1) - 0.5))
                lines.append(make_row(
                    schema=1, run_id="r", suite="s", case_id=f"{label}-{dose}", sample=sample,
                    dataset="d", dataset_kind="poisson", dose=dose, frames=10, ny=3838, nx=3710,
                    dtype="int8", format=config["format"], codec=config.get("codec"),
                    level=config.get("level"), threads=threads, params=params, label=label,
                    raw_bytes=raw, stored_bytes=int(raw * ratio), ratio=ratio, op=op,
                    seconds=raw / MIB / mibs_sample, mib_per_s=mibs_sample, valid=True,
                    lossless=True))
    path.write_text("".join(json.dumps(row) + "\n" for row in lines))
    return load_results(path)


FAST = ({"format": "mrcz", "codec": "lz4", "level": 1}, 0.35, 1500.0, 2500.0)
STRONG = ({"format": "mrcz", "codec": "zstd", "level": 9}, 0.27, 120.0, 400.0)
TIFF = ({"format": "tiff", "compression": "lzw"}, 0.33, 60.0, 90.0)
PLAIN = ({"format": "mrc"}, 1.0, 1000.0, 2000.0)


def k2(**changes):
    values = dict(shape=(3838, 3710), frames=60, movies_per_hour=30.0, link_gbps=1.0,
                  link_fraction=0.63)
    return scenario(**{**values, **changes})


def test_goal_changes_the_choice(tmp_path):
    frame = write_rows(tmp_path / "r.jsonl", {"mrcz lz4-1": FAST, "mrcz zstd-9": STRONG})
    live = model.recommend(frame, k2(goal="live"))["ranked"]
    archive = model.recommend(frame, k2(goal="archive"))["ranked"]
    assert all(e.keeps_up for e in live)
    assert live[0].candidate.label == "mrcz lz4-1"
    assert archive[0].candidate.label == "mrcz zstd-9"
    assert archive[0].candidate.ratio < live[0].candidate.ratio


def test_relion_never_gets_mrcz(tmp_path):
    frame = write_rows(tmp_path / "r.jsonl", {"mrcz lz4-1": FAST, "mrcz zstd-9": STRONG, "tiff lzw": TIFF})
    for goal in model.GOALS:
        ranked = model.recommend(frame, k2(goal=goal, readers=("relion",)))["ranked"]
        assert {e.candidate.config["format"] for e in ranked} == {"tiff"}
    only_mrcz = write_rows(tmp_path / "m.jsonl", {"mrcz lz4-1": FAST})
    with pytest.raises(MrczbenchError, match="relion"):
        model.recommend(only_mrcz, k2(readers=("relion",)))
    converted = model.recommend(frame, k2(readers=("relion",), allow_conversion=True))["ranked"]
    assert any(not e.candidate.native for e in converted)


def test_slow_link_favours_compression_and_a_fast_one_may_not(tmp_path):
    frame = write_rows(tmp_path / "r.jsonl", {"mrc": PLAIN, "mrcz zstd-9": STRONG})
    slow = model.recommend(frame, k2(link_gbps=0.5))["ranked"][0]
    fast = model.recommend(frame, k2(link_gbps=100.0))["ranked"][0]
    assert slow.candidate.label == "mrcz zstd-9"
    assert fast.candidate.label == "mrc"


def test_rows_of_another_dose_are_left_out_and_said(tmp_path):
    frame = write_rows(tmp_path / "r.jsonl", {"mrcz lz4-1": FAST}, dose=4.0)
    with pytest.raises(MrczbenchError, match=r"left out d \(6 rows\): dose 4 e/px/frame, outside ±25%"):
        model.recommend(frame, k2(dose=1.0))
    near = write_rows(tmp_path / "n.jsonl", {"mrcz lz4-1": FAST}, dose=1.2)
    result = model.recommend(near, k2(dose=1.0))
    assert result["ranked"][0].candidate.dose == 1.2
    assert "measured on d" in result["notes"][0] and "dose 1 ±25%" in result["notes"][0]


@pytest.mark.parametrize("argv", [
    ["--dose", "0"], ["--dose", "-1"], ["--dose", "nan"], ["--link-gbps", "0"],
    ["--writer-cores", "0"], ["--reader-cores", "-2"], ["--movies-per-hour", "0"],
    ["--detector", "ccd"], ["--goal", "fastest"], ["--readers", "relion,eman"],
    ["--link-fraction", "1.5"], ["--storage-cost", "-5"],
])
def test_bad_input_exits_2(argv, capsys):
    one_error_line(capsys, ["recommend", *argv], "error")


def test_focused_sweep_end_to_end(tmp_path, monkeypatch):
    """No --results: a real sweep runs on this machine (small frames via --shape), its rows are
    kept next to the recommendation, and --data measures the dose from the movie."""
    monkeypatch.chdir(tmp_path)
    movie = tmp_path / "movie.mrc"
    rng = np.random.default_rng(0)
    mrcz.write(movie, rng.poisson(2.0, (3, 64, 64)).astype(np.int8))
    code = main(["recommend", "--data", str(movie), "--goal", "archive", "--json", "--out", "rec"])
    assert code == 0
    saved = sorted((tmp_path / "rec").glob("recommendation-*.json"))
    document = json.loads(saved[-1].read_text())
    best = document["recommended"]
    assert {"format", "codec", "level", "blocksize", "threads", "ratio"} <= set(best)
    assert 0 < best["ratio"] < 1
    assert math.isclose(document["assumptions"]["dose"], 2.0, rel_tol=0.1)
    assert document["assumptions"]["shape"] == [64, 64]
    assert all(p.endswith(".jsonl") and (tmp_path / p).exists() for p in document["results"])
    ratios = [best["ratio"]] + [a["ratio"] for a in document["alternatives"] if a["keeps_up"]]
    assert best["ratio"] == min(ratios)  # archive: the smallest store that keeps up


def test_default_out_is_under_results(tmp_path, monkeypatch, capsys):
    """Without --out the recommendation goes to results/recommend (ignored by git), not to a
    ./recommend folder left in the checkout."""
    monkeypatch.chdir(tmp_path)
    write_rows(tmp_path / "r.jsonl", {"mrcz lz4-1": FAST, "tiff lzw": TIFF})
    assert main(["recommend", "--results", "r.jsonl", "--json"]) == 0
    assert sorted((tmp_path / "results/recommend").glob("recommendation-*.json"))
    assert not (tmp_path / "recommend").exists()


def test_readers_and_sweep_come_from_the_formats():
    """--readers and the focused sweep are declared on the Format classes (native_readers,
    sweep_contenders), so a new contender needs no list here."""
    from mrczbench.formats import format_class, format_names
    assert model.native_formats("relion") == {
        ("mrc", None), ("mrc-uint4", None), ("tiff", "lzw"), ("tiff", "deflate"), ("tiff", "none"),
        ("bzip2", None), ("lbzip2", None)}
    assert model.native_formats("motioncor") == {
        ("mrc", None), ("tiff", "lzw"), ("tiff", "deflate"), ("tiff", "none")}
    declared = {r for name in format_names() for r in format_class(name).native_readers}
    assert declared <= set(model.READER_SOURCES)  # every program named has its source
    sweep = model.sweep_contenders()
    assert sweep["mrcz zstd-1"] == {"format": "mrcz", "codec": "zstd", "level": 1}
    assert sweep["mrc uint4"] == {"format": "mrc-uint4"}
    assert len(sweep) == 10
    for label, config in sweep.items():  # each is a valid config
        format_class(config["format"]).config_from_dict(
            {k: v for k, v in config.items() if k != "format"})


# --- ties, data matching, stages and "Use it" (issue 28) ----------------------------------------

def test_a_difference_inside_the_intervals_is_a_tie_picked_by_the_stated_rule(tmp_path):
    # zstd-1 (python-mrcz's default) is 2 % slower than zstd-1 at 1 MiB blocks: within the
    # ±10 % spread of 6 samples each, so they tie and the default is picked
    default = ({"format": "mrcz", "codec": "zstd", "level": 1}, 0.26, 980.0, 1470.0)
    blocks = ({"format": "mrcz", "codec": "zstd", "level": 1, "blocksize": 1 << 20}, 0.256,
              1000.0, 1500.0)
    frame = write_rows(tmp_path / "r.jsonl", {"mrcz zstd-1": default, "mrcz zstd-1 bs1M": blocks},
                       samples=6, spread=0.2)
    result = model.recommend(frame, k2(goal="transfer", link_gbps=100.0))
    assert [e.candidate.label for e in result["tied"]] == ["mrcz zstd-1", "mrcz zstd-1 bs1M"]
    assert result["ranked"][0].candidate.label == "mrcz zstd-1"
    assert "tied on transfer time" in result["notes"][0]
    # the same difference measured without noise is not a tie: the faster one wins
    exact = write_rows(tmp_path / "e.jsonl", {"mrcz zstd-1": default, "mrcz zstd-1 bs1M": blocks},
                       samples=6, spread=0.0)
    result = model.recommend(exact, k2(goal="transfer", link_gbps=100.0))
    assert [e.candidate.label for e in result["tied"]] == ["mrcz zstd-1 bs1M"]


def test_stream_baselines_and_warm_reads_are_not_recommended(tmp_path):
    stream = ({"format": "zstd", "level": 1}, 0.30, 900.0, 1500.0)
    frame = write_rows(tmp_path / "r.jsonl", {"zstd-1 stream": stream, "mrcz lz4-1": FAST})
    result = model.recommend(frame, k2())
    assert {e.candidate.label for e in result["ranked"]} == {"mrcz lz4-1"}
    assert any("byte-stream baselines" in note and "zstd-1 stream" in note for note in result["notes"])


def test_snippets_are_usable_for_every_format():
    from mrczbench.analysis import recommend_text as cli
    configs = [PLAIN[0], FAST[0], TIFF[0], {"format": "mrc-uint4"}, {"format": "pcodec", "level": 8},
               {"format": "bzip2", "level": 9}, {"format": "tiff", "compression": "deflate", "level": 6}]
    for config in configs:
        e = model.evaluate(model.Candidate("c", config, 0.3, 1.0, model.Speed(100.0, "write"),
                                           model.Speed(100.0, "read_cold"), True), k2())
        found = cli.snippets(e, k2())
        assert found and all(found.values()), config
    mrcz_snippet = cli.snippets(model.evaluate(candidate(config=FAST[0]), k2()), k2())
    assert mrcz_snippet["python"].startswith("from mrczbench import mrcz; mrcz.write(")
    assert "mrcz.writeMRC(stack, 'movie.mrcz', compressor='lz4', clevel=1" in mrcz_snippet["python-mrcz"]
    plain = cli.snippets(model.evaluate(candidate(config=PLAIN[0]), k2()), k2())
    assert plain["do"].startswith("keep writing plain MRC")
    four_bit = cli.snippets(model.evaluate(candidate(config={"format": "mrc-uint4"}), k2()), k2())
    assert "<= 15" in four_bit["note"] and "mode101=True" in four_bit["python"]


@pytest.fixture(scope="module")
def reference_rows():
    return load_results(REFERENCE)


REFERENCE = __import__("pathlib").Path(__file__).resolve().parents[1] / "results" / "reference"


def reference_scenario(**changes):
    from mrczbench.movies.datasets import load_spec
    preset = load_spec("k2-counting")
    values = dict(shape=tuple(preset.shape), frames=preset.frames, movies_per_hour=60.0,
                  link_gbps=1.0, link_fraction=0.63, dose=1.0, kind="counting", dtype="int8",
                  hours_per_year=6132.0)
    return scenario(**{**values, **changes})


def test_reference_counting_archive_ranks_only_counting_rows(reference_rows):
    result = model.recommend(reference_rows, reference_scenario(goal="archive"))
    labels = {e.candidate.label for e in result["ranked"]}
    assert not any(label.startswith("counts ") for label in labels)  # float32 gain recovery
    assert all(abs(e.candidate.dose - 1.0) <= 0.25 for e in result["ranked"])
    assert result["ranked"][0].candidate.ratio > 0.2  # not a ratio against a float32 movie
    left = " ".join(result["notes"])
    assert "left out k2-gain-normalised" in left and "gain-normalised data" in left
    assert "left out k2-paper-entropy" in left and "dose 2.35" in left


@pytest.mark.parametrize("goal, readers", [(goal, ("any",)) for goal in model.GOALS] +
                         [("transfer", (reader,)) for reader in model.READER_SOURCES] +
                         [("archive", ("relion",))])
def test_reference_every_goal_and_reader_prints_a_usable_use_it(reference_rows, goal, readers):
    from mrczbench.analysis import recommend_text as cli
    result = model.recommend(reference_rows, reference_scenario(goal=goal, readers=readers))
    text = cli.as_text(result)
    use = text.split("Use it:\n")[1].split("\n\n")[0].splitlines()
    assert use and all(": " in line and line.split(": ", 1)[1].strip() for line in use)
    best = result["ranked"][0]
    # the read stage is a cold read or a decode, never a warm page-cache copy
    assert best.candidate.read.op in ("read_cold", "decode")
    # one scenario in every line: the dose printed is the scenario's, the rows' doses match it
    assert "dose 1 e/px/frame" in text and "dose 2.35" not in text.split("! left out")[0]


def test_saved_answers_never_overwrite_each_other(tmp_path):
    from mrczbench.commands import recommend as cli
    first = cli.unique_path(tmp_path, "recommendation", ".json")
    first.write_text("{}")
    second = cli.unique_path(tmp_path, "recommendation", ".json")
    assert second != first and not second.exists()


def test_another_goal_reuses_the_sweep_already_in_out(tmp_path):
    from mrczbench import store as results
    from mrczbench.commands import recommend as cli
    text = cli.sweep_suite(k2(shape=(64, 64)))
    folder = tmp_path / "rec" / "results"
    folder.mkdir(parents=True)
    suite_file = tmp_path / "rec" / "sweep-1.toml"
    suite_file.write_text(text)
    run = folder / "20250101T000000Z-aaaaaa.jsonl"
    run.write_text("")
    results.write_run_metadata(run, {"suite_file": str(suite_file), "finished": "x", "data_files": []})
    assert cli.earlier_sweep(tmp_path / "rec", text, None) == run
    assert cli.earlier_sweep(tmp_path / "rec", text + "#", None) is None   # another sweep
    assert cli.earlier_sweep(tmp_path / "rec", text, ["movie.mrc"]) is None  # other data


def test_archive_sweep_offers_pcodec_when_installed():
    from mrczbench.commands import recommend as cli
    from mrczbench.formats import format_class
    archive = cli.sweep_suite(k2(goal="archive"))
    transfer = cli.sweep_suite(k2(goal="transfer"))
    if format_class("pcodec").unavailable_reason():
        pytest.skip("pcodec is not installed")
    assert '"pcodec-8"' in archive and '"pcodec-8"' not in transfer
    assert 'ops = ["encode", "decode", "write", "read_cold"]' in archive
