"""One STAR parser (movies.lists.star_movie_rows) for the movie lists and `convert`: both
read the same movies from RELION 3.1 (data_optics + data_movies) and 3.0 (one block) files."""
from pathlib import Path

import pytest

from mrczbench.convert.star import read_star
from mrczbench.errors import DatasetError
from mrczbench.movies.lists import star_entries, star_movie_block

RELION_31 = """
# version 30001

data_optics

loop_
_rlnOpticsGroupName #1
_rlnOpticsGroup #2
_rlnMicrographOriginalPixelSize #3
opticsGroup1 1 0.885

# version 30001

data_other

loop_
_rlnMicrographMovieName #1
_rlnOpticsGroup #2
Other/not_a_movie.tif 1

# version 30001

data_movies

loop_
_rlnMicrographMovieName #1
_rlnOpticsGroup #2
Movies/m0.tif 1
'Movies/with space.tif' 1
Movies/m2.tif 1
"""

RELION_30 = """
data_

loop_
_rlnMicrographMovieName #1
_rlnMagnification #2
Movies/m0.mrc 10000
Movies/m1.mrc 10000
"""


@pytest.mark.parametrize("text, block, movies", [
    (RELION_31, "movies", ["Movies/m0.tif", "Movies/with space.tif", "Movies/m2.tif"]),
    (RELION_30, "", ["Movies/m0.mrc", "Movies/m1.mrc"]),
])
def test_lists_and_convert_read_the_same_movies(tmp_path: Path, text, block, movies):
    path = tmp_path / "movies.star"
    path.write_text(text)
    assert star_movie_block(path) == block
    assert list(star_entries(path)) == movies
    assert read_star(path).names == movies


def test_convert_rewrites_only_the_movie_block(tmp_path: Path):
    path = tmp_path / "movies.star"
    path.write_text(RELION_31)
    star = read_star(path)
    text = star.renamed({"Movies/m0.tif": "Out/m0.mrcz", "Other/not_a_movie.tif": "x"})
    assert "Out/m0.mrcz 1" in text and "Other/not_a_movie.tif 1" in text
    assert text.splitlines()[1:] == RELION_31.replace("Movies/m0.tif", "Out/m0.mrcz").splitlines()[1:]


def test_form_feed_in_a_comment_keeps_line_numbers(tmp_path: Path):
    """convert's lines and the parser's line numbers agree (str.splitlines would split \\f)."""
    path = tmp_path / "movies.star"
    path.write_text("# a\fcomment\ndata_movies\nloop_\n_rlnMicrographMovieName\nb.tif\nc.tif\n")
    star = read_star(path)
    assert star.names == ["b.tif", "c.tif"]
    assert star.renamed({"c.tif": "d.mrcz"}).endswith("\nb.tif\nd.mrcz\n")


def test_no_movie_loop_is_one_error_for_both(tmp_path: Path):
    path = tmp_path / "x.star"
    path.write_text("data_optics\nloop_\n_rlnOpticsGroup\n1\n")
    for read in (lambda p: list(star_entries(p)), read_star):
        with pytest.raises(DatasetError, match=r"x.star: no rlnMicrographMovieName column"):
            read(path)
