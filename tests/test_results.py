import json

import pytest

from mrczbench import load_results
from mrczbench import store
from mrczbench.analysis import results
from mrczbench.errors import ResultsError


def sample_row(case_id="c1", sample=0, **extra):
    values = dict(run_id="r1", suite="s", case_id=case_id, sample=sample, dataset="d",
                  op="encode", raw_bytes=2**20, stored_bytes=2**19, seconds=0.5, bound_ratio=0.25)
    values.update(extra)
    return store.make_row(**values)


def test_make_row_fills_every_column_and_derived_values():
    row = sample_row()
    assert list(row) == list(store.COLUMNS)
    assert row["schema"] == store.SCHEMA_VERSION
    assert row["ratio"] == 0.5             # stored/raw, the paper's convention
    assert row["mib_per_s"] == 2.0         # 1 MiB in 0.5 s
    assert row["efficiency"] == 0.5        # bound/ratio
    assert row["valid"] is True
    assert row["timestamp"].endswith("Z")


def test_error_rows_are_invalid_and_one_line():
    row = store.make_row(case_id="c", error="boom\nsecond line")
    assert row["valid"] is False
    assert row["error"] == "boom second line"


def test_unknown_column_is_a_bug():
    with pytest.raises(ValueError, match="unknown result columns"):
        store.make_row(colour="red")


def test_run_file_appends_and_recovers_from_a_cut_last_line(tmp_path):
    path = tmp_path / "run.jsonl"
    with store.RunFile(path) as run:
        run.append([sample_row("a"), sample_row("b")])
    with open(path, "a") as handle:       # a kill in the middle of a write
        handle.write('{"schema": 1, "case_id": "half')
    assert set(store.case_progress(path)) == {"a", "b"}
    with store.RunFile(path) as run:    # resuming cuts the partial line first
        run.append([sample_row("c")])
    assert [r["case_id"] for r in store.iter_rows(path)] == ["a", "b", "c"]


def test_corrupt_line_in_the_middle_names_file_and_line(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps(sample_row()) + "\nnot json\n" + json.dumps(sample_row()) + "\n")
    with pytest.raises(ResultsError, match=r"run.jsonl:2"):
        list(store.iter_rows(path))


def test_other_schema_versions_are_refused(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps({**sample_row(), "schema": 99}) + "\n")
    with pytest.raises(ResultsError, match="schema 99"):
        list(store.iter_rows(path))


def test_load_results_merges_runs_across_files_and_machines(tmp_path):
    for host, run_id in (("alpha", "20250101T000000Z-aaaaaa"), ("beta", "20250102T000000Z-bbbbbb")):
        folder = tmp_path / host / "suite"
        path = folder / f"{run_id}.jsonl"
        with store.RunFile(path) as run:
            run.append([sample_row("c1", run_id=run_id), sample_row("c2", run_id=run_id, error="x")])
        store.write_run_metadata(path, {"run_id": run_id, "suite": "s", "profile": "quick",
                                          "machine": {"hostname": host, "cpu_model": "cpu"}})
    frame = load_results(tmp_path)
    assert len(frame) == 4
    assert set(frame["host"]) == {"alpha", "beta"}
    assert set(frame["run_id"]) == {"20250101T000000Z-aaaaaa", "20250102T000000Z-bbbbbb"}
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert len(load_results(tmp_path, errors=False)) == 2
    single = load_results(next(tmp_path.rglob("*.jsonl")))
    assert len(single) == 2


def test_load_results_errors_are_clear(tmp_path):
    with pytest.raises(ResultsError, match="no such result file"):
        load_results(tmp_path / "missing")
    with pytest.raises(ResultsError, match="no result files"):
        load_results(tmp_path)


def test_run_files_sort_oldest_first_and_metadata_sits_beside_them(tmp_path):
    for run_id in ("20250102T000000Z-000001", "20250101T000000Z-000002"):
        (tmp_path / f"{run_id}.jsonl").write_text("")
    assert [p.name for p in store.run_files(tmp_path)] == [
        "20250101T000000Z-000002.jsonl", "20250102T000000Z-000001.jsonl"]
    assert store.meta_path_for(tmp_path / "x.jsonl").name == "x.run.json"


def test_load_result_files_normalises_rows_and_reads_the_declared_figure(tmp_path):
    path = tmp_path / "r1.jsonl"
    with store.RunFile(path) as run:
        run.append([sample_row("c1", params={"level": 1, "codec": "zstd"}, label=None,
                               format="mrcz", valid=None),
                    sample_row("c2", params='{"codec": "zstd", "level": 1}', label="z",
                               format="mrcz", error="boom")])
    store.write_run_metadata(path, {"run_id": "r1", "suite": "s", "figure": "Table 1",
                                      "started": "2025-03-04T05:06:07Z",
                                      "machine": {"cpu_model": "cpu", "physical_cores": 4,
                                                  "cache_sizes": {"L2": "1024K", "L3": "32M"}}})
    loaded = results.load_result_files([tmp_path])
    rows = loaded.rows.set_index("case_id")
    # equal configs compare equal whatever their key order or type
    assert rows.loc["c1", "params"] == rows.loc["c2", "params"] == '{"codec": "zstd", "level": 1}'
    assert rows.loc["c1", "label"] == "mrcz"          # empty label: the format
    assert bool(rows.loc["c1", "valid"]) and not bool(rows.loc["c2", "valid"])
    assert set(rows["figure"]) == {"Table 1"}
    assert loaded.suites == ["s"]
    machine = loaded.machine
    assert (machine.cpu, machine.physical_cores, machine.l2_bytes, machine.l3_bytes,
            machine.date) == ("cpu", 4, 2**20, 32 * 2**20, "2025-03-04")


def test_binary_files_and_run_metadata_are_refused_with_what_to_pass(tmp_path):
    movie = tmp_path / "m1.mrc"
    movie.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ResultsError, match=r"m1.mrc: not a result file \(binary data\); pass the .jsonl"):
        load_results(movie)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'\xff\xfe{"schema": 1}\n')
    with pytest.raises(ResultsError, match="not a result file"):
        list(store.iter_rows(latin))
    run = tmp_path / "r1.jsonl"
    run.write_text(store.dumps_row(sample_row()) + "\n")
    meta = store.write_run_metadata(run, {"run_id": "r1"})
    with pytest.raises(ResultsError, match=r"r1.run.json is run metadata; pass the .jsonl beside it"):
        load_results(meta)
    with pytest.raises(ResultsError, match="is run metadata"):
        list(store.iter_rows(meta))


def test_cut_off_last_line_is_skipped_counted_and_warned(tmp_path, capsys):
    path = tmp_path / "crashed.jsonl"
    path.write_text(store.dumps_row(sample_row()) + "\n" + store.dumps_row(sample_row("c2"))[:40])
    skipped = {}
    assert len(list(store.iter_rows(path, skipped))) == 1
    assert skipped == {str(path): 1}
    frame = load_results(tmp_path)
    assert len(frame) == 1
    assert frame.attrs["skipped_lines"] == {str(path): 1}
    err = capsys.readouterr().err
    assert "warning" in err and "crashed.jsonl" in err and "skipped 1 cut-off line" in err
