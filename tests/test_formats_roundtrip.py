"""Every contender round-trips bit-exact (file and memory), refuses what it cannot store, and
every setting changes the output (a setting that silently did not apply is a bug)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from mrczbench.errors import FormatError
from mrczbench.formats import format_names, get_format
from mrczbench.formats.base import Format

DTYPES = ("int8", "int16", "float32")

# (name, params) for one or two settings per contender; all built-ins appear at least once
SETTINGS = [
    ("mrc", {}),
    ("mrcz", {}),
    ("mrcz", {"codec": "lz4", "level": 9, "filter": "shuffle", "threads": 2}),
    ("mrcz", {"codec": "zlib", "filter": "none", "blocksize": 4096}),
    ("mrc-uint4", {}),
    ("tiff", {}),
    ("tiff", {"compression": "deflate", "level": 9, "line_by_line": True, "threads": 2}),
    ("tiff", {"compression": "none"}),
    ("bzip2", {"level": 1}),
    ("lbzip2", {"threads": 2}),
    ("pigz", {}),
    ("xz", {"level": 1}),
    ("pxz", {}),
    ("zstd-cli", {"threads": 2}),
    ("lz4-cli", {}),
    ("zstd", {"threads": 2}),
    ("lz4", {"level": 9}),
    ("pcodec", {"threads": 2}),
    ("htj2k", {}),
    ("jpegls", {"threads": 2}),
    ("lerc", {}),
    ("lerc", {"compression": "zstd", "threads": 2}),
    ("jpeg2000", {}),
    ("jpegxl", {"effort": 3}),
    ("hdf5", {}),
    ("hdf5", {"compression": "bitshuffle-zstd", "level": 5}),
    ("blosc2", {}),
    ("blosc2", {"codec": "lz4", "filter": "bytedelta", "threads": 2, "blocksize": 8192}),
    ("gain-counts", {}),
    ("gain-counts", {"inner": "tiff", "compression": "deflate", "threads": 2, "thresh": 2}),
]

# the dtypes a contender cannot store, and a word the reason must contain
CANNOT_STORE = {
    ("jpeg2000", "float32"): "float32",
    ("mrc-uint4", "int16"): "int16",
    ("mrc-uint4", "float32"): "float32",
    ("htj2k", "float32"): "unsupported dtype float32",
    ("jpegls", "float32"): "unsupported dtype float32",
}


def movie(dtype: str, shape=(3, 64, 48), dose=1.0, seed=0) -> np.ndarray:
    """Poisson counts as a counting detector gives them. Signed types get a few negative
    values (dark-subtracted data) so that sign handling is tested too; float32 is a
    gain-normalised movie (counts x non-integer gain)."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(dose, size=shape)
    if dtype == "float32":
        gain = rng.uniform(0.9, 1.1, size=shape[1:]).astype(np.float32)
        return (counts * gain).astype(np.float32)
    counts[:, 0, :5] = -np.arange(1, 6)
    return counts.astype(dtype)


def counts_0_15(shape=(3, 64, 48)) -> np.ndarray:
    return np.minimum(movie("int8", shape, dose=2.0), 15).clip(0).astype(np.int8)


def available(name: str, params=None) -> Format:
    fmt = get_format(name, **(params or {}))
    reason = fmt.unavailable_reason()
    if reason:
        pytest.skip(f"{name}: {reason}")
    return fmt


def test_settings_cover_every_builtin():
    from mrczbench.formats import BUILTIN

    # metadata stores documents, not stacks: tests/test_formats_metadata.py
    assert {name for name, _ in SETTINGS} == set(BUILTIN) - {"metadata"}
    assert set(BUILTIN) <= set(format_names())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, params", SETTINGS,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(SETTINGS)])
def test_round_trip_is_bit_exact(name, params, dtype, tmp_path):
    fmt = available(name, params)
    stack = counts_0_15() if name == "mrc-uint4" and dtype == "int8" else movie(dtype)
    reason = fmt.check_data(stack)
    if (name, dtype) in CANNOT_STORE:
        assert reason and CANNOT_STORE[name, dtype] in reason
        with pytest.raises(FormatError):
            fmt.write(tmp_path / f"x{fmt.suffix}", stack)
        assert os.listdir(tmp_path) == []  # nothing half-written
        return
    assert reason is None

    path = tmp_path / f"movie{fmt.suffix}"
    stored = fmt.write(path, stack)
    assert stored == path.stat().st_size > 0
    back = fmt.read(path)
    if name == "mrc-uint4":  # mode 101 reads as unsigned: the same bytes as int8 0-15
        assert back.dtype == np.uint8
        back = back.view(stack.dtype)
    assert back.dtype == stack.dtype
    assert back.shape == stack.shape
    assert np.array_equal(back, stack)
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no temporary files left behind

    # overwriting replaces the file in one step
    fmt.write(path, stack[:2])
    assert np.array_equal(fmt.read(path), stack[:2])
    assert sorted(os.listdir(tmp_path)) == [path.name]

    if fmt.has_memory_codec:
        blob = fmt.encode(stack)
        assert isinstance(blob, bytes)
        decoded = fmt.decode(blob, stack.shape, stack.dtype)
        assert decoded.dtype == stack.dtype
        assert np.array_equal(decoded, stack)


@pytest.mark.parametrize("name", ["mrc", "mrcz", "tiff", "bzip2", "hdf5", "blosc2", "jpegxl"])
def test_single_frame_and_odd_shapes(name, tmp_path):
    fmt = available(name)
    stack = movie("int16", shape=(1, 7, 13))
    path = tmp_path / f"one{fmt.suffix}"
    fmt.write(path, stack)
    assert np.array_equal(fmt.read(path), stack)


# --- the dtypes the detector models produce --------------------------------------------------
DETECTOR_DTYPES = ("int8", "uint8", "int16", "float32")
# contender -> detector dtypes it cannot store losslessly (every other one must be accepted)
CANNOT_STORE_DETECTOR = {"jpeg2000": {"float32"}, "mrc-uint4": {"int16", "float32"},
                         "htj2k": {"float32"}, "jpegls": {"float32"}}


def as_bytes(array: np.ndarray) -> np.ndarray:
    """Compare pixels as the runner does: the same shape and bytes (uint8 stored as mode 0
    may come back as int8 from the MRC family)."""
    return np.ascontiguousarray(array).view(np.uint8)


def uint8_counts(shape=(3, 64, 48)) -> np.ndarray:
    """8-bit counts as K3/EPU counting TIFFs hold them, with values above 127 so that a
    signed round trip would show."""
    stack = np.random.default_rng(3).poisson(1.0, size=shape).astype(np.uint8)
    stack[:, 0, :6] = [128, 200, 250, 255, 129, 254]
    return stack


@pytest.mark.parametrize("name", sorted({n for n, _ in SETTINGS}))
def test_every_contender_declares_the_detector_dtypes_it_can_store(name):
    fmt = get_format(name)
    accepted = {dtype for dtype in DETECTOR_DTYPES
                if fmt.lossless_dtypes is None or dtype in fmt.lossless_dtypes}
    assert set(DETECTOR_DTYPES) - accepted == CANNOT_STORE_DETECTOR.get(name, set())


@pytest.mark.parametrize("name, params", SETTINGS,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(SETTINGS)])
def test_uint8_round_trip_is_bit_exact(name, params, tmp_path):
    fmt = available(name, params)
    stack = counts_0_15().view(np.uint8) if name == "mrc-uint4" else uint8_counts()
    assert fmt.check_data(stack) is None, fmt.check_data(stack)
    path = tmp_path / f"movie{fmt.suffix}"
    fmt.write(path, stack)
    back = fmt.read(path)
    assert back.shape == stack.shape and back.dtype.itemsize == 1
    assert np.array_equal(as_bytes(back), as_bytes(stack))
    if name not in ("mrc", "mrcz"):  # those follow mrczbench.mrcz's read-back dtype
        assert back.dtype == np.uint8
    assert sorted(os.listdir(tmp_path)) == [path.name]
    if fmt.has_memory_codec:
        decoded = fmt.decode(fmt.encode(stack), stack.shape, stack.dtype)
        assert decoded.dtype == np.uint8
        assert np.array_equal(as_bytes(decoded), as_bytes(stack))


@pytest.mark.parametrize("name, params", [
    ("mrc", {}), ("mrcz", {}), ("mrcz", {"codec": "lz4", "threads": 2}), ("bzip2", {}),
    ("zstd-cli", {}), ("zstd", {"threads": 2}), ("lz4", {}), ("hdf5", {}), ("blosc2", {})])
def test_complex64_round_trip_is_bit_exact(name, params, tmp_path):
    fmt = available(name, params)
    rng = np.random.default_rng(4)
    stack = (rng.standard_normal((3, 16, 20)) + 1j * rng.standard_normal((3, 16, 20)))
    stack = stack.astype(np.complex64)
    assert fmt.check_data(stack) is None
    path = tmp_path / f"movie{fmt.suffix}"
    fmt.write(path, stack)
    back = fmt.read(path)
    assert back.dtype == np.complex64 and np.array_equal(as_bytes(back), as_bytes(stack))
    if fmt.has_memory_codec:
        decoded = fmt.decode(fmt.encode(stack), stack.shape, stack.dtype)
        assert decoded.dtype == np.complex64 and np.array_equal(decoded, stack)


def test_mrc_family_lists_complex64():
    for name in ("mrc", "mrcz", "bzip2", "zstd-cli", "zstd", "lz4"):
        assert "complex64" in get_format(name).describe()["dtypes"]


def test_plain_mrc_payload_records_signedness_the_imod_way():
    """uint8 and int8 share mode 0; the IMOD stamp + imodFlags bit 0 tell them apart, so the
    byte compressors give back what they were given."""
    from mrczbench.formats import mrcraw

    for dtype, flags in (("uint8", 0), ("int8", 1)):
        stack = np.arange(24, dtype=dtype).reshape(2, 3, 4)
        blob = mrcraw.to_bytes(stack)
        assert np.frombuffer(blob[152:160], "<i4").tolist() == [mrcraw.IMOD_STAMP, flags]
        assert int(np.frombuffer(blob[12:16], "<i4")[0]) == 0  # mode 0 for both
        back = mrcraw.from_bytes(blob)
        assert back.dtype == np.dtype(dtype) and np.array_equal(back, stack)
    # an unstamped mode-0 file (any other writer) reads as MRC2014 says: int8
    plain = bytearray(mrcraw.to_bytes(np.zeros((1, 2, 2), np.uint8)))
    plain[152:160] = bytes(8)
    assert mrcraw.from_bytes(bytes(plain)).dtype == np.int8


# --- mrc-uint4: lossy data is reported, never clipped ----------------------------------------
def test_uint4_reports_values_above_15_and_refuses_to_clip(tmp_path):
    fmt = get_format("mrc-uint4")
    stack = counts_0_15()
    stack[1, 2, 3] = 16
    stack[2, 0, 0] = 40
    reason = fmt.check_data(stack)
    assert reason and "2 of" in reason and "max 40" in reason and "lossy" in reason
    with pytest.raises(FormatError, match="outside"):
        fmt.encode(stack)
    with pytest.raises(FormatError, match="outside"):
        fmt.write(tmp_path / "x.mrc", stack)
    assert not (tmp_path / "x.mrc").exists()
    negative = counts_0_15()
    negative[0, 0, 0] = -1
    assert "min -1" in fmt.check_data(negative)


def test_uint4_packs_two_pixels_per_byte_low_nibble_first():
    fmt = get_format("mrc-uint4")
    stack = np.array([[[1, 2, 3], [15, 0, 7]]], dtype=np.uint8)  # odd width: padded rows
    blob = fmt.encode(stack)
    assert blob == bytes([0x21, 0x03, 0x0F, 0x07])
    assert np.array_equal(fmt.decode(blob, stack.shape, stack.dtype), stack)


# --- every setting changes the output ------------------------------------------------------
def sizes(name, variants, stack):
    """Encoded size per variant (in memory where possible, else via a file)."""
    out = {}
    for key, params in variants.items():
        fmt = available(name, params)
        out[key] = fmt.encode(stack)
    return out


def assert_all_differ(blobs):
    values = list(blobs.values())
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            assert values[i] != values[j], f"{list(blobs)[i]} == {list(blobs)[j]}"


BIG = (2, 256, 256)  # > 100 kB so that block-size levels (bzip2) matter


def test_mrcz_codec_level_filter_blocksize_change_output():
    stack = movie("int16", BIG)
    blobs = sizes("mrcz", {
        "zstd-1": {}, "zstd-5": {"level": 5}, "lz4-1": {"codec": "lz4"},
        "zlib-1": {"codec": "zlib"}, "blosclz-1": {"codec": "blosclz"},
        "lz4hc-1": {"codec": "lz4hc"}, "shuffle": {"filter": "shuffle"},
        "none": {"filter": "none"}, "bs16K": {"blocksize": 16384}}, stack)
    assert_all_differ(blobs)
    # bitshuffle is why MRCZ compresses counts well
    assert len(blobs["zstd-1"]) < len(blobs["none"])
    # int8: a byte shuffle of 1-byte values is a no-op, bitshuffle is not
    small = movie("int8", BIG)
    shuffle, none, bitshuffle = (get_format("mrcz", filter=f).encode(small)
                                 for f in ("shuffle", "none", "bitshuffle"))
    # (each chunk's flags byte records the filter, but the compressed data is the same)
    assert shuffle != none and len(shuffle) == len(none)
    assert len(bitshuffle) < len(none)


def test_mrcz_threads_do_not_change_output_at_a_fixed_blocksize():
    # (the automatic blocksize, python-mrcz's rule, divides the frame by the thread count)
    stack = movie("int16", BIG)
    one, two = (get_format("mrcz", threads=t, blocksize=65536).encode(stack) for t in (1, 2))
    assert one == two


def test_tiff_compression_level_and_strips_change_output():
    import io

    import tifffile

    stack = movie("int16", BIG)
    blobs = sizes("tiff", {
        "lzw": {}, "deflate-1": {"compression": "deflate", "level": 1},
        "deflate-6": {"compression": "deflate"}, "deflate-9": {"compression": "deflate", "level": 9},
        "none": {"compression": "none"}, "lzw-lines": {"line_by_line": True}}, stack)
    assert_all_differ(blobs)
    assert len(blobs["deflate-9"]) <= len(blobs["deflate-1"])
    assert len(blobs["lzw"]) < len(blobs["lzw-lines"])  # one strip per frame compresses better
    expected = {"lzw": (5, 256), "deflate-6": (8, 256), "none": (1, 256), "lzw-lines": (5, 1)}
    for key, (tag, rows) in expected.items():
        with tifffile.TiffFile(io.BytesIO(blobs[key])) as tif:
            assert len(tif.pages) == BIG[0]
            for page in tif.pages:
                assert page.compression == tag
                assert page.rowsperstrip == rows
                assert len(page.dataoffsets) == BIG[1] // rows


def test_bzip2_level_changes_output():
    stack = movie("int16", BIG)
    blobs = sizes("bzip2", {"1": {"level": 1}, "9": {"level": 9}}, stack)
    assert blobs["1"][:4] == b"BZh1" and blobs["9"][:4] == b"BZh9"
    assert len(blobs["1"]) != len(blobs["9"])  # not just the header byte


def test_jpegxl_effort_changes_output():
    stack = movie("int16", (1, 128, 128))
    assert_all_differ(sizes("jpegxl", {"1": {"effort": 1}, "7": {}}, stack))


def test_hdf5_compression_and_level_are_in_the_filter_pipeline(tmp_path):
    import h5py

    stack = movie("int16", BIG)
    expected = {  # bitshuffle cd_values[4] = compressor (2 lz4, 3 zstd), [5] = level
        "lz4": ({}, 2, None),
        "zstd-3": ({"compression": "bitshuffle-zstd"}, 3, 3),
        "zstd-9": ({"compression": "bitshuffle-zstd", "level": 9}, 3, 9),
    }
    for key, (params, compressor, level) in expected.items():
        path = tmp_path / f"{key}.h5"
        available("hdf5", params).write(path, stack)
        with h5py.File(path, "r") as h5:
            dataset = h5["data"]
            assert dataset.chunks == (1,) + BIG[1:]  # one chunk per frame
            cd_values = dataset._filters["32008"]
            assert cd_values[4] == compressor
            if level is not None:
                assert cd_values[5] == level
    assert_all_differ({key: (tmp_path / f"{key}.h5").read_bytes() for key in expected})


def test_blosc2_codec_level_filter_blocksize_change_output(tmp_path):
    import blosc2

    stack = movie("int16", BIG)
    blobs = sizes("blosc2", {
        "zstd-1": {}, "zstd-5": {"level": 5}, "lz4": {"codec": "lz4"},
        "shuffle": {"filter": "shuffle"}, "bytedelta": {"filter": "bytedelta"},
        "none": {"filter": "none"}, "bs16K": {"blocksize": 16384}}, stack)
    assert_all_differ(blobs)
    path = tmp_path / "x.b2nd"
    get_format("blosc2", codec="lz4", level=7, filter="bytedelta", threads=2).write(path, stack)
    stored = blosc2.open(str(path))
    assert stored.chunks == (1,) + BIG[1:]
    path16 = tmp_path / "bs16K.b2nd"
    get_format("blosc2", blocksize=16384).write(path16, stack)
    assert blosc2.open(str(path16)).schunk.blocksize == 16384  # 32 rows of 512 bytes
    cparams = stored.schunk.cparams
    assert cparams.codec == blosc2.Codec.LZ4 and cparams.clevel == 7
    assert blosc2.Filter.BYTEDELTA in cparams.filters


# --- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tiff", "bzip2", "hdf5", "blosc2", "jpegxl", "mrc", "mrcz"])
def test_reading_garbage_is_a_format_error(name, tmp_path):
    fmt = available(name)
    path = tmp_path / f"bad{fmt.suffix}"
    path.write_bytes(b"this is not a movie" * 10)
    with pytest.raises(FormatError):
        fmt.read(path)


def test_wrong_dimensions_are_reported():
    reason = get_format("tiff").check_data(np.zeros((4, 4), np.int8))
    assert "(frames, y, x)" in reason
    with pytest.raises(FormatError):
        get_format("bzip2").encode(np.zeros((4, 4), np.int8))
