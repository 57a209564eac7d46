"""mrczbench.mrcz: round trips, frame access, streaming, metadata, 4-bit, async, atomic writes."""
import os
import struct

import mrcfile
import numpy as np
import pytest

from mrczbench import mrcz
from mrczbench.errors import MRCZError, MrczbenchError

DTYPES = ("int8", "uint8", "int16", "uint16", "float32", "complex64")


def make_stack(dtype, shape=(3, 20, 30), seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "complex64":
        return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
    if dtype == "float32":
        return rng.normal(100, 20, size=shape).astype(np.float32)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def stored(stack):
    """What legacy MRC readers (mrcfile, python-mrcz) see: uint8 as int8 (same bytes)."""
    return stack.view(np.int8) if stack.dtype == np.uint8 else stack


@pytest.mark.parametrize("codec", (None,) + mrcz.CODECS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_every_codec_and_dtype(tmp_path, codec, dtype):
    stack = make_stack(dtype)
    path = tmp_path / "s.mrcz"
    written = mrcz.write(path, stack, codec=codec, level=3, threads=2)
    assert written == path.stat().st_size
    back = mrcz.read(path)
    assert back.dtype == stack.dtype  # uint8 too: the metadata records it
    np.testing.assert_array_equal(back, stack)
    header = mrcz.read_header(path)
    assert header.shape == stack.shape and header.codec == codec and header.dtype == stack.dtype
    assert header.level == (3 if codec else None)


@pytest.mark.parametrize("codec", (None, "zstd"))
def test_frames_selection_reads_the_right_frames(tmp_path, codec):
    stack = make_stack("int16", (6, 9, 11))
    path = tmp_path / "s.mrcz"
    mrcz.write(path, stack, codec=codec)
    for frames in (0, 5, -1, slice(1, 4), slice(None, None, -2), [4, 0, 4], [], range(2, 5)):
        expected = stack[[frames]] if isinstance(frames, int) else stack[np.arange(6)[frames]]
        np.testing.assert_array_equal(mrcz.read(path, frames=frames), expected.reshape(-1, 9, 11))
    with pytest.raises(MRCZError, match="out of range"):
        mrcz.read(path, frames=6)
    with pytest.raises(MRCZError, match="frames must be"):
        mrcz.read(path, frames=[1.5])
    got = list(mrcz.iter_frames(path, frames=[3, 1]))
    assert [g.shape for g in got] == [(9, 11)] * 2
    np.testing.assert_array_equal(np.stack(got), stack[[3, 1]])


def test_random_access_reads_only_the_needed_chunks(tmp_path):
    # Frames 0 and 2 readable even though chunk 3 is garbage: we never touch it.
    stack = np.random.default_rng(0).poisson(1.0, (4, 32, 32)).astype(np.int8)
    path = tmp_path / "s.mrcz"
    mrcz.write(path, stack, codec="zstd", record_level=False)
    data = bytearray(path.read_bytes())
    offset = 1024
    sizes = []
    for _ in range(4):
        cbytes = struct.unpack("<I", data[offset + 12:offset + 16])[0]
        sizes.append(cbytes)
        offset += cbytes
    last = 1024 + sum(sizes[:3])
    data[last + 16:last + sizes[3]] = b"\xff" * (sizes[3] - 16)
    path.write_bytes(bytes(data))
    np.testing.assert_array_equal(mrcz.read(path, frames=[0, 2]), stack[[0, 2]])
    with pytest.raises(MRCZError, match="chunk 3"):
        mrcz.read(path)


def test_streamed_iterable_of_frames(tmp_path):
    stack = make_stack("uint16", (5, 16, 16))
    consumed = []

    def frames():
        for z, frame in enumerate(stack):
            consumed.append(z)
            yield frame

    path = tmp_path / "s.mrcz"
    mrcz.write(path, frames(), codec="lz4", threads=2)
    assert consumed == list(range(5))
    np.testing.assert_array_equal(mrcz.read(path), stack)
    # a list of frames and a 2-D array work too
    mrcz.write(path, list(stack), codec="zstd")
    np.testing.assert_array_equal(mrcz.read(path), stack)
    mrcz.write(path, stack[0], codec=None)
    np.testing.assert_array_equal(mrcz.read(path), stack[:1])


def test_bad_write_arguments_raise_mrczerror(tmp_path):
    path = tmp_path / "s.mrcz"
    stack = make_stack("int8", (2, 8, 8))
    bad = [dict(codec="snappy"), dict(codec="zstd", level=0), dict(codec="zstd", level=10),
           dict(threads=0), dict(codec="zstd", blocksize=-1), dict(filter="delta"),
           dict(meta_format="xml"), dict(meta=[1]), dict(codec="zstd", mode101=True),
           dict(pixelsize=(1, 2))]
    for kwargs in bad:
        with pytest.raises(MRCZError):
            mrcz.write(path, stack, **kwargs)
    for data in (np.zeros((2, 3), np.float64), np.zeros((2, 2, 2, 2), np.int8), [], 5,
                 [np.zeros((4, 4), np.int8), np.zeros((4, 5), np.int8)],
                 [np.zeros((4, 4), np.int8), np.zeros((4, 4), np.int16)]):
        with pytest.raises(MRCZError):
            mrcz.write(path, data)
    assert not list(tmp_path.iterdir())
    assert issubclass(MRCZError, MrczbenchError) and issubclass(MRCZError, ValueError)


@pytest.mark.parametrize("blocksize", (-5, 1, 100, 1023, 2**31, True, 2048.0))
def test_explicit_blocksize_is_0_or_1024_and_up(tmp_path, blocksize):
    path = tmp_path / "s.mrcz"
    with pytest.raises(MRCZError, match="blocksize must be 0 \\(automatic\\) or 1024-2147483647"
                       ) as info:
        mrcz.write(path, np.zeros((4, 32, 32), np.int8), codec="zstd", blocksize=blocksize)
    assert str(path) not in str(info.value)  # a parameter error, not a file error
    assert not path.exists()
    for ok in (0, 1024, 4096):
        mrcz.write(path, np.zeros((4, 32, 32), np.int8), codec="zstd", blocksize=ok)


def test_parameter_errors_name_the_parameter_not_the_file(tmp_path):
    path = tmp_path / "s.mrcz"
    for kwargs, word in ((dict(threads=-1), "threads"), (dict(codec="zstd", level=0), "level"),
                         (dict(codec="foo"), "codec"), (dict(filter="x"), "filter")):
        with pytest.raises(MRCZError, match=word) as info:
            mrcz.write(path, np.zeros((4, 4), np.int8), **kwargs)
        assert str(path) not in str(info.value)


def test_a_file_without_the_map_stamp_is_not_an_mrc_file(tmp_path):
    path = tmp_path / "t1.tif"
    header = bytearray(1024)
    header[0:16] = b"II*\x00" + bytes(8) + (540).to_bytes(4, "little")
    path.write_bytes(bytes(header) + bytes(4096))
    with pytest.raises(MRCZError, match="not an MRC file \\(no 'MAP ' stamp at byte 208; "
                                        "mode word 540\\)"):
        mrcz.read_header(path)


def test_failed_write_leaves_no_file_and_no_temp(tmp_path):
    path = tmp_path / "s.mrcz"

    def failing():
        yield np.zeros((8, 8), np.int8)
        yield np.ones((8, 8), np.int8)
        raise RuntimeError("detector went away")

    for codec in (None, "zstd"):
        with pytest.raises(RuntimeError, match="detector"):
            mrcz.write(path, failing(), codec=codec)
        assert list(tmp_path.iterdir()) == []
    # an existing file survives a failed overwrite untouched
    mrcz.write(path, np.zeros((8, 8), np.int8))
    before = path.read_bytes()
    with pytest.raises(RuntimeError):
        mrcz.write(path, failing(), codec="zstd")
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("meta_format", ("json", "msgpack"))
def test_metadata_round_trip(tmp_path, meta_format):
    meta = {"dose": 1.25, "detector": "K3", "nested": {"list": [1, 2, 3]}, "unicode": "Å"}
    path = tmp_path / "s.mrcz"
    mrcz.write(path, make_stack("int8", (2, 8, 8)), codec="zstd", meta=meta,
               meta_format=meta_format, voltage=300, C3=2.7, gain=1.5, pixelsize=(2.0, 1.1, 1.2))
    header = mrcz.read_header(path)
    assert header.meta == {**meta, "clevel": 1}
    assert header.meta_format == meta_format
    assert header.exttyp == {"json": b"json", "msgpack": b"mpk "}[meta_format]
    assert (header.voltage, round(header.C3, 5), header.gain) == (300.0, 2.7, 1.5)
    np.testing.assert_allclose(header.pixelsize, (2.0, 1.1, 1.2), rtol=1e-6)
    # numpy values in metadata are stored as plain numbers/lists, as python-mrcz does
    mrcz.write(path, make_stack("int8", (1, 8, 8)), meta={"a": np.float32(1.5),
                                                          "b": np.arange(3)})
    assert mrcz.read_header(path).meta == {"a": 1.5, "b": [0, 1, 2]}
    with pytest.raises(MRCZError, match="metadata"):
        mrcz.write(path, make_stack("int8", (1, 8, 8)), meta={"a": object()})


def test_record_level_false_leaves_no_metadata(tmp_path):
    path = tmp_path / "s.mrcz"
    mrcz.write(path, make_stack("int8", (2, 8, 8)), codec="zstd", record_level=False)
    header = mrcz.read_header(path)
    assert header.meta is None and header.extended_bytes == 0 and header.level is None


@pytest.mark.parametrize("dtype", ("int8", "uint8", "int16", "uint16", "float32"))
def test_plain_output_passes_mrcfile_validate(tmp_path, dtype):
    stack = make_stack(dtype, (3, 10, 12))
    path = tmp_path / "s.mrc"
    # strict MRC2014 validators do not know the 'json' exttyp that records uint8
    mrcz.write(path, stack, pixelsize=1.5, record_dtype=False)
    log = tmp_path / "log.txt"
    with open(log, "w") as out:
        assert mrcfile.validate(str(path), print_file=out), log.read_text()
    with mrcfile.open(path) as mrc:
        np.testing.assert_array_equal(mrc.data, stored(stack))
        assert float(mrc.voxel_size.x) == pytest.approx(1.5)


def test_plain_complex_and_metadata_still_open_in_mrcfile(tmp_path):
    # mrcfile's validator knows neither exttyp 'json' nor 'mpk ', but opens the files fine.
    for meta_format in ("json", "msgpack"):
        path = tmp_path / f"s_{meta_format}.mrc"
        stack = make_stack("complex64", (2, 6, 8))
        mrcz.write(path, stack, meta={"a": 1}, meta_format=meta_format)
        with mrcfile.open(path, permissive=False) as mrc:
            np.testing.assert_array_equal(mrc.data, stack)


@pytest.mark.parametrize("meta_format", ("json", "msgpack"))
@pytest.mark.parametrize("codec", (None, "zstd"))
def test_uint8_is_stored_as_mode0_and_read_back_as_uint8(tmp_path, codec, meta_format):
    stack = np.arange(256, dtype=np.uint8).reshape(1, 16, 16).repeat(3, axis=0)
    path = tmp_path / "u8.mrcz"
    mrcz.write(path, stack, codec=codec, meta={"a": 1}, meta_format=meta_format)
    raw = path.read_bytes()
    assert int.from_bytes(raw[12:16], "little") % 1000 == 0  # mode 0: the same bytes as int8
    header = mrcz.read_header(path)
    assert header.mode == 0 and header.dtype == np.uint8
    assert header.meta["dtype"] == "uint8" and header.meta["a"] == 1
    back = mrcz.read(path)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, stack)
    np.testing.assert_array_equal(mrcz.read(path, frames=[2]), stack[2:])
    frames = list(mrcz.iter_frames(path))
    assert all(frame.dtype == np.uint8 for frame in frames)
    np.testing.assert_array_equal(np.stack(frames), stack)


def test_uint8_streamed_frames_record_the_dtype(tmp_path):
    # an iterable: the dtype is known from the first frame before the header is written
    frames = (np.full((8, 8), 200 + z, np.uint8) for z in range(3))
    path = tmp_path / "u8.mrcz"
    mrcz.write(path, frames, codec="lz4")
    back = mrcz.read(path)
    assert back.dtype == np.uint8 and back[2, 0, 0] == 202


def test_uint8_without_the_dtype_key_is_told_by_the_imod_stamp(tmp_path):
    # record_dtype=False: no metadata, but IMOD's stamp (bytes 152-159, signed flag clear)
    # still marks mode 0 as unsigned, for us and for IMOD; without the stamp it is int8
    stack = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    for codec in (None, "zstd"):
        path = tmp_path / "u8.mrcz"
        mrcz.write(path, stack, codec=codec, record_dtype=False, record_level=False)
        assert mrcz.read_header(path).meta is None
        raw = bytearray(path.read_bytes())
        assert struct.unpack("<2i", raw[152:160]) == (mrcz.IMOD_STAMP, 0)
        back = mrcz.read(path)
        assert back.dtype == np.uint8
        np.testing.assert_array_equal(back, stack)
        raw[152:160] = bytes(8)
        path.write_bytes(bytes(raw))
        back = mrcz.read(path)
        assert back.dtype == np.int8
        np.testing.assert_array_equal(back.view(np.uint8), stack)
    # int8 data carries no stamp (python-mrcz's header bytes stay identical)
    mrcz.write(path, stack.view(np.int8), codec="zstd")
    assert path.read_bytes()[152:160] == bytes(8)


def test_uint8_files_are_int8_to_mrcfile(tmp_path):
    stack = np.full((2, 6, 8), 200, np.uint8)
    path = tmp_path / "u8.mrc"
    mrcz.write(path, stack)
    with mrcfile.open(path, permissive=True) as mrc:
        assert mrc.data.dtype == np.int8 and mrc.data[0, 0, 0] == -56


def test_dtype_key_must_match_the_data(tmp_path):
    with pytest.raises(mrcz.MRCZError, match="reserved"):
        mrcz.write(tmp_path / "x.mrcz", np.zeros((4, 4), np.int8), meta={"dtype": "uint8"})
    assert not (tmp_path / "x.mrcz").exists()


@pytest.mark.parametrize("nx", (1, 7, 8))
def test_mode101_round_trip_and_layout(tmp_path, nx):
    stack = (np.arange(3 * 5 * nx).reshape(3, 5, nx) % 16).astype(np.uint8)
    path = tmp_path / "s.mrc"
    mrcz.write(path, stack, mode101=True)
    header = mrcz.read_header(path)
    assert header.mode == 101 and header.shape == (3, 5, nx)
    assert path.stat().st_size == 1024 + 3 * 5 * ((nx + 1) // 2)
    raw = np.frombuffer(path.read_bytes()[1024:1024 + (nx + 1) // 2], np.uint8)
    assert raw[0] & 0x0F == stack[0, 0, 0]  # left pixel in the low nibble
    if nx > 1:
        assert raw[0] >> 4 == stack[0, 0, 1]
    back = mrcz.read(path)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, stack)
    np.testing.assert_array_equal(mrcz.read(path, frames=[2]), stack[2:])


def test_mode101_refuses_out_of_range_unless_clip(tmp_path):
    stack = np.array([[[0, 16], [3, -1]]], dtype=np.int16)
    path = tmp_path / "s.mrc"
    with pytest.raises(MRCZError, match="0..15"):
        mrcz.write(path, stack, mode101=True)
    assert not path.exists()
    mrcz.write(path, stack, mode101=True, clip=True)
    np.testing.assert_array_equal(mrcz.read(path), [[[0, 15], [3, 0]]])
    with pytest.raises(MRCZError, match="integer"):
        mrcz.write(path, stack.astype(np.float32), mode101=True)


def test_async_read_and_write(tmp_path):
    stack = make_stack("float32", (2, 8, 8))
    path = tmp_path / "s.mrcz"
    future = mrcz.async_write(path, stack, codec="zstd")
    assert future.result(timeout=30) == path.stat().st_size
    np.testing.assert_array_equal(mrcz.async_read(path).result(timeout=30), stack)
    failed = mrcz.async_write(path, stack, codec="nope")
    with pytest.raises(MRCZError):
        failed.result(timeout=30)


@pytest.mark.parametrize("filter", ("none", "shuffle", "bitshuffle"))
def test_filter_option(tmp_path, filter):
    stack = np.random.default_rng(0).poisson(2.0, (2, 32, 32)).astype(np.int16)
    path = tmp_path / "s.mrcz"
    mrcz.write(path, stack, codec="lz4", filter=filter, blocksize=1024)
    header = mrcz.read_header(path)
    assert header.filter == filter
    np.testing.assert_array_equal(mrcz.read(path), stack)


def test_default_blocksize_follows_python_mrcz_rule(tmp_path):
    path = tmp_path / "s.mrcz"
    mrcz.write(path, make_stack("int16", (1, 40, 50)), codec="zstd", threads=2)
    assert mrcz.read_header(path).blocksize == 40 * 50 // 2  # pixels, not bytes, as python-mrcz


@pytest.mark.parametrize("frames", [1, 4])
def test_thread_count_does_not_change_the_bytes(tmp_path, frames):
    # 8 threads on 4 frames: 2 blosc threads a frame; on 1 frame: all 8 for it
    stack = make_stack("int16", (frames, 64, 64))
    blobs = set()
    for threads in (1, 2, 3, 8):
        for data in (stack, iter(stack)):  # an array, and a stream of unknown length
            path = tmp_path / f"t{threads}.mrcz"
            mrcz.write(path, data, codec="zstd", threads=threads, blocksize=1024)
            blobs.add(path.read_bytes())
    assert len(blobs) == 1


def test_headers_statistics(tmp_path):
    stack = make_stack("int16", (3, 10, 10))
    path = tmp_path / "s.mrc"
    mrcz.write(path, stack)
    header = mrcz.read_header(path)
    assert (header.dmin, header.dmax) == (stack.min(), stack.max())
    assert header.dmean == pytest.approx(stack.mean(), rel=1e-6)
    # compressed: python-mrcz's quick statistics from the first frame
    mrcz.write(path, stack, codec="zstd")
    header = mrcz.read_header(path)
    assert (header.dmin, header.dmax) == (stack[0].min(), stack[0].max())
    assert header.dmean == pytest.approx((int(stack[0].min()) + int(stack[0].max())) / 2)


def test_big_endian_array_input_is_stored_little_endian(tmp_path):
    stack = make_stack("int16", (2, 6, 6)).astype(">i2")
    path = tmp_path / "s.mrcz"
    for codec in (None, "zstd"):
        mrcz.write(path, stack, codec=codec)
        back = mrcz.read(path)
        assert back.dtype == np.dtype("int16")
        np.testing.assert_array_equal(back, stack)


def test_path_like_and_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mrcz.write("rel.mrcz", make_stack("int8", (1, 4, 4)), codec="zstd")
    assert os.path.exists("rel.mrcz")
    assert mrcz.read("rel.mrcz").shape == (1, 4, 4)


def test_writing_onto_a_folder_names_the_folder(tmp_path):
    from mrczbench.atomic import atomic_path
    target = tmp_path / "adir.mrcz"
    target.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        mrcz.write(target, np.zeros((4, 4), np.int8), codec="zstd")
    assert info.value.filename == str(target) and ".tmp" not in str(info.value)
    with pytest.raises(IsADirectoryError):
        with atomic_path(target):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.mrcz"]
    assert not list(target.iterdir())
