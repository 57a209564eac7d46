"""`convert --format tiff` writes what relion_convert_to_tiff writes (src/tiff_converter.h,
write_tiff_one_page), checked with three independent readers: tifffile (imread, pages),
libtiff's own tools (tiffinfo, tiffdump) and mrczbench's strict reader."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
import tifffile

from mrczbench import mrcz
from mrczbench.cli import main
from mrczbench.convert import manifest
from mrczbench.fuzz.seeds import write_eer
from mrczbench.movies import readers, synthetic

needs_libtiff = pytest.mark.skipif(not shutil.which("tiffinfo") or not shutil.which("tiffdump"),
                                   reason="libtiff-tools (tiffinfo, tiffdump) not installed")


def libtiff(tool: str, path) -> str:
    return subprocess.run([tool, str(path)], capture_output=True, text=True, check=True).stdout


def counts(frames=5, shape=(300, 256), dtype=np.int8, seed=0):
    return np.random.default_rng(seed).poisson(0.7, (frames, *shape)).astype(dtype)


@needs_libtiff
def test_every_frame_is_one_series_for_tifffile_libtiff_and_mrczbench(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stack = counts()
    mrcz.write("m.mrc", stack, codec=None)
    assert main(["convert", "m.mrc", "--out", "O", "--format", "tiff"]) == 0
    out = tmp_path / "O/m.tif"
    whole = tifffile.imread(out)  # was frame 0 only: a shaped description on every page
    assert whole.shape == (5, 300, 256)
    np.testing.assert_array_equal(whole, stack[:, ::-1])  # RELION's rows, bottom-up
    with tifffile.TiffFile(out) as tif:
        assert len(tif.pages) == 5 and len(tif.series) == 1 and tif.series[0].shape == (5, 300, 256)
        assert all(page.description == "" for page in tif.pages)  # RELION writes none
    info = libtiff("tiffinfo", out)
    assert info.count("=== TIFF directory") == 5 and "ImageDescription" not in info
    assert libtiff("tiffdump", out).count("Directory ") == 5
    np.testing.assert_array_equal(readers.open_movie(out).read(), stack[:, ::-1])


# RELION's write_tiff_one_page: SampleFormat for each sample type (mode 0 MRC is signed
# char since RELION 4.0, commit 0e9e832 "treat MODE 0 MRC as signed")
RELION_SAMPLE_FORMAT = {"int8": 2, "uint8": 1, "int16": 2, "uint16": 1, "float32": 3}


@needs_libtiff
@pytest.mark.parametrize("dtype", sorted(RELION_SAMPLE_FORMAT))
def test_sample_format_is_stated_on_every_page_as_relion(tmp_path, monkeypatch, dtype):
    monkeypatch.chdir(tmp_path)
    np.save("m.npy", counts(frames=3, shape=(40, 32), dtype=dtype))
    assert main(["convert", "m.npy", "--out", "O", "--format", "tiff"]) == 0
    dump = libtiff("tiffdump", tmp_path / "O/m.tif")
    # tifffile leaves the tag out for unsigned samples: TIFF's default, 1 (UINT), is what
    # libtiff's TIFFGetFieldDefaulted (RELION's reader) returns
    stated = re.findall(r"SampleFormat \(339\) SHORT \(3\) 1<(\d)>", dump)
    assert stated == ([] if dtype.startswith("u") else [str(RELION_SAMPLE_FORMAT[dtype])] * 3)
    with tifffile.TiffFile(tmp_path / "O/m.tif") as tif:
        assert {page.dtype for page in tif.pages} == {np.dtype(dtype)}


@needs_libtiff
def test_pixel_size_goes_into_the_resolution_tags_as_relion(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mrcz.write("m.mrc", counts(frames=2, shape=(40, 32)), codec=None, pixelsize=(1.25, 1.25, 1.25))
    np.save("n.npy", counts(frames=2, shape=(40, 32)))  # no pixel size: no resolution unit
    assert main(["convert", "m.mrc", "n.npy", "--out", "O", "--format", "tiff"]) == 0
    with tifffile.TiffFile(tmp_path / "O/m.tif") as tif:
        for page in tif.pages:
            assert page.tags["ResolutionUnit"].value == 3  # centimetre: 1 cm = 1e8 Angstrom
            num, den = page.tags["XResolution"].value
            assert num / den == pytest.approx(1e8 / 1.25)
    assert "pixels/cm" in libtiff("tiffinfo", tmp_path / "O/m.tif")
    with tifffile.TiffFile(tmp_path / "O/n.tif") as tif:
        assert tif.pages[0].tags["ResolutionUnit"].value == 1


def _eer(path, internal_frames, shape, seed=3):
    model = synthetic.make_model("eer", shape, 0.5, seed=seed, grouping=32).prepare()
    rng = np.random.default_rng(seed)
    write_eer(path, [model.internal_frame_events(rng) for _ in range(internal_frames)], shape)


def test_eer_grouping_is_an_option_and_the_remainder_is_dropped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _eer(tmp_path / "e.eer", 64, (32, 32))
    assert main(["convert", "e.eer", "--out", "A", "--format", "tiff"]) == 0
    assert main(["convert", "e.eer", "--out", "B", "--format", "tiff", "--eer-grouping", "64"]) == 0
    assert main(["convert", "e.eer", "--out", "C", "--format", "tiff", "--eer-grouping", "20"]) == 0
    pages = {name: tifffile.imread(tmp_path / name / "e.tif") for name in "ABC"}
    assert pages["A"].shape[0] == 2 and pages["B"].shape == (32, 32) and pages["C"].shape[0] == 3
    np.testing.assert_array_equal(pages["B"], pages["A"].sum(0, dtype=np.uint8))
    assert pages["B"].dtype == np.uint8  # RELION renders EER as unsigned char
    assert manifest.records(tmp_path / "B")[0]["frames"] == 1
    assert main(["verify", "B"]) == 0


def test_eer_renders_to_lzw_even_4096_wide(tmp_path, monkeypatch):
    """decide_filter(nx, isEER): `auto` is deflate for 4096-wide MRC (Falcon), LZW for EER."""
    monkeypatch.chdir(tmp_path)
    _eer(tmp_path / "e.eer", 2, (4096, 4096))
    np.save("f.npy", np.zeros((1, 8, 4096), np.int16))
    assert main(["convert", "e.eer", "f.npy", "--out", "O", "--format", "tiff",
                 "--eer-grouping", "1"]) == 0
    with tifffile.TiffFile(tmp_path / "O/e.tif") as tif:
        assert [page.compression for page in tif.pages] == [5, 5]  # LZW
    with tifffile.TiffFile(tmp_path / "O/f.tif") as tif:
        assert tif.pages[0].compression == 8  # deflate (Adobe), as RELION for Falcon MRC


def _gain_normalised_movies(root, frames=40):
    from mrczbench.movies import gain
    model = synthetic.make_model("gain-normalised", (40, 32), 1.45, seed=5, defects=6).prepare()
    movie = synthetic.render_movie(model, frames)
    (root / "float").mkdir()
    for i in range(2):
        mrcz.write(root / f"float/m{i}.mrc", movie[20 * i:20 * (i + 1)], pixelsize=(1.1,) * 3)
    result = gain.estimate(sorted((root / "float").glob("*.mrc")), thresh=10)
    gain.write_reference(root / "gain.mrc", result)
    return movie, result


def test_gain_normalised_movies_become_relion_tiff_counts_and_gain_reference(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    movie, result = _gain_normalised_movies(tmp_path)
    assert main(["convert", "float", "--out", "T", "--format", "tiff", "--gain", "gain.mrc"]) == 0
    reference = mrcz.read(tmp_path / "T/gain-reference.mrc")
    assert reference.shape == (1, 40, 32) and reference.dtype == np.float32
    np.testing.assert_array_equal(reference[0], result.gain)  # 1.0 at unreliable pixels
    assert np.all(reference[0][~result.reliable] == 1.0) and (~result.reliable).sum() > 0
    for i in range(2):
        pages = tifffile.imread(tmp_path / f"T/float/m{i}.tif")[:, ::-1]
        # RELION: page x gain-reference.mrc is the movie; counts at reliable pixels
        back = np.multiply(pages, reference[0], dtype=np.float32)
        np.testing.assert_array_equal(back.view(np.uint32), movie[20 * i:20 * (i + 1)].view(np.uint32))
        reliable = pages[:, result.reliable]
        np.testing.assert_array_equal(reliable, np.rint(reliable))
        # defect pixels hold interpolated floats: float32 pages, as RELION's unnormalise<float>
        assert pages.dtype == np.float32
    assert all(r.get("gain_reference") == "gain-reference.mrc" for r in manifest.records(tmp_path / "T"))
    assert main(["verify", "T"]) == 0


def test_integer_counts_pages_when_every_value_is_whole(tmp_path, monkeypatch):
    from mrczbench.movies import gain
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(2)
    g = rng.uniform(0.9, 1.2, (24, 16)).astype(np.float32)
    k = rng.poisson(1.5, (30, 24, 16))
    k[:, 0, 0] = 0  # a pixel that never fires: unreliable, its zeros are whole numbers
    movie = np.multiply(k.astype(np.float32), g, dtype=np.float32)
    mrcz.write("m.mrc", movie, codec=None)
    gain.write_reference(tmp_path / "gain.mrc", gain.estimate([tmp_path / "m.mrc"], thresh=3))
    assert main(["convert", "m.mrc", "--out", "T", "--format", "tiff", "--gain", "gain.mrc"]) == 0
    pages = tifffile.imread(tmp_path / "T/m.tif")
    assert pages.dtype == np.uint8 and pages.max() == k.max()
    assert main(["verify", "T"]) == 0


def test_another_gain_reference_in_out_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _gain_normalised_movies(tmp_path)
    (tmp_path / "T").mkdir()
    mrcz.write(tmp_path / "T/gain-reference.mrc", np.ones((1, 40, 32), np.float32), codec=None)
    before = (tmp_path / "T/gain-reference.mrc").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(["convert", "float", "--out", "T", "--format", "tiff", "--gain", "gain.mrc"]))
    assert exit_info.value.code == 2
    assert "holds another gain reference" in capsys.readouterr().err
    assert (tmp_path / "T/gain-reference.mrc").read_bytes() == before
    assert not (tmp_path / "T/float").exists()


TINY_SUITE = """
description = "one small case"
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


def test_run_and_recommend_take_the_eer_grouping(tmp_path, monkeypatch, capsys):
    """A 16-frame EER file has no fraction of the fixed 32 frames; with --eer-grouping 8 it
    is two frames for `run --data` (and its resume) and `recommend --data`."""
    import json as jsonlib
    from mrczbench.commands.recommend import measure_movies
    monkeypatch.chdir(tmp_path)
    _eer(tmp_path / "e.eer", 16, (32, 32))
    (tmp_path / "tiny.toml").write_text(TINY_SUITE)
    assert main(["run", "--suite", "tiny.toml", "--data", "e.eer", "--out", "R0", "--no-progress"]) == 2
    assert "fewer than eer_grouping 32" in capsys.readouterr().err
    assert main(["run", "--suite", "tiny.toml", "--data", "e.eer", "--out", "R",
                 "--eer-grouping", "8", "--no-progress"]) == 0
    run = next((tmp_path / "R").glob("*.jsonl"))
    rows = [jsonlib.loads(line) for line in run.read_text().splitlines()]
    assert rows and all(r["error"] is None and r["frames"] == 2 for r in rows)
    meta = jsonlib.loads(run.with_name(run.name.replace(".jsonl", ".run.json")).read_text())
    assert meta["eer_grouping"] == 8
    # resuming takes the run's grouping; another one is refused
    assert main(["run", "--suite", "tiny.toml", "--out", "R", "--resume", "--eer-grouping", "4",
                 "--no-progress"]) == 2
    assert "--eer-grouping 8" in capsys.readouterr().err
    assert measure_movies([str(tmp_path / "e.eer")], eer_grouping=8)["frames"] == 2
