"""`mrczbench convert` / `verify`: real movie files (MRC, TIFF, EER; equal base names in two
folders), a local pool and a real Dask LocalCluster, resume after a kill, a corrupt input,
shards, and a flipped byte found by verify."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from mrczbench import mrcz
from mrczbench.cli import main
from mrczbench.convert import manifest
from mrczbench.movies import synthetic

from mrczbench.fuzz.seeds import write_eer

from conftest import cli_exit, poisson_stack


def movie(seed, frames=3, shape=(48, 40)):
    return poisson_stack((frames, *shape), np.int8, dose=1.0, seed=seed)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A RELION-like project: Movies/a and Movies/b hold equal base names; a .star lists all."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Movies/a").mkdir(parents=True)
    (tmp_path / "Movies/b").mkdir(parents=True)
    stacks = {"Movies/a/m0.mrc": movie(0), "Movies/b/m0.mrc": movie(1), "Movies/a/t1.tif": movie(2)}
    mrcz.write(tmp_path / "Movies/a/m0.mrc", stacks["Movies/a/m0.mrc"])
    mrcz.write(tmp_path / "Movies/b/m0.mrc", stacks["Movies/b/m0.mrc"])
    tifffile.imwrite(tmp_path / "Movies/a/t1.tif", stacks["Movies/a/t1.tif"], photometric="minisblack")
    model = synthetic.make_model("eer", (32, 32), 0.5, seed=3, grouping=32).prepare()
    rng = np.random.default_rng(1)
    write_eer(tmp_path / "Movies/b/e2.eer", [model.internal_frame_events(rng) for _ in range(64)], (32, 32))
    (tmp_path / "movies.star").write_text(
        "data_optics\n\nloop_\n_rlnOpticsGroupName #1\n_rlnOpticsGroup #2\nopticsGroup1 1\n\n"
        "data_movies\n\nloop_\n_rlnMicrographMovieName #1\n_rlnOpticsGroup #2\n"
        + "".join(f"{name} 1\n" for name in [*stacks, "Movies/b/e2.eer"]))
    return tmp_path, stacks


def test_star_to_mrcz_with_two_jobs(project):
    root, stacks = project
    assert main(["convert", "movies.star", "--out", "Converted", "--jobs", "2"]) == 0
    for name, stack in stacks.items():
        out = root / "Converted" / Path(name).with_suffix(".mrcz")
        np.testing.assert_array_equal(mrcz.read(out), stack)
    assert (root / "Converted/Movies/b/e2.mrcz").is_file()
    records = manifest.records(root / "Converted")
    assert len(records) == 4 and all(r["status"] == "done" and r["checksum"] for r in records)
    assert all(0 < r["ratio"] < 1.2 and r["mib_per_s"] > 0 for r in records)
    assert (root / "Converted/manifest.tsv").read_text().count("\n") == 5
    star = (root / "Converted/movies.star").read_text()
    assert "Movies/a/m0.mrcz 1" in star and "Movies/b/m0.mrcz 1" in star
    assert "data_optics" in star and "opticsGroup1 1" in star
    assert main(["verify", "Converted"]) == 0


def test_folder_to_relion_tiff_is_flipped_like_relion(project):
    root, stacks = project
    assert main(["convert", "Movies", "--out", "T", "--format", "tiff"]) == 0
    written = root / "T/Movies/a/m0.tif"
    with tifffile.TiffFile(written) as tif:
        assert len(tif.pages) == 3 and tif.pages[0].compression == 5  # LZW: not 4096 wide
        assert tif.pages[0].rowsperstrip == 48                       # one strip per frame
    with tifffile.TiffFile(written) as tif:
        raw = np.stack([page.asarray() for page in tif.pages])
    np.testing.assert_array_equal(raw, stacks["Movies/a/m0.mrc"][:, ::-1])  # rows bottom-up
    assert main(["verify", "T"]) == 0


@pytest.mark.parametrize("compression", ["lzw", "deflate"])
def test_tiff_contender_stores_the_bytes_convert_writes(project, compression):
    """The benchmark measures the file `convert` writes (formats.tiff.write_relion_tiff) for a
    movie without a pixel size (with one, convert adds RELION's resolution tags)."""
    from mrczbench.formats import get_format
    root, stacks = project
    stack = stacks["Movies/a/m0.mrc"]
    np.save(root / "m0.npy", stack)  # .npy: no pixel size
    assert main(["convert", "m0.npy", "--out", "T", "--format", "tiff",
                 "--compression", compression]) == 0
    converted = next((root / "T").rglob("m0.tif")).read_bytes()
    contender = get_format("tiff", compression=compression)
    assert contender.encode(stack) == converted
    contender.write(root / "contender.tif", stack)
    assert (root / "contender.tif").read_bytes() == converted
    np.testing.assert_array_equal(contender.read(root / "contender.tif"), stack)


def test_dask_local_cluster(project):
    distributed = pytest.importorskip("distributed")
    root, stacks = project
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        code = main(["convert", "Movies", "--out", "D", "--scheduler", cluster.scheduler_address])
    assert code == 0
    assert {r["host"] for r in manifest.records(root / "D")}  # recorded by the workers
    for name, stack in stacks.items():
        np.testing.assert_array_equal(mrcz.read(root / "D" / Path(name).with_suffix(".mrcz")), stack)


def test_corrupt_input_is_recorded_and_the_rest_converts(project, capsys):
    root, _ = project
    bad = root / "Movies/a/bad.mrc"
    bad.write_bytes((root / "Movies/a/m0.mrc").read_bytes()[:1500])  # truncated
    assert main(["convert", "Movies", "--out", "C"]) == 1
    records = {r["output"]: r for r in manifest.records(root / "C")}
    assert records["Movies/a/bad.mrcz"]["status"] == "failed"
    assert "bad.mrc" in records["Movies/a/bad.mrcz"]["error"]
    assert sum(r["status"] == "done" for r in records.values()) == 4
    assert not (root / "C/Movies/a/bad.mrcz").exists()
    assert bad.exists()  # sources are never deleted
    assert main(["verify", "C"]) == 1  # not everything was converted


def test_shards_merge(project):
    root, stacks = project
    assert main(["convert", "Movies", "--out", "S", "--shard", "0/2"]) == 0
    assert main(["convert", "Movies", "--out", "S", "--shard", "1/2"]) == 0
    part0 = manifest.records(root / "S/manifest.part-0-of-2.jsonl")
    part1 = manifest.records(root / "S/manifest.part-1-of-2.jsonl")
    assert part0 and part1
    assert not {r["output"] for r in part0} & {r["output"] for r in part1}
    assert len(manifest.records(root / "S")) == 4
    assert main(["verify", "S"]) == 0


def test_verify_catches_a_flipped_byte(project, capsys):
    root, _ = project
    assert main(["convert", "Movies", "--out", "V"]) == 0
    target = root / "V/Movies/b/m0.mrcz"
    data = bytearray(target.read_bytes())
    data[-20] ^= 0x10  # inside the last frame's compressed payload
    target.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["verify", "V"]) == 1
    out = capsys.readouterr().out
    assert "BAD Movies/b/m0.mrcz" in out and out.count("BAD") == 1


def test_resume_after_a_killed_batch(tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(5):
        mrcz.write(folder / f"m{i}.mrc", movie(i, frames=8, shape=(512, 512)))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "mrczbench", "convert", str(folder), "--out", str(tmp_path / "R"),
               "--jobs", "1", "--codec", "zlib", "--level", "9"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = tmp_path / "R/manifest.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not part.exists() or '"done"' not in part.read_text()):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    first = [r for r in manifest.records(tmp_path / "R") if r["status"] == "done"]
    assert 1 <= len(first) < 5, "the batch must be killed part-way"
    assert len(manifest.records(tmp_path / "R")) == 5  # the unfinished movies are named as planned
    # verify after the kill: never a false success, every unfinished movie named
    killed = subprocess.run([sys.executable, "-m", "mrczbench", "verify", str(tmp_path / "R")],
                            env=env, capture_output=True, text=True)
    assert killed.returncode == 1
    assert killed.stdout.count("NOT CONVERTED") == 5 - len(first)
    done_before = {r["output"]: (tmp_path / "R" / r["output"]).stat().st_mtime_ns for r in first}
    # nothing half-written under a final name
    finals = [p for p in (tmp_path / "R/big").glob("*.mrcz")]
    assert {str(p.relative_to(tmp_path / "R")) for p in finals} == set(done_before)
    result = subprocess.run(command + ["--only-unfinished"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"{len(done_before)} already done" in result.stderr
    records = manifest.records(tmp_path / "R")
    assert len(records) == 5
    for output, mtime in done_before.items():
        assert (tmp_path / "R" / output).stat().st_mtime_ns == mtime  # not redone
    lines = [json.loads(line) for line in part.read_text().splitlines()]
    assert sum(r["status"] == "done" for r in lines) == 5  # nothing converted twice
    assert main(["verify", str(tmp_path / "R")]) == 0


def test_existing_output_not_ours_is_left_alone(project):
    root, _ = project
    target = root / "O/Movies/a/m0.mrcz"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"user data")
    assert main(["convert", "Movies", "--out", "O"]) == 1
    assert target.read_bytes() == b"user data"
    record = next(r for r in manifest.records(root / "O") if r["output"] == "Movies/a/m0.mrcz")
    assert "not in this folder's manifest" in record["error"]


@pytest.mark.parametrize("argv", [
    ["--shard", "2/2"], ["--shard", "x"], ["--codec", "zsdt"], ["--level", "0"], ["--jobs", "0"],
])
def test_bad_options_exit_2(project, argv):
    assert cli_exit(["convert", "Movies", "--out", "X", *argv]) == 2


def test_two_inputs_with_one_output_exit_2(project, capsys):
    root, _ = project
    tifffile.imwrite(root / "Movies/a/m0.tif", movie(5), photometric="minisblack")
    assert main(["convert", "Movies", "--out", "X"]) == 2
    assert "would both become Movies/a/m0.mrcz" in capsys.readouterr().err


def test_gain_normalised_movies_convert_to_counts_and_verify(tmp_path, monkeypatch):
    from mrczbench.movies import gain
    monkeypatch.chdir(tmp_path)
    model = synthetic.make_model("gain-normalised", (40, 32), 1.45, seed=5, defects=6).prepare()
    frames = synthetic.render_movie(model, 40)
    (tmp_path / "float").mkdir()
    for i in range(2):
        mrcz.write(tmp_path / f"float/m{i}.mrc", frames[20 * i:20 * (i + 1)])
    gain.write_reference(tmp_path / "gain.mrc", gain.estimate(sorted((tmp_path / "float").glob("*.mrc")), thresh=10))
    assert main(["convert", "float", "--out", "G", "--gain", "gain.mrc", "--checksum"]) == 0
    for i in range(2):
        out = tmp_path / f"G/float/m{i}.mrcz"
        header = mrcz.read_header(out)
        assert header.dtype.kind == "i" and "gain_counts" in header.meta  # counts, not float32
        assert header.file_bytes < frames[20 * i:20 * (i + 1)].nbytes / 2
        assert len(mrcz.read(out, verify=True)) == 20  # the per-frame checksums hold
    assert main(["verify", "G"]) == 0  # decoded x gain == the float32 input, bit for bit


def test_convert_gain_names_one_gain_reference_for_the_run(tmp_path, monkeypatch):
    from mrczbench.movies import gain
    monkeypatch.chdir(tmp_path)
    model = synthetic.make_model("gain-normalised", (40, 32), 1.45, seed=5, defects=6).prepare()
    frames = synthetic.render_movie(model, 40)
    (tmp_path / "float" / "a").mkdir(parents=True)
    for i in range(2):
        mrcz.write(tmp_path / f"float/a/m{i}.mrc", frames[20 * i:20 * (i + 1)])
    gain.write_reference(tmp_path / "gain.mrc", gain.estimate(sorted((tmp_path / "float/a").glob("*.mrc")), thresh=10))
    assert main(["convert", "float", "--out", "G", "--gain", "gain.mrc"]) == 0
    assert gain.file_sha256(tmp_path / "G/gain.mrc") == gain.file_sha256(tmp_path / "gain.mrc")
    assert (tmp_path / "G/gain_reliability.mrc").is_file()
    section = mrcz.read_header(tmp_path / "G/float/a/m0.mrcz").meta["gain_counts"]
    assert "gain" not in section and section["gain_ref"]["file"] == "gain.mrc"
    assert main(["verify", "G"]) == 0          # finds G/gain.mrc above the outputs, checks it
    assert main(["convert", "float", "--out", "E", "--gain", "gain.mrc", "--embed-gain"]) == 0
    assert "gain" in mrcz.read_header(tmp_path / "E/float/a/m0.mrcz").meta["gain_counts"]
    assert not (tmp_path / "E/gain.mrc").exists()
    # another gain of that name already in --out: refused before anything is converted
    (tmp_path / "X").mkdir()
    (tmp_path / "X/gain.mrc").write_bytes(b"not this gain")
    assert cli_exit(["convert", "float", "--out", "X", "--gain", "gain.mrc"]) == 2
    assert not (tmp_path / "X/float").exists()


def test_frames_are_hashed_in_place_with_the_manifest_s_digests():
    # convert hashes each frame's buffer (no .tobytes() copy) in a background thread; the
    # digests must stay those of the bytes as they lie in memory, in frame order.
    import hashlib
    import tracemalloc

    from mrczbench.convert.job import FrameHasher, checksum_of, frame_sha256
    rng = np.random.default_rng(7)
    frames = [rng.poisson(1.0, (64, 80)).astype(np.int8), rng.random((30, 20)).astype(">f4"),
              rng.integers(0, 60000, (50, 50)).astype(np.uint16)[::2, 1::3]]
    for frame in frames:
        assert frame_sha256(frame) == hashlib.sha256(np.ascontiguousarray(frame).tobytes()).digest()
    big = np.zeros((4096, 4096), np.int8)
    tracemalloc.start()
    frame_sha256(big)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < big.nbytes // 16  # no copy of the 16 MiB frame
    stream = [rng.poisson(1.0, (32, 32)).astype(np.int16) for _ in range(40)]
    with FrameHasher(window=3) as hasher:
        passed = list(hasher.hashing(iter(stream)))
        digests = hasher.digests()
    assert [p is s or np.array_equal(p, s) for p, s in zip(passed, stream)] == [True] * 40
    assert digests == [hashlib.sha256(s.tobytes()).digest() for s in stream]
    assert checksum_of(digests).startswith("sha256:")


def test_manifest_checksum_is_the_input_s_and_read_ahead_is_harmless(tmp_path):
    import hashlib

    from mrczbench.convert.job import read_ahead
    stacks = {name: movie(seed, frames=5, shape=(64, 64)) for seed, name in enumerate("ab")}
    for name, stack in stacks.items():
        mrcz.write(tmp_path / f"{name}.mrc", stack)
    read_ahead(str(tmp_path / "missing.mrc"))  # a movie gone meanwhile: nothing happens
    read_ahead(None)
    # one job: converting a.mrc reads b.mrc ahead
    assert main(["convert", str(tmp_path / "a.mrc"), str(tmp_path / "b.mrc"), "--out",
                 str(tmp_path / "C"), "--jobs", "1"]) == 0
    for record in manifest.records(tmp_path / "C"):
        stack = stacks[Path(record["input"]).stem]
        expected = hashlib.sha256(b"".join(hashlib.sha256(f.tobytes()).digest() for f in stack))
        assert record["checksum"] == "sha256:" + expected.hexdigest()
    assert main(["verify", str(tmp_path / "C")]) == 0
