"""Installs and runs anywhere: suites and dataset specs ship in the package, overrides win and
say where each entry came from, an empty search is an error, optional libraries are extras."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mrczbench
from mrczbench import extras, tomlfiles
from mrczbench.bench import suites
from mrczbench.cli import main
from mrczbench.errors import DatasetError, SuiteError
from mrczbench.movies import datasets

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PACKAGE = Path(mrczbench.__file__).resolve().parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"

SMALL_SUITE = """\
description = "{description}"
ops = ["encode", "decode"]
repeats = 1
min_batch_seconds = 0.001
[dataset]
kind = "poisson"
frames = 2
shape = [64, 64]
[contenders]
"mrc" = {{ format = "mrc" }}
{extra_contender}
[sweep]
dose = [1]
contender = [{contenders}]
"""


def small_suite(description="mine", extra_contender="", contenders='"mrc"') -> str:
    return SMALL_SUITE.format(description=description, extra_contender=extra_contender,
                              contenders=contenders)


@pytest.fixture
def no_overrides(tmp_path, monkeypatch):
    """No $MRCZBENCH_SUITES/$MRCZBENCH_DATASETS and an empty per-user config folder."""
    monkeypatch.delenv("MRCZBENCH_SUITES", raising=False)
    monkeypatch.delenv("MRCZBENCH_DATASETS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRCZBENCH_")}
    env.update(extra)
    return env


# --- package data ------------------------------------------------------------------------

def test_suites_and_specs_come_from_the_package_without_overrides(no_overrides, monkeypatch):
    monkeypatch.chdir(no_overrides)  # not the checkout: nothing may depend on the cwd
    found = tomlfiles.named_sources(suites.suite_places(), SuiteError, "suites", suites.SUITES_VAR)
    path, source = found["dose-sweep"]
    assert source == "package"
    assert path.parent == PACKAGE / "bench" / "suite_files"
    assert suites.load_suite("dose-sweep", quick=True).cases()
    specs = datasets.spec_sources()
    assert specs["quick-counting"] == "package"
    assert datasets.spec_paths()["quick-counting"].parent == PACKAGE / "movies" / "specs"
    assert datasets.load_spec("quick-counting").frames > 0


def test_pyproject_ships_every_suite_and_spec_as_package_data():
    config = tomllib.loads(PYPROJECT.read_text())
    package_data = config["tool"]["setuptools"]["package-data"]
    for package, folder in (("mrczbench.bench", "suite_files"), ("mrczbench.movies", "specs")):
        patterns = package_data[package]
        files = list((PACKAGE / package.split(".")[1] / folder).glob("*.toml"))
        assert files
        base = PACKAGE / package.split(".")[1]
        for path in files:
            assert any(path.relative_to(base).match(p) for p in patterns), path


def test_env_folder_overrides_user_folder_overrides_package(no_overrides, monkeypatch, capsys):
    env_dir, user_dir = no_overrides / "env", no_overrides / "config" / "mrczbench" / "suites"
    env_dir.mkdir()
    user_dir.mkdir(parents=True)
    (env_dir / "dose-sweep.toml").write_text(small_suite("from env"))
    (user_dir / "dose-sweep.toml").write_text(small_suite("from user"))
    (user_dir / "my-suite.toml").write_text(small_suite("user only"))
    monkeypatch.setenv("MRCZBENCH_SUITES", str(env_dir))
    assert main(["suites", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert (rows["dose-sweep"]["source"], rows["dose-sweep"]["description"]) == ("$MRCZBENCH_SUITES", "from env")
    assert (rows["my-suite"]["source"], rows["my-suite"]["description"]) == ("user", "user only")
    assert rows["table1"]["source"] == "package"
    assert main(["suites", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "source" in table[0]
    assert any(line.startswith("my-suite") and " user " in line for line in table)
    # a .toml path is read as it is, whatever the search folders hold
    assert suites.find_suite(str(user_dir / "dose-sweep.toml")) == user_dir / "dose-sweep.toml"


def test_dataset_overrides_show_their_source(no_overrides, monkeypatch, capsys):
    user_dir = no_overrides / "config" / "mrczbench" / "datasets"
    user_dir.mkdir(parents=True)
    (user_dir / "my-stack.toml").write_text(
        'description = "mine"\nkind = "poisson"\nframes = 2\nshape = [32, 32]\ndose = 1.0\n')
    env_dir = no_overrides / "env"
    env_dir.mkdir()
    (env_dir / "quick-counting.toml").write_text(
        'description = "env"\nkind = "counting"\nframes = 3\nshape = [32, 32]\ndose = 1.0\n')
    monkeypatch.setenv("MRCZBENCH_DATASETS", str(env_dir))
    sources = datasets.spec_sources()
    assert sources["my-stack"] == "user"
    assert sources["quick-counting"] == "$MRCZBENCH_DATASETS"
    assert sources["quick-eer"] == "package"
    assert datasets.load_spec("quick-counting").frames == 3
    assert main(["datasets", "list", "--cache-dir", str(no_overrides / "cache")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-1] == "source"
    assert any(line.startswith("my-stack") and line.endswith("user") for line in lines)


def test_empty_search_is_an_error_naming_the_overrides(no_overrides, monkeypatch):
    # the package's own files gone (a broken install) and no override
    monkeypatch.setattr(tomlfiles, "package_folder", lambda package, folder: no_overrides / "gone")
    with pytest.raises(SuiteError, match=r"no suites found .*\$MRCZBENCH_SUITES"):
        suites.suite_paths()
    with pytest.raises(DatasetError, match=r"no dataset specs found .*\$MRCZBENCH_DATASETS"):
        datasets.spec_paths()


def test_installed_copy_without_its_data_exits_2_with_one_line(tmp_path):
    """A real copy of the package lacking its .toml files, run from another folder."""
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "mrczbench",
                    ignore=shutil.ignore_patterns("*.toml", "__pycache__"))
    env = subprocess_env(PYTHONPATH=str(site), XDG_CONFIG_HOME=str(tmp_path / "config"))
    for command, variable in ((["suites", "list"], "$MRCZBENCH_SUITES"),
                              (["datasets", "list"], "$MRCZBENCH_DATASETS"),
                              (["run", "--suite", "dose-sweep", "--quick"], "$MRCZBENCH_SUITES")):
        done = subprocess.run([sys.executable, "-m", "mrczbench", *command], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert variable in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    # an override folder makes the same copy work again
    suites_dir = tmp_path / "mine"
    suites_dir.mkdir()
    (suites_dir / "tiny.toml").write_text(small_suite("tiny"))
    done = subprocess.run([sys.executable, "-m", "mrczbench", "suites", "list"], cwd=tmp_path,
                          env={**env, "MRCZBENCH_SUITES": str(suites_dir)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "tiny" in done.stdout and "$MRCZBENCH_SUITES" in done.stdout


# --- optional libraries ------------------------------------------------------------------

def test_every_extra_is_declared_and_all_includes_them():
    optional = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    assert set(extras.EXTRA_OF.values()) <= set(optional)
    everything = optional["all"]
    assert len(everything) == 1 and everything[0].startswith("mrczbench[")
    included = set(everything[0].removeprefix("mrczbench[").rstrip("]").split(","))
    assert included == set(optional) - {"all", "test"}
    required = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    assert not any(r.split(">")[0].split("=")[0].strip() in extras.EXTRA_OF for r in required)


def test_missing_reason_names_the_extra():
    assert extras.missing_reason("json") is None
    assert extras.install_hint("h5py") == "pip install mrczbench[hdf5]"
    assert extras.missing_reason("no_such_module_xyz") == (
        "python package no_such_module_xyz is not installed: pip install no_such_module_xyz")


def test_contender_without_its_library_is_unavailable_and_skipped(tmp_path):
    """h5py made unimportable in a real subprocess (sitecustomize), as in an install without
    the [hdf5] extra: `formats list` says how to get it and a run skips the case."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['h5py'] = None\n")
    root = str(PACKAGE.parent)
    env = subprocess_env(PYTHONPATH=os.pathsep.join([str(hide), root]),
                         XDG_CONFIG_HOME=str(tmp_path / "config"))
    done = subprocess.run([sys.executable, "-m", "mrczbench", "formats", "list", "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    hdf5 = next(f for f in json.loads(done.stdout) if f["name"] == "hdf5")
    assert hdf5["available"] is False
    assert hdf5["unavailable_reason"] == "python package h5py is not installed: pip install mrczbench[hdf5]"

    suite = tmp_path / "h5.toml"
    suite.write_text(small_suite("hdf5 missing", '"h5" = { format = "hdf5" }', '"mrc", "h5"'))
    done = subprocess.run([sys.executable, "-m", "mrczbench", "run", "--suite", str(suite),
                           "--no-progress", "--eviction", "none"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    rows = [json.loads(line) for path in (tmp_path / "results" / "h5").glob("*.jsonl")
            for line in path.read_text().splitlines()]
    skipped = [r for r in rows if r.get("format") == "hdf5" or "h5py" in (r.get("error") or "")]
    assert skipped and all("pip install mrczbench[hdf5]" in r["error"] for r in skipped)
    assert any(r.get("format") == "mrc" and not r.get("error") for r in rows)
