"""The movies.star that `convert` writes, read back by the `starfile` package, by mrczbench,
and resolved as RELION resolves paths (from the project folder), for RELION 3.0 (one block),
3.1 (optics + movies) and 5 style files; a data block with the movie as a key-value pair is a
one-row table, as in RELION (issue 26, items 5, 5a, 23)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import starfile

from mrczbench import mrcz
from mrczbench.cli import main
from mrczbench.movies import readers

RELION_30 = """data_

loop_
_rlnMicrographMovieName #1
_rlnMagnification #2
_rlnComment #3
Movies/m0.mrc 10000 "two words"
Movies/m1.mrc 10000 'it is'
"""

RELION_31 = """
# version 30001

data_optics

loop_
_rlnOpticsGroupName #1
_rlnOpticsGroup #2
_rlnMicrographOriginalPixelSize #3
opticsGroup1 1 0.885

# version 30001

data_movies

loop_
_rlnMicrographMovieName #1
_rlnOpticsGroup #2
_rlnMicrographMetadata #3
Movies/m0.mrc 1 "Meta/a b.star"
Movies/m1.mrc 1 "Meta/c d.star"
"""

RELION_5 = """
# version 50001

data_optics

loop_
_rlnOpticsGroupName #1
_rlnOpticsGroup #2
_rlnMicrographOriginalPixelSize #3
_rlnVoltage #4
opticsGroup1 1 0.885 300.000000

# version 50001

data_movies

loop_
_rlnMicrographMovieName #1
_rlnOpticsGroup #2
_rlnMicrographDoseRate #3
_rlnComment #4
Movies/m0.mrc 1 1.000000 ""
Movies/m1.mrc 1 1.000000 'a note'
"""

KEY_VALUE = """
# version 50001

data_movies

_rlnMicrographMovieName Movies/m0.mrc
_rlnOpticsGroup 1
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Movies").mkdir()
    for i in range(2):
        mrcz.write(tmp_path / f"Movies/m{i}.mrc", np.full((2, 16, 16), i, np.int8), codec=None)
    return tmp_path


def _table(path):
    """starfile's reading: the movie table (the movies block, or the one block)."""
    data = starfile.read(path, always_dict=True)
    table = data.get("movies", next(iter(data.values())))
    if isinstance(table, dict):  # a key-value block
        import pandas as pd
        table = pd.DataFrame([table])
    return table


@pytest.mark.parametrize("text", [RELION_30, RELION_31, RELION_5], ids=["3.0", "3.1", "5"])
def test_rewritten_star_reads_back_the_same_table_with_paths_relion_resolves(project, text):
    (project / "movies.star").write_text(text)
    before = _table(project / "movies.star")
    assert main(["convert", "movies.star", "--out", "Converted", "--format", "tiff"]) == 0
    written = project / "Converted/movies.star"
    after = _table(written)  # starfile parses it: other quoted values kept quoted
    names = after["rlnMicrographMovieName"].tolist()
    assert names == ["Converted/Movies/m0.tif", "Converted/Movies/m1.tif"]
    for name in names:  # RELION resolves from the project folder (here, the current one)
        assert (project / name).is_file()
    for column in before.columns:
        if column != "rlnMicrographMovieName":
            assert after[column].tolist() == before[column].tolist(), column
    # mrczbench's own reader agrees, and opens the converted movies
    movies = readers.open_movies([written])
    assert [m.path.resolve() for m in movies] == [(project / n).resolve() for n in names]
    # the optics block (3.1, 5) is kept as it was
    if "data_optics" in text:
        assert starfile.read(written, always_dict=True)["optics"].equals(
            starfile.read(project / "movies.star", always_dict=True)["optics"])


def test_out_outside_the_project_gets_absolute_paths(project, tmp_path_factory):
    (project / "movies.star").write_text(RELION_31)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    assert main(["convert", "movies.star", "--out", str(elsewhere), "--format", "tiff"]) == 0
    names = _table(elsewhere / "movies.star")["rlnMicrographMovieName"].tolist()
    assert names == [str(elsewhere / "Movies/m0.tif"), str(elsewhere / "Movies/m1.tif")]


def test_a_key_value_movie_block_is_a_one_row_table(project):
    (project / "movies.star").write_text(KEY_VALUE)
    assert [m.path for m in readers.open_movies([project / "movies.star"])] == \
        [project / "Movies/m0.mrc"]
    assert main(["convert", "movies.star", "--out", "Converted", "--format", "tiff"]) == 0
    assert (project / "Converted/Movies/m0.tif").is_file()
    table = _table(project / "Converted/movies.star")
    assert table["rlnMicrographMovieName"].tolist() == ["Converted/Movies/m0.tif"]
    assert table["rlnOpticsGroup"].tolist() == [1]


def test_a_star_listing_mrcz_says_relion_cannot_read_it(project, capsys):
    (project / "movies.star").write_text(RELION_31)
    assert main(["convert", "movies.star", "--out", "Converted"]) == 0
    err = capsys.readouterr().err
    written = (project / "Converted/movies.star").read_text()
    assert "RELION cannot read MRCZ" in err and "--format tiff" in err
    assert "RELION cannot read MRCZ" in written.splitlines()[1]
    # still a list that mrczbench (run --data, datasets inspect, convert) reads
    assert [m.kind for m in readers.open_movies([project / "Converted/movies.star"])] == ["mrcz"] * 2
