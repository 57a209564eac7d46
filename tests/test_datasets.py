"""Dataset specs, the content-keyed cache, the `datasets` command, and reading users'
movies written with the real libraries (mrcfile, tifffile, our MRCZ codec)."""
import dataclasses
import os

import numpy as np
import pytest

from mrczbench import mrcz
from mrczbench.movies import datasets, readers, synthetic
from mrczbench.cli import main
from mrczbench.errors import DatasetError

from conftest import one_error_line


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("MRCZBENCH_CACHE", str(folder))
    return folder


def small_spec(**fields):
    base = dict(name="tiny", kind="counting", frames=3, shape=(40, 56), dose=1.0, dtype="int8", seed=2)
    return datasets.DatasetSpec(**{**base, **fields})


# ---------------------------------------------------------------- specs

def test_every_named_spec_loads_and_presets_exist():
    specs = {spec.name: spec for spec in datasets.list_specs()}
    assert specs["k2-counting"].shape == (3838, 3710) and specs["k2-counting"].frames == 60
    assert specs["k3-counting"].shape == (5760, 4092)
    assert specs["falcon4-counting"].shape == (4096, 4096)
    kinds = {spec.kind for spec in specs.values()}
    assert set(synthetic.MODELS) <= kinds  # at least one spec per detector model
    quick = [spec for name, spec in specs.items() if name.startswith("quick-")]
    assert {spec.kind for spec in quick} >= set(synthetic.MODELS)
    assert all(spec.nbytes <= 8 * 2 ** 20 for spec in quick)


def test_spec_errors_name_the_file_and_field(tmp_path):
    def spec_file(text):
        path = tmp_path / "bad.toml"
        path.write_text(text)
        return path

    with pytest.raises(DatasetError, match=r"bad.toml.*unknown key\(s\) dosage.*valid keys"):
        datasets.load_spec(spec_file('kind = "counting"\ndosage = 1\n'))
    with pytest.raises(DatasetError, match=r"bad.toml: kind: 'k9' is not one of counting, gain-normalised"):
        datasets.load_spec(spec_file('kind = "k9"\n'))
    with pytest.raises(DatasetError, match=r"options.modulation"):
        datasets.load_spec(spec_file('kind = "counting"\n[options]\nmodulation = "lots"\n'))
    with pytest.raises(DatasetError, match=r"shape"):
        datasets.load_spec(spec_file('shape = [10]\n'))
    with pytest.raises(DatasetError, match=r"not a readable TOML"):
        datasets.load_spec(spec_file('kind = \n'))
    with pytest.raises(DatasetError, match=r"unknown dataset 'nope'; known datasets: .*k2-counting"):
        datasets.load_spec("nope")
    with pytest.raises(DatasetError, match=r"dtype: 'int8' is not valid for kind 'gain-normalised'; choose one of float32"):
        small_spec(kind="gain-normalised", dtype="int8")


def test_key_depends_on_content_only():
    spec = small_spec()
    assert dataclasses.replace(spec, name="other", description="x").key == spec.key
    assert small_spec(options={"modulation": 0.0}).key == spec.key  # defaults spelled out
    assert small_spec(kind="poisson").key == spec.key                 # alias, same generator
    for change in ({"dose": 2.0}, {"seed": 3}, {"frames": 4}, {"dtype": "uint8"},
                   {"options": {"modulation": 0.1}}):
        assert small_spec(**change).key != spec.key
    assert dataclasses.replace(spec, dose=4).dose == 4.0  # replace re-checks the fields
    with pytest.raises(DatasetError, match="dose"):
        dataclasses.replace(spec, dose=-1)


def test_suite_style_construction():
    # the runner builds specs from a suite's dataset table: kind = "poisson", shape as a list
    spec = datasets.DatasetSpec(name="poisson-d1", kind="poisson", frames=2, shape=[16, 24], dose=1, dtype="int8", seed=1)
    assert spec.shape == (16, 24) and spec.dtype == "int8" and spec.dose == 1.0
    assert datasets.DatasetSpec(name="d", kind="falcon").dtype == "int16"  # model default


# ---------------------------------------------------------------- cache

def test_cache_generates_once_and_reuses(cache, capsys):
    spec = small_spec()
    stack = datasets.load_stack(spec)
    path = datasets.cached_path(spec)
    assert path.parent == cache and path.name == f"tiny-{spec.key}.mrcz"
    assert mrcz.read_header(path).codec == "zstd"
    assert "cache: " in capsys.readouterr().err  # the new size is reported
    assert np.array_equal(stack, synthetic.poisson_movie(3, (40, 56), 1.0, seed=2))
    mtime = path.stat().st_mtime_ns
    os.utime(path, ns=(mtime - 10**9, mtime - 10**9))  # make a rewrite visible
    again = datasets.load_stack(dataclasses.replace(spec, name="renamed"))
    assert path.stat().st_mtime_ns == mtime - 10**9  # not regenerated
    assert np.array_equal(again, stack)
    assert datasets.cache_size() == (path.stat().st_size, 1)
    assert "cache: " not in capsys.readouterr().err  # nothing added, nothing said


def test_cache_keeps_dtype_and_models(tmp_path):
    for spec in (small_spec(dtype="uint8"), small_spec(kind="falcon", dtype=None, dose=0.3),
                 small_spec(kind="gain-normalised", dtype=None)):
        stack = datasets.load_stack(spec, cache_dir=tmp_path, progress=False)
        assert stack.dtype == np.dtype(spec.dtype)
        assert np.array_equal(stack, synthetic.render_movie(spec.model(), spec.frames))


def test_cache_dir_argument_beats_environment(cache, tmp_path):
    other = tmp_path / "elsewhere"
    datasets.materialise(small_spec(), cache_dir=other, progress=False)
    assert len(datasets.cached_files(other)) == 1
    assert not datasets.cached_files()


def test_clear_cache_removes_only_stacks(cache):
    datasets.materialise(small_spec(), progress=False)
    keep = cache / "notes.txt"
    keep.write_text("mine")
    stale = cache / ".tiny-0123456789abcdef.mrcz.abc.tmp"
    stale.write_bytes(b"half")
    count, freed = datasets.clear_cache()
    assert count == 2 and freed > 0
    assert keep.exists() and not datasets.cached_files() and not stale.exists()


def test_damaged_cache_file_is_regenerated(cache, capsys):
    spec = small_spec()
    path = datasets.materialise(spec, progress=False)
    path.write_bytes(path.read_bytes()[:-10])  # truncated
    stack = datasets.load_stack(spec, progress=False)
    assert np.array_equal(stack, synthetic.poisson_movie(3, (40, 56), 1.0, seed=2))
    assert "regenerating damaged cache file" in capsys.readouterr().err


# ---------------------------------------------------------------- command line

def test_cli(cache, capsys):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert "quick-counting" in out and "e/px/frame" in out and "MiB" in out
    assert main(["datasets", "show", "quick-eer"]) == 0
    out = capsys.readouterr().out
    assert "grouping" in out and "EER" in out and "cache key" in out
    assert main(["datasets", "generate", "quick-counting"]) == 0
    assert "cache: " in capsys.readouterr().err
    assert main(["datasets", "generate", "quick-counting"]) == 0
    assert "cached at" in capsys.readouterr().err
    assert main(["datasets", "cache"]) == 0
    assert "quick-counting-" in capsys.readouterr().out
    assert main(["datasets", "cache", "--clear"]) == 0
    assert "removed 1 file" in capsys.readouterr().out
    assert main(["datasets", "show", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err


# ---------------------------------------------------------------- users' movies

@pytest.fixture
def stack():
    return synthetic.poisson_movie(4, (24, 32), 1.0, seed=1)


def test_plain_mrc_from_mrcfile(tmp_path, stack):
    import mrcfile
    path = tmp_path / "movie.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(stack)
    (movie,) = readers.open_movies(path)
    assert movie.kind == "mrc" and movie.shape == (4, 24, 32) and movie.dtype == np.int8
    assert np.array_equal(movie.read(), stack)
    assert all(np.array_equal(a, b) for a, b in zip(movie.iter_frames(), stack))


def test_mrc_with_trailing_bytes_is_read_with_a_warning(tmp_path, stack):
    import mrcfile
    path = tmp_path / "odd.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(stack.astype(np.int16))
    with open(path, "ab") as f:
        f.write(b"\0" * 7)  # trailing bytes: mrcfile reads such files, and so do we
    (movie,) = readers.open_movies(path)
    assert movie.kind == "mrc"
    with pytest.warns(UserWarning, match="trailing"):
        assert np.array_equal(movie.read(), stack)


def test_mrcz_from_our_codec_and_python_mrcz(tmp_path, stack):
    path = tmp_path / "movie.mrcz"
    mrcz.write(path, stack, codec="zstd", level=1)
    (movie,) = readers.open_movies(path)
    assert movie.kind == "mrcz" and np.array_equal(movie.read(), stack)
    reference = pytest.importorskip("mrcz")
    other = tmp_path / "theirs.mrcz"
    reference.writeMRC(stack, str(other), compressor="zstd", clevel=1)
    (movie,) = readers.open_movies(other)
    assert np.array_equal(movie.read(), stack)


@pytest.mark.parametrize("compression", [None, "lzw", "zlib"])
def test_tiff_from_tifffile(tmp_path, stack, compression):
    import tifffile
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, stack.astype(np.uint8), compression=compression, photometric="minisblack")
    (movie,) = readers.open_movies(path)
    assert movie.kind == "tiff" and movie.shape == (4, 24, 32)
    assert np.array_equal(movie.read(), stack)


def test_tiff_written_a_page_at_a_time_keeps_every_frame(tmp_path, stack):
    # TiffWriter.write once per frame makes one tifffile series per page (as streaming
    # writers do): every page is still a frame, for the suites and for `compress` alike
    import tifffile
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tif:
        for frame in stack.astype(np.uint8):
            tif.write(frame, photometric="minisblack")
    (movie,) = readers.open_movies(path)
    assert movie.shape == (4, 24, 32) and np.array_equal(movie.read(), stack)
    assert main(["compress", str(path), str(tmp_path / "pages.mrcz")]) == 0
    assert np.array_equal(mrcz.read(tmp_path / "pages.mrcz"), stack)
    with tifffile.TiffWriter(tmp_path / "mixed.tif") as tif:  # pages of two shapes: no movie
        tif.write(stack[0].astype(np.uint8), photometric="minisblack")
        tif.write(stack[0, :10].astype(np.uint8), photometric="minisblack")
    with pytest.raises(DatasetError, match=r"mixed.tif: TIFF page 1 is"):
        readers.open_movies(tmp_path / "mixed.tif")


# EER files: the fuzz harness's encoder (imagecodecs cannot encode EER)
from mrczbench.fuzz.seeds import encode_eer_frame, write_eer  # noqa: E402,F401


@pytest.mark.parametrize("upsampling", [1, 2])
def test_eer_grouping_and_upsampling(tmp_path, upsampling):
    physical = (32, 48)
    model = synthetic.make_model("eer", physical, 0.5, seed=3, grouping=10).prepare()
    rng = np.random.default_rng(1)
    events = [model.internal_frame_events(rng) for _ in range(25)]
    path = tmp_path / "movie.eer"
    write_eer(path, events, physical)
    (movie,) = readers.open_movies(path, eer_grouping=10, eer_upsampling=upsampling)
    ny, nx = physical[0] * upsampling, physical[1] * upsampling
    assert movie.kind == "eer" and movie.shape == (2, ny, nx) and movie.dtype == np.uint8
    expected = np.zeros((2, ny * nx), np.uint8)  # 25 internal frames: the last 5 are dropped
    for i, (pixels, sub_x, sub_y) in enumerate(events[:20]):
        y, x = pixels // physical[1], pixels % physical[1]
        if upsampling == 2:
            y, x = 2 * y + (sub_y >> 1), 2 * x + (sub_x >> 1)
        expected[i // 10, y * nx + x] += 1
    assert np.array_equal(movie.read(), expected.reshape(2, ny, nx))


def test_lists_and_star_files_resolve_against_their_folder(tmp_path, stack):
    import tifffile
    movies = tmp_path / "Movies"
    movies.mkdir()
    tifffile.imwrite(movies / "a.tiff", stack.astype(np.uint8), photometric="minisblack")
    mrcz.write(movies / "b.mrcz", stack, codec="zstd")
    (tmp_path / "movies.lst").write_text("# my movies\nMovies/a.tiff\n\nMovies/b.mrcz\n")
    found = readers.open_movies(tmp_path / "movies.lst")
    assert [m.name for m in found] == ["a.tiff", "b.mrcz"]
    (tmp_path / "movies.star").write_text(
        "# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroupName #1\n_rlnOpticsGroup #2\n"
        "opticsGroup1 1\n\n\ndata_movies\n\nloop_\n_rlnMicrographMovieName #1\n_rlnOpticsGroup #2\n"
        "Movies/a.tiff 1\nMovies/b.mrcz 1\n\n")
    found = readers.open_movies([tmp_path / "movies.star"])
    assert [m.kind for m in found] == ["tiff", "mrcz"]
    assert all(np.array_equal(m.read(), stack) for m in found)
    assert [m.name for m in readers.open_movies(movies)] == ["a.tiff", "b.mrcz"]  # a folder


def test_bad_movie_files_give_one_clear_error(tmp_path):
    with pytest.raises(DatasetError, match=r"missing.mrc: no such file"):
        readers.open_movies(tmp_path / "missing.mrc")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"notes.txt: unsupported movie type '.txt'; supported: .mrc .mrcs .mrcz .tif .tiff .eer .npy .lst .star"):
        readers.open_movies(tmp_path / "notes.txt")
    (tmp_path / "junk.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(DatasetError, match=r"junk.tif: cannot read as TIFF"):
        readers.open_movies(tmp_path / "junk.tif")
    (tmp_path / "junk.mrc").write_bytes(b"\1" * 2000)
    with pytest.raises(DatasetError, match=r"junk.mrc: cannot read as MRC/MRCZ"):
        readers.open_movies(tmp_path / "junk.mrc")
    (tmp_path / "list.lst").write_text("gone.tif\n")
    with pytest.raises(DatasetError, match=r"gone.tif: no such file"):
        readers.open_movies(tmp_path / "list.lst")
    (tmp_path / "x.star").write_text("data_\nloop_\n_rlnMicrographName #1\na.mrc\n")
    with pytest.raises(DatasetError, match=r"x.star: no rlnMicrographMovieName"):
        readers.open_movies(tmp_path / "x.star")
    (tmp_path / "plain.tif").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"plain.tif: cannot read as TIFF"):
        readers.open_movies(tmp_path / "plain.tif")


def test_folder_skips_non_movie_files_with_a_warning(tmp_path, stack, capsys):
    import tifffile
    folder = tmp_path / "movies"
    folder.mkdir()
    tifffile.imwrite(folder / "a.tif", stack, photometric="minisblack")
    tifffile.imwrite(folder / "rgb.tif", np.zeros((8, 8, 3), np.uint8), photometric="rgb")
    np.save(folder / "flags.npy", np.zeros((2, 3, 4), bool))
    found = readers.open_movies(folder)
    assert [m.name for m in found] == ["a.tif"]
    err = capsys.readouterr().err
    assert "skipping" in err and "rgb.tif" in err and "only grey frames" in err
    assert "flags.npy" in err and "bool" in err
    # named explicitly, the same file is still an error
    with pytest.raises(DatasetError, match=r"rgb.tif: TIFF series has axes"):
        readers.open_movies(folder / "rgb.tif")
    with pytest.raises(DatasetError, match=r"rgb.tif"):
        readers.open_movies([folder / "a.tif", folder / "rgb.tif"])
    # a folder with no readable movie at all is an error
    (folder / "a.tif").unlink()
    with pytest.raises(DatasetError, match=r"no movie found: 2 file\(s\) skipped"):
        readers.open_movies(folder)
    # and through the command line: warning lines, then the movies (exit 0)
    tifffile.imwrite(folder / "a.tif", stack, photometric="minisblack")
    capsys.readouterr()
    assert main(["datasets", "inspect", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "a.tif" in captured.out and "1 movie" in captured.out
    assert captured.err.count("warning: skipping") == 2


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "float32", ">u2"])
def test_npy_movies_stream_from_a_memory_map(tmp_path, stack, dtype):
    data = stack.astype(dtype)
    np.save(tmp_path / "movie.npy", data)
    (movie,) = readers.open_movies(tmp_path / "movie.npy")
    assert movie.kind == "npy" and movie.shape == data.shape
    assert movie.dtype == np.dtype(dtype).newbyteorder("=")
    assert np.array_equal(movie.read(), data)
    assert all(isinstance(f, np.ndarray) and f.shape == data.shape[1:] for f in movie.iter_frames())
    np.save(tmp_path / "frame.npy", data[0])  # a 2-D frame is a one-frame movie
    (frame,) = readers.open_movies(tmp_path / "frame.npy")
    assert frame.shape == (1, *data.shape[1:]) and np.array_equal(frame.read()[0], data[0])
    assert [m.name for m in readers.open_movies(tmp_path)] == ["frame.npy", "movie.npy"]


def test_bad_npy_files_give_one_clear_error(tmp_path):
    cases = {
        "flags.npy": (np.zeros((2, 3, 4), bool), r"flags.npy: .npy dtype bool is not a numeric"),
        "line.npy": (np.zeros(5, np.int8), r"line.npy: .npy shape \(5,\); expected a 2-D"),
        "four.npy": (np.zeros((1, 2, 3, 4), np.int8), r"four.npy: .npy shape \(1, 2, 3, 4\)"),
        "record.npy": (np.zeros((2, 3), [("a", "i2"), ("b", "f4")]), r"record.npy: .npy dtype"),
    }
    for name, (array, message) in cases.items():
        np.save(tmp_path / name, array)
        with pytest.raises(DatasetError, match=message):
            readers.open_movies(tmp_path / name)
    np.save(tmp_path / "objects.npy", np.array([[1, None]], dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match=r"objects.npy: cannot read as .npy"):
        readers.open_movies(tmp_path / "objects.npy")
    (tmp_path / "junk.npy").write_bytes(b"hello")
    with pytest.raises(DatasetError, match=r"junk.npy: not a .npy file"):
        readers.open_movies(tmp_path / "junk.npy")


@pytest.mark.parametrize("grouping", [0, -3, True, 1.5])
def test_eer_grouping_must_be_at_least_one(tmp_path, stack, grouping):
    import tifffile
    tifffile.imwrite(tmp_path / "a.tif", stack, photometric="minisblack")  # checked even when no EER file is opened
    with pytest.raises(DatasetError, match=r"eer_grouping: expected an integer >= 1"):
        readers.open_movies(tmp_path / "a.tif", eer_grouping=grouping)


def test_cli_rejects_zero_eer_grouping_and_threads_before_any_work(cache, tmp_path, capsys):
    one_error_line(capsys, ["datasets", "inspect", tmp_path, "--eer-grouping", "0"],
                   "--eer-grouping: expected an integer >= 1")
    one_error_line(capsys, ["datasets", "generate", "quick-counting", "--threads", "0"],
                   "--threads: expected an integer >= 1")
    assert not cache.exists() or not list(cache.iterdir())


def test_materialise_checks_threads_before_generating(cache, capsys):
    with pytest.raises(DatasetError, match=r"threads: expected an integer >= 1"):
        datasets.materialise(small_spec(), threads=0)
    assert "generating" not in capsys.readouterr().err
    assert not cache.exists() or not list(cache.iterdir())


def test_cache_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    for argv in (["datasets", "cache", "--cache-dir", str(tmp_path / "file")],
                 ["datasets", "cache", "--clear", "--cache-dir", str(tmp_path / "file")],
                 ["datasets", "list", "--cache-dir", str(tmp_path / "file")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "must be a folder" in err, err
    assert (tmp_path / "file").read_text() == "mine"
