"""Per-frame SHA-256 in MRCZ metadata (write(checksum=True), read(verify=True), compress
--checksum, info --verify): a flipped byte that blosc decodes silently is caught."""
from __future__ import annotations

import numpy as np
import pytest

import mrcz as python_mrcz
from mrczbench import mrcz
from mrczbench.cli import main


@pytest.fixture
def stack():
    return np.random.default_rng(3).poisson(2.0, (6, 64, 80)).astype(np.int16)


def silent_corruption(path, stack) -> bytes | None:
    """A copy of the file with one payload byte flipped that decodes without an error to
    different pixels, or None when no such byte exists."""
    data = path.read_bytes()
    for position in range(len(data) - 1, len(data) - 400, -1):
        mutated = bytearray(data)
        mutated[position] ^= 0x01
        path.write_bytes(bytes(mutated))
        try:
            if not np.array_equal(mrcz.read(path), stack):
                return bytes(mutated)
        except mrcz.MRCZError:
            continue
        finally:
            path.write_bytes(data)
    return None


def test_stored_checksums_catch_what_blosc_does_not(tmp_path, stack):
    path = tmp_path / "m.mrcz"
    mrcz.write(path, stack, codec="lz4", filter="none", checksum=True)
    assert np.array_equal(mrcz.read(path, verify=True), stack)
    assert len(mrcz.read_header(path).meta[mrcz.CHECKSUM_KEY]) == 6
    assert python_mrcz.readMRC(str(path))[0].shape == stack.shape  # python-mrcz still reads it
    corrupt = silent_corruption(path, stack)
    assert corrupt is not None, "no silently-decoding flip found in the last 400 bytes"
    path.write_bytes(corrupt)
    mrcz.read(path)  # without verify: wrong pixels, no error (what MRCZ alone gives)
    with pytest.raises(mrcz.MRCZError, match="SHA-256"):
        mrcz.read(path, verify=True)
    with pytest.raises(mrcz.MRCZError, match="SHA-256"):
        list(mrcz.iter_frames(path, verify=True))


def test_streamed_frames_need_a_count(tmp_path, stack):
    with pytest.raises(mrcz.MRCZError, match="number of frames"):
        mrcz.write(tmp_path / "s.mrcz", (f for f in stack), codec="zstd", checksum=True)
    mrcz.write(tmp_path / "s.mrcz", mrcz.CountedFrames((f for f in stack), 6), codec="zstd", checksum=True)
    assert np.array_equal(mrcz.read(tmp_path / "s.mrcz", verify=True), stack)
    with pytest.raises(mrcz.MRCZError, match="5 frames announced, 6 written"):
        mrcz.write(tmp_path / "t.mrcz", mrcz.CountedFrames(iter(stack), 5), codec="zstd", checksum=True)
    assert not (tmp_path / "t.mrcz").exists()


def test_verify_without_checksums_says_so(tmp_path, stack):
    mrcz.write(tmp_path / "p.mrcz", stack, codec="zstd")
    with pytest.raises(mrcz.MRCZError, match="no per-frame checksums"):
        mrcz.read(tmp_path / "p.mrcz", verify=True)


def test_checksums_are_not_copied_into_another_file(tmp_path, stack):
    mrcz.write(tmp_path / "a.mrcz", stack, codec="zstd", checksum=True)
    meta = mrcz.read_header(tmp_path / "a.mrcz").meta
    mrcz.write(tmp_path / "b.mrcz", stack[:3], codec="zstd", meta=meta)
    assert mrcz.CHECKSUM_KEY not in (mrcz.read_header(tmp_path / "b.mrcz").meta or {})


def test_cli_compress_checksum_and_info_verify(tmp_path, stack, capsys):
    source = tmp_path / "m.mrc"
    mrcz.write(source, stack)
    out = tmp_path / "m.mrcz"
    assert main(["compress", str(source), str(out), "--codec", "lz4", "--filter", "none", "--checksum"]) == 0
    assert main(["info", str(out), "--verify"]) == 0
    assert "6 frames match" in capsys.readouterr().out
    out.write_bytes(silent_corruption(out, stack))
    assert main(["info", str(out), "--verify"]) == 1
    assert "VERIFY FAILED" in capsys.readouterr().out
