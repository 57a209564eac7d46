"""Parallel MRCZ writing (issue 29): frames cut into parts on blosc block boundaries by
several threads and joined back, chunks written by the workers at prefix-summed offsets. The
bytes must be those of one single-threaded blosc call per frame (python-mrcz's at threads=1)
whatever the thread count, the frame count or how the frames arrive."""
from __future__ import annotations

import mrcz as python_mrcz
import numpy as np
import pytest

from mrczbench import mrcz
from mrczbench.errors import MRCZError
from mrczbench.mrc import chunks, header

RNG = np.random.default_rng(29)


def frame_of(kind: str, shape, dtype) -> np.ndarray:
    """Poisson counts (compressible), random bytes (incompressible: blosc stores them raw) and
    mostly random bytes (chunks within a block of blosc's output limit)."""
    if kind == "poisson":
        return RNG.poisson(1.0, shape).astype(dtype)
    raw = RNG.integers(0, 256, int(np.prod(shape)) * np.dtype(dtype).itemsize, dtype=np.uint8)
    if kind == "near-limit":
        raw[::7] = 0
    return raw.view(dtype).reshape(shape)


@pytest.mark.parametrize("kind", ("poisson", "random", "near-limit"))
@pytest.mark.parametrize("dtype", ("int8", "int16", "float32"))
def test_parts_join_into_the_single_threaded_chunk(kind, dtype):
    joined = 0
    for codec in mrcz.CODECS:
        for filter_id in header.FILTERS.values():
            # ~300 KB: several blocks even where blosc enlarges them to 64 KiB; a short last one
            frame = frame_of(kind, (300 // np.dtype(dtype).itemsize, 1001), dtype)
            for blocksize in (0, 1024, 8192):
                whole = chunks.encode(frame, codec, 1, filter_id, 1, blocksize)
                block = chunks.block_bytes(frame.nbytes, frame.dtype.itemsize, codec, 1,
                                           filter_id, blocksize)
                assert block == chunks.parse_chunk_header(whole[:16]).blocksize
                for parts in (2, 3, 16):
                    ranges = chunks.split_ranges(frame.nbytes, block, parts)
                    pieces = [chunks.encode_part(frame, a, b, codec, 1, filter_id, blocksize)
                              for a, b in ranges]
                    result = chunks.join_parts(pieces, frame.nbytes, block)
                    if result is None:  # the caller falls back to one call
                        continue
                    assert result == whole, (codec, filter_id, blocksize, parts)
                    joined += len(ranges) > 1
    if kind == "poisson":
        assert joined >= 20  # the rebuild is really used, not always refused


def test_split_ranges_keep_two_whole_blocks_per_part():
    assert chunks.split_ranges(10 * 1024 + 5, 1024, 3) == [(0, 3072), (3072, 7168), (7168, 10245)]
    assert chunks.split_ranges(3 * 1024, 1024, 4) == [(0, 3072)]  # no room for two parts
    for parts in range(1, 17):
        ranges = chunks.split_ranges(100 * 1000 + 17, 1000, parts)
        assert ranges[0][0] == 0 and ranges[-1][1] == 100 * 1000 + 17
        assert all(b - a >= 2000 and a % 1000 == 0 for a, b in ranges)


def test_parts_per_frame_fills_the_threads():
    big = 16 * 2**20
    assert chunks.parts_per_frame(16, 10, big) == 3       # 30 units: 2 full rounds of 16
    assert chunks.parts_per_frame(16, 60, big) == 1       # 60 of 64: whole frames suffice
    assert chunks.parts_per_frame(16, 1, big) == 15      # 94 % of the threads
    assert chunks.parts_per_frame(2, 3, big) == 2
    assert chunks.parts_per_frame(16, None, big) == 1     # a stream of unknown length
    assert chunks.parts_per_frame(16, 1, chunks.MIN_PART_BYTES) == 1  # too small to cut
    assert chunks.parts_per_frame(1, 1, big) == 1


@pytest.mark.parametrize("frames", (1, 2, 3, 5, 10, 17, 60))
def test_write_bytes_do_not_depend_on_threads_or_frame_count(tmp_path, monkeypatch, frames):
    monkeypatch.setattr(chunks, "MIN_PART_BYTES", 4096)  # cut these small frames too
    stack = RNG.poisson(1.0, (frames, 64, 256)).astype(np.int8)
    reference = tmp_path / "t1.mrcz"
    mrcz.write(reference, stack, codec="zstd", threads=1, blocksize=1024)
    expected = reference.read_bytes()
    for threads in range(1, 17):
        for data in (stack, list(stack), iter(stack)):  # known count (cut) or a stream
            path = tmp_path / "t.mrcz"
            mrcz.write(path, data, codec="zstd", threads=threads, blocksize=1024)
            assert path.read_bytes() == expected, (threads, type(data).__name__)
    np.testing.assert_array_equal(mrcz.read(reference), stack)


@pytest.mark.parametrize("frames", (1, 3, 10))
@pytest.mark.parametrize("codec", ("zstd", "lz4"))
def test_python_mrcz_bytes_at_any_thread_count(tmp_path, frames, codec):
    # 512 x 512 int8: python-mrcz's rule gives 64 KiB blocks at 1 to 4 threads, so frames are
    # cut into parts of two blocks; at threads=1 python-mrcz writes the same file.
    stack = RNG.poisson(1.0, (frames, 512, 512)).astype(np.int8)
    theirs = tmp_path / "theirs.mrcz"
    python_mrcz.writeMRC(stack, str(theirs), compressor=codec, clevel=1, n_threads=1)
    expected = theirs.read_bytes()
    for threads in (1, 2, 3, 4):
        ours = tmp_path / f"ours{threads}.mrcz"
        mrcz.write(ours, stack, codec=codec, threads=threads, pixelsize=0.1, record_level=False)
        assert ours.read_bytes() == expected, threads


def test_incompressible_frames_cut_into_parts_fall_back_to_blosc_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(chunks, "MIN_PART_BYTES", 4096)
    stack = np.stack([frame_of("random", (128, 256), np.int16) for _ in range(2)])
    mrcz.write(tmp_path / "a.mrcz", stack, codec="lz4", threads=1, blocksize=2048)
    mrcz.write(tmp_path / "b.mrcz", stack, codec="lz4", threads=8, blocksize=2048)
    assert (tmp_path / "a.mrcz").read_bytes() == (tmp_path / "b.mrcz").read_bytes()
    np.testing.assert_array_equal(mrcz.read(tmp_path / "b.mrcz"), stack)


def test_a_failing_stream_leaves_no_file_and_stops_the_workers(tmp_path):
    def frames():
        for index in range(40):
            if index == 25:
                raise OSError("camera went away")
            yield RNG.poisson(1.0, (64, 64)).astype(np.int8)

    path = tmp_path / "s.mrcz"
    with pytest.raises(OSError, match="camera"):
        mrcz.write(path, frames(), codec="zstd", threads=4)
    assert not path.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(MRCZError, match="frame 2"):
        mrcz.write(path, [np.zeros((4, 4), np.int8)] * 2 + [np.zeros((4, 5), np.int8)],
                   codec="zstd", threads=4)
    assert list(tmp_path.iterdir()) == []
