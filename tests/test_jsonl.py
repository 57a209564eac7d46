"""The one append-only JSON Lines owner (mrczbench.jsonl) and its two users: the run files of
the results store and the conversion manifest."""
import json
import multiprocessing

import pytest

from mrczbench import store
from mrczbench.convert import manifest
from mrczbench.errors import MrczbenchError
from mrczbench.jsonl import CUT_OFF, AppendLog, BadLine, Locked, parse_lines


def test_a_cut_last_line_is_reported_not_an_error():
    text = '{"a": 1}\n{"a": 2}\n{"a": '
    assert list(parse_lines(text)) == [(1, {"a": 1}), (2, {"a": 2}), (3, CUT_OFF)]


def test_a_bad_line_before_the_last_is_an_error_even_at_the_end_of_the_file():
    with pytest.raises(BadLine) as caught:
        list(parse_lines('{"a": 1}\n{"a": \n{"a": 3}\n'))
    assert caught.value.number == 2
    # a whole last line (newline after it) that is not JSON was not cut by a kill
    with pytest.raises(BadLine):
        list(parse_lines('{"a": 1}\nnot json\n'))


def test_appending_after_a_killed_writer_cuts_its_partial_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"a": 1}\n{"a": ')
    with AppendLog(path) as log:
        log.append([{"a": 2}])
    assert [value for _, value in parse_lines(path.read_text())] == [{"a": 1}, {"a": 2}]


def test_run_files_and_the_manifest_share_the_repair(tmp_path):
    run = tmp_path / "r.jsonl"
    with store.RunFile(run) as log:
        log.append([store.make_row(case_id="a")])
    run.write_bytes(run.read_bytes() + b'{"schema": 1, "ca')
    with store.RunFile(run) as log:
        log.append([store.make_row(case_id="b")])
    assert [row["case_id"] for row in store.iter_rows(run)] == ["a", "b"]

    # the manifest: a batch killed mid-record, then resumed (before, the resumed batch's first
    # record was glued to the cut line and the manifest became unreadable)
    with manifest.writer(tmp_path, None) as append:
        append({"output": "one.mrcz", "status": "ok"})
    part = tmp_path / manifest.part_name(None)
    part.write_bytes(part.read_bytes() + b'{"output": "two.mr')
    with manifest.writer(tmp_path, None) as append:
        append({"output": "two.mrcz", "status": "ok"})
    assert sorted(r["output"] for r in manifest.records(tmp_path)) == ["one.mrcz", "two.mrcz"]


def _hold(path, ready, done):
    with AppendLog(path, exclusive=True):
        ready.set()
        done.wait(30)


def test_a_second_exclusive_writer_is_refused(tmp_path):
    path = tmp_path / manifest.part_name(None)
    ready, done = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(path, ready, done))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(Locked):
            AppendLog(path, exclusive=True)
        with pytest.raises(MrczbenchError, match="another conversion is writing this manifest"):
            with manifest.writer(tmp_path, None):
                pass
    finally:
        done.set()
        holder.join(30)


def test_records_are_one_line_each_in_the_callers_format(tmp_path):
    path = tmp_path / "m.jsonl"
    with AppendLog(path, dumps=lambda r: json.dumps(r, sort_keys=True)) as log:
        log.append([{"b": 1, "a": 2}, {"c": 3}])
    assert path.read_text() == '{"a": 2, "b": 1}\n{"c": 3}\n'
