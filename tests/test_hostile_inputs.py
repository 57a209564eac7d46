"""Hostile or mistaken inputs found by an adversarial pass: each is one error line naming
the problem, exit 2, no traceback, and nothing written (issue 26, items 7-11)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mrczbench import mrcz
from mrczbench.cli import main


def one_line_exit_2(argv, capsys, *words):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err
    return err


@pytest.fixture
def movie(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mrcz.write("m.mrc", np.random.default_rng(0).poisson(1, (3, 16, 16)).astype(np.int8), codec=None)
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    (tmp_path / "loopa.mrcz").symlink_to("loopb.mrcz")
    (tmp_path / "loopb.mrcz").symlink_to("loopa.mrcz")
    return tmp_path


def test_symlink_loop_as_input_or_output_of_compress(movie, capsys):
    one_line_exit_2(["compress", "loop1", "out.mrcz"], capsys, "loop1", "symbolic link")
    one_line_exit_2(["compress", "m.mrc", "loopa.mrcz"], capsys, "loopa.mrcz", "symbolic link")
    assert not (movie / "out.mrcz").exists()


DEEP = "[" * 100000 + "]" * 100000
HUGE_INT = '{"schema": 1, "seconds": ' + "9" * 5000 + "}"


@pytest.mark.parametrize("line, problem", [(DEEP, "nested too deeply"), (HUGE_INT, "4300 digits")])
def test_hostile_json_in_results_and_manifests(tmp_path, monkeypatch, capsys, line, problem):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.jsonl").write_text(line + "\n")
    one_line_exit_2(["report", "r.jsonl", "--out", "R"], capsys, "r.jsonl:1", problem)
    one_line_exit_2(["compare", "r.jsonl", "r.jsonl"], capsys, "r.jsonl:1", problem)
    (tmp_path / "C").mkdir()
    (tmp_path / "C/manifest.jsonl").write_text(line + "\n")
    one_line_exit_2(["verify", "C"], capsys, "manifest.jsonl:1", "not a manifest line")
    (tmp_path / "r.run.json").write_text(line)
    (tmp_path / "r.jsonl").write_text("")
    one_line_exit_2(["compare", "r.jsonl", "r.jsonl"], capsys, "r.run.json")


def test_scheduler_file_that_is_not_a_scheduler_file(movie, capsys):
    (movie / "notes.txt").write_text("meeting notes\n")
    (movie / "other.json").write_text(json.dumps({"workers": 2}))
    for name in ("notes.txt", "other.json"):
        one_line_exit_2(["convert", "m.mrc", "--out", "C", "--scheduler", name], capsys,
                        f"--scheduler {name}: not a Dask scheduler file", "tcp://")
    assert not (movie / "C/m.mrcz").exists()


def spec_file(folder, **fields):
    spec = {"kind": "counting", "frames": 4, "shape": [64, 64], "dose": 1.0, "dtype": "int8",
            "seed": 1, **fields}
    text = "".join(f"{k} = {json.dumps(v)}\n" for k, v in spec.items())
    path = folder / f"big-{fields.get('frames', 4)}.toml"
    path.write_text(text)
    return path


def test_a_spec_too_big_for_memory_or_disk_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("MRCZBENCH_CACHE", str(cache))
    wide = spec_file(tmp_path, shape=[1000000, 1000000])
    assert main(["datasets", "show", str(wide)]) == 0
    capsys.readouterr()
    one_line_exit_2(["datasets", "generate", str(wide)], capsys, "of memory", "smaller")
    long = spec_file(tmp_path, frames=10 ** 9, shape=[4096, 4096])
    one_line_exit_2(["datasets", "generate", str(long)], capsys, "free", "--cache-dir")
    assert not cache.exists() or not any(cache.glob("*.mrcz"))


def test_a_suite_with_a_stack_too_big_for_memory_is_refused_before_it_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec = spec_file(tmp_path, shape=[100000, 100000])  # a named spec, not the suite's fields
    (tmp_path / "big.toml").write_text(
        f'ops = ["encode"]\nrepeats = 1\n[dataset]\nname = "{spec}"\n'
        '[format]\nformat = "mrcz"\ncodec = "lz4"\n')
    one_line_exit_2(["run", "--suite", "big.toml", "--out", "R", "--no-progress"], capsys,
                    "of memory", "smaller")
    assert not any((tmp_path / "R").glob("*.jsonl")) if (tmp_path / "R").exists() else True


@pytest.mark.parametrize("command", ["formats", "suites", "datasets"])
def test_a_command_without_its_subcommand_is_one_line(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"mrczbench {command}: error: the following arguments are "
                                f"required: SUBCOMMAND (see 'mrczbench {command} --help')"]
