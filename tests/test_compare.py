"""Tests for `mrczbench compare`: planted regression, planted no-change, too few samples."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mrczbench.analysis import compare
from mrczbench.cli import main
from mrczbench.analysis.results import load_result_files

MIB = 2**20
RAW = 8 * 512 * 512


def case_rows(run_id, case_id, *, label="mrcz zstd-1", codec="zstd", level=1, op="encode",
              seconds=0.010, samples=10, noise=0.02, stored=RAW // 4, seed=0, error=None,
              dataset="poisson-d1"):
    """Schema-v1 rows of one case and op (docs/DESIGN.md)."""
    rng = random.Random(seed)
    params = {"format": "mrcz", "codec": codec, "level": level, "threads": 2}
    base = dict(schema=1, run_id=run_id, suite="dose-sweep", case_id=case_id, dataset=dataset,
                dataset_kind="poisson", dose=1.0, frames=8, ny=512, nx=512, dtype="int8",
                format="mrcz", codec=codec, level=level, blocksize=0, threads=2,
                filter="bitshuffle", params=json.dumps(params), label=label, raw_bytes=RAW,
                stored_bytes=stored, ratio=stored / RAW, bound_ratio=0.23, efficiency=None,
                op=op, loops=10, residency=None, lossless=True, eviction="drop_caches",
                timestamp="2024-05-01T10:00:00Z")
    if error:
        return [{**base, "sample": 0, "seconds": None, "mib_per_s": None, "valid": False,
                 "error": error}]
    rows = []
    for sample in range(samples):
        s = seconds * (1 + rng.uniform(-noise, noise))
        rows.append({**base, "sample": sample, "seconds": s, "mib_per_s": RAW / MIB / s,
                     "valid": True, "error": None})
    return rows


def write_run(folder: Path, run_id: str, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def two_runs(tmp_path, new_zstd_seconds=0.010, new_samples=10, base_samples=10,
             new_stored=RAW // 4, new_error=None):
    """BASE and NEW with a zstd encode case (changed as asked) and an unchanged lz4 case.
    Run ids and case ids differ between the runs: matching must use what is measured."""
    base = write_run(tmp_path / "base", "20240501T100000Z-aaaaaa", [
        *case_rows("20240501T100000Z-aaaaaa", "c1", samples=base_samples, seed=1),
        *case_rows("20240501T100000Z-aaaaaa", "c2", label="mrcz lz4-1", codec="lz4",
                   seconds=0.004, seed=2)])
    new = write_run(tmp_path / "new", "20240502T100000Z-bbbbbb", [
        *case_rows("20240502T100000Z-bbbbbb", "x9", seconds=new_zstd_seconds,
                   samples=new_samples, stored=new_stored, seed=3, error=new_error),
        *case_rows("20240502T100000Z-bbbbbb", "x8", label="mrcz lz4-1", codec="lz4",
                   seconds=0.004, seed=4)])
    return base, new


def table_for(base, new, **options):
    return compare.compare_rows(load_result_files([base]).rows, load_result_files([new]).rows,
                                **options).set_index("contender")


def test_planted_regression_exits_1_and_is_listed(tmp_path, capsys):
    base, new = two_runs(tmp_path, new_zstd_seconds=0.015)  # 50 % slower
    assert main(["compare", str(base), str(new)]) == 1
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("poisson-d1") and "zstd" in l)
    assert "slower" in line and "REGRESSION" in line
    assert "REGRESSION: 1 case/op(s)" in out
    table = table_for(base, new)
    assert table.loc["mrcz zstd-1", "time NEW/BASE"] == pytest.approx(1.5, rel=0.05)
    assert table.loc["mrcz zstd-1", "p"] < 0.001
    assert table.loc["mrcz lz4-1", "time"] == "no significant change"


def test_planted_no_change_exits_0(tmp_path, capsys):
    base, new = two_runs(tmp_path)  # same distribution, other noise
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "new")]) == 0  # folders too
    out = capsys.readouterr().out
    assert "no regression beyond ×1.1" in out
    table = table_for(base, new)
    assert set(table["time"]) == {"no significant change"}
    assert not table["regression"].any()


def test_too_few_samples_is_said_and_never_counts_as_slower(tmp_path, capsys):
    base, new = two_runs(tmp_path, new_zstd_seconds=0.030, new_samples=2, base_samples=2)
    assert main(["compare", str(base), str(new)]) == 0  # the lz4 case was still tested
    assert "insufficient samples" in capsys.readouterr().out
    table = table_for(base, new)
    assert table.loc["mrcz zstd-1", "time"] == "insufficient samples"
    assert table.loc["mrcz zstd-1", "time NEW/BASE"] == pytest.approx(3.0, rel=0.05)  # shown


def test_min_samples_option_lowers_the_bar(tmp_path):
    base, new = two_runs(tmp_path, new_zstd_seconds=0.030, new_samples=4, base_samples=4)
    assert table_for(base, new).loc["mrcz zstd-1", "time"] == "insufficient samples"
    assert table_for(base, new, min_samples=4).loc["mrcz zstd-1", "time"] == "slower"


def test_faster_and_small_changes_within_the_factor_pass(tmp_path):
    base, new = two_runs(tmp_path, new_zstd_seconds=0.007)
    assert table_for(base, new).loc["mrcz zstd-1", "time"] == "faster"
    small = tmp_path / "small"
    base, new = two_runs(small, new_zstd_seconds=0.0106)  # 6 % slower: significant, < 1.1
    table = table_for(base, new)
    assert table.loc["mrcz zstd-1", "time"] == "within factor"
    assert main(["compare", str(base), str(new)]) == 0
    assert main(["compare", str(base), str(new), "--factor", "1.03"]) == 1


def test_larger_on_disk_beyond_factor_is_a_regression(tmp_path):
    base, new = two_runs(tmp_path, new_stored=int(RAW / 4 * 1.2))
    table = table_for(base, new)
    assert table.loc["mrcz zstd-1", "size"] == "larger"
    assert table.loc["mrcz zstd-1", "regression"]
    assert main(["compare", str(base), str(new)]) == 1


def test_a_case_that_now_errors_is_a_regression(tmp_path):
    base, new = two_runs(tmp_path, new_error="round trip not bit-exact")
    assert table_for(base, new).loc["mrcz zstd-1", "time"] == "error in NEW"
    assert main(["compare", str(base), str(new)]) == 1


def test_cases_only_in_one_run_are_listed_and_no_common_case_is_an_error(tmp_path, capsys):
    base, _ = two_runs(tmp_path)
    new = write_run(tmp_path / "other", "r2", case_rows("r2", "c1", level=3, seed=5))
    # a gate comparing runs that share no case tested nothing: it must not pass
    assert main(["compare", str(base), str(new)]) == 2
    captured = capsys.readouterr()
    assert "only in BASE" in captured.out and "only in NEW" in captured.out
    assert "no case in common" in captured.err


def test_missing_or_broken_files_exit_2(tmp_path, capsys):
    base, _ = two_runs(tmp_path)
    assert main(["compare", str(base), str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"schema": 1}\n{oops\n{"schema": 1}\n')
    assert main(["compare", str(base), str(broken)]) == 2


def test_csv_output(tmp_path):
    base, new = two_runs(tmp_path, new_zstd_seconds=0.015)
    out = tmp_path / "cmp.csv"
    assert main(["compare", str(base), str(new), "--csv", str(out)]) == 1
    assert "slower" in out.read_text()


def test_nothing_tested_exits_2_after_the_table(tmp_path, capsys):
    base = write_run(tmp_path / "base", "b", case_rows("b", "c1", samples=3, seed=1))
    new = write_run(tmp_path / "new", "n", case_rows("n", "c1", samples=3, seed=2, seconds=0.03))
    assert main(["compare", str(base), str(new)]) == 2
    captured = capsys.readouterr()
    assert "insufficient samples" in captured.out  # the table is still printed
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1
    assert "nothing was tested: no case has ≥ 5 valid samples on both sides" in errors[0]
    assert "--repeats 5" in errors[0]
    # with --min-samples 3 the case is tested: the t-test on log times finds a 3x slowdown
    # with 3 samples a side (Mann-Whitney could not: its smallest p is then 0.1)
    assert main(["compare", str(base), str(new), "--min-samples", "3"]) == 1
    assert "slower" in capsys.readouterr().out


def test_size_regressions_and_new_errors_gate_even_when_nothing_was_timed(tmp_path):
    base = write_run(tmp_path / "base", "b", case_rows("b", "c1", samples=2, seed=1))
    larger = write_run(tmp_path / "larger", "n", case_rows("n", "c1", samples=2, seed=2,
                                                            stored=int(RAW / 4 * 1.5)))
    assert main(["compare", str(base), str(larger)]) == 1
    broken = write_run(tmp_path / "broken", "n", [
        *case_rows("n", "c1", error="round trip not bit-exact"),
        *case_rows("n", "c2", label="mrcz lz4-1", codec="lz4", samples=2)])
    both = write_run(tmp_path / "both", "b", [
        *case_rows("b", "c1", samples=2), *case_rows("b", "c2", label="mrcz lz4-1", codec="lz4",
                                                     samples=2)])
    assert main(["compare", str(both), str(broken)]) == 1


@pytest.mark.parametrize("alpha", ["2", "1", "0", "-0.1", "nan"])
def test_alpha_must_be_between_0_and_1(tmp_path, capsys, alpha):
    base, new = two_runs(tmp_path)
    assert main(["compare", str(base), str(new), "--alpha", alpha]) == 2
    err = capsys.readouterr().err
    assert "--alpha" in err and "0 < alpha < 1" in err
    with pytest.raises(Exception, match="0 < alpha < 1"):
        table_for(base, new, alpha=float(alpha))


def test_binary_and_metadata_files_are_one_line_errors(tmp_path, capsys):
    base, _ = two_runs(tmp_path)
    noise = tmp_path / "random.mrc"
    noise.write_bytes(bytes(range(256)) * 16)
    assert main(["compare", str(noise), str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err
    assert "random.mrc: not a result file (binary data)" in err and "Traceback" not in err
    meta = tmp_path / "base" / "x.run.json"
    meta.write_text('{"schema": 1}')
    assert main(["compare", str(meta), str(base)]) == 2
    assert "x.run.json is run metadata; pass the .jsonl beside it" in capsys.readouterr().err


def test_runs_on_users_movies_without_a_dose_compare(tmp_path, capsys):
    # --data runs have no dose (null in every row): the match key must still be built
    def users(run_id, seconds):
        rows = case_rows(run_id, "c1", seconds=seconds, seed=3, dataset="movie.tif")
        return [{**row, "dose": None, "dataset_kind": "tiff"} for row in rows]
    base = write_run(tmp_path / "base", "r1", users("r1", 0.010))
    new = write_run(tmp_path / "new", "r2", users("r2", 0.020))
    assert main(["compare", str(base), str(new)]) == 1
    assert "movie.tif" in capsys.readouterr().out
