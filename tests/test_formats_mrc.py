"""The MRC family on the reference codec: the in-memory codec holds exactly the file's chunks,
and the files open in python-mrcz (mode 101 included) and mrcfile."""
from __future__ import annotations

import numpy as np
import pytest

from mrczbench.errors import FormatError
from mrczbench.formats import get_format

from test_formats_roundtrip import counts_0_15, movie

mrcz_package = pytest.importorskip("mrcz", reason="python-mrcz (the mrcz package) is not installed")


def payload(path) -> bytes:
    """The bytes after the header and extended header."""
    import mrczbench.mrcz as codec

    return path.read_bytes()[codec.read_header(path).data_offset:]


@pytest.mark.parametrize("params", [
    {}, {"codec": "lz4", "level": 9}, {"codec": "zlib", "filter": "shuffle"},
    {"codec": "blosclz", "filter": "none", "blocksize": 4096},
    {"codec": "lz4hc", "threads": 2},
])
@pytest.mark.parametrize("dtype", ["int8", "int16", "float32"])
def test_mrcz_memory_codec_holds_the_files_chunks(params, dtype, tmp_path):
    fmt = get_format("mrcz", **params)
    stack = movie(dtype)
    path = tmp_path / "movie.mrcz"
    fmt.write(path, stack)
    assert fmt.encode(stack) == payload(path)
    import mrczbench.mrcz as codec

    header = codec.read_header(path)
    assert header.codec == fmt.config.codec
    assert header.filter == fmt.config.filter


@pytest.mark.parametrize("params", [{}, {"codec": "lz4", "filter": "shuffle"},
                                    {"codec": "zlib", "filter": "none", "threads": 2}])
def test_mrcz_opens_in_python_mrcz(params, tmp_path):
    stack = movie("int16")
    path = tmp_path / "movie.mrcz"
    get_format("mrcz", **params).write(path, stack)
    data, header = mrcz_package.readMRC(str(path), n_threads=1)
    assert np.array_equal(np.asarray(data).reshape(stack.shape), stack)
    assert header["compressor"] == params.get("codec", "zstd")


def test_mrc_opens_in_mrcfile_and_python_mrcz(tmp_path):
    import mrcfile

    stack = movie("float32")
    path = tmp_path / "movie.mrc"
    get_format("mrc").write(path, stack)
    assert path.stat().st_size == 1024 + stack.nbytes
    with mrcfile.open(path, permissive=False) as mrc:
        assert np.array_equal(mrc.data, stack)
    data, _ = mrcz_package.readMRC(str(path))
    assert np.array_equal(np.asarray(data).reshape(stack.shape), stack)
    assert get_format("mrc").encode(stack) == payload(path)


@pytest.mark.parametrize("nx", [48, 47])  # odd widths pad each row to (nx + 1) // 2 bytes
def test_uint4_file_opens_in_python_mrcz(nx, tmp_path):
    stack = counts_0_15(shape=(3, 64, nx))
    fmt = get_format("mrc-uint4")
    path = tmp_path / "movie.mrc"
    stored = fmt.write(path, stack)
    packed_bytes = 3 * 64 * ((nx + 1) // 2)
    assert stored == 1024 + packed_bytes  # half the size of int8: the paper's 0.50
    assert fmt.encode(stack) == payload(path)
    header_mode = int(np.frombuffer(path.read_bytes()[12:16], "<i4")[0])
    assert header_mode == 101
    if nx % 2 == 0:  # python-mrcz unpacks whole bytes; odd widths it does not handle
        mz = int(np.frombuffer(path.read_bytes()[36:40], "<i4")[0])
        # python-mrcz reads mode 101 only as one volume (mz = 0); with mz > 0 ("slices per
        # frame") it raises, so the writer must leave mz at 0 for mode 101
        assert mz == 0, f"mode 101 file has mz = {mz}: python-mrcz cannot read it"
        data, header = mrcz_package.readMRC(str(path))
        assert np.array_equal(np.asarray(data).reshape(stack.shape), stack)
    back = fmt.read(path)
    assert back.dtype == np.uint8 and np.array_equal(back, stack)


def test_uint4_values_above_15_leave_no_file(tmp_path):
    stack = counts_0_15()
    stack[0, 5, 5] = 16
    with pytest.raises(FormatError, match=r"1 of 9216 pixels are outside \(min 0, max 16\)"):
        get_format("mrc-uint4").write(tmp_path / "x.mrc", stack)
    assert list(tmp_path.iterdir()) == []


def test_mrcz_filters_compress_differently_on_disk(tmp_path):
    stack = movie("int16", (2, 256, 256))
    sizes = {f: get_format("mrcz", filter=f).write(tmp_path / f"{f}.mrcz", stack)
             for f in ("bitshuffle", "shuffle", "none")}
    assert sizes["bitshuffle"] < sizes["shuffle"] < sizes["none"]


@pytest.mark.parametrize("blocksize", [0, 16384, 32768])
def test_mrcz_blocksize_reaches_the_chunks(blocksize, tmp_path):
    import mrczbench.mrcz as codec

    stack = movie("int16", (2, 256, 256))
    fmt = get_format("mrcz", blocksize=blocksize, threads=2)
    path = tmp_path / "movie.mrcz"
    fmt.write(path, stack)
    # 0 = MRCZ's automatic rule: min(64 KiB, pixels per frame // threads)
    assert codec.read_header(path).blocksize == (blocksize or 32768)
    assert fmt.encode(stack) == payload(path)


def test_choices_match_the_reference_codec():
    import mrczbench.mrcz as codec
    from mrczbench.formats import mrc

    assert mrc.CODECS == codec.CODECS
    assert set(mrc.FILTERS) == set(codec.FILTERS)


@pytest.mark.parametrize("config", [{"format": "mrc"}, {"format": "mrcz", "codec": "zstd", "level": 1, "threads": 2}])
def test_decode_into_a_reused_output_equals_decode(config):
    from mrczbench.formats import format_class
    params = dict(config)
    fmt = format_class(params.pop("format"))(**params)
    stack = np.random.default_rng(0).poisson(1.0, (3, 32, 24)).astype(np.int8)
    blob = fmt.encode(stack)
    out = np.full(stack.shape, 7, stack.dtype)
    fmt.decode_into(blob, out)
    assert fmt.decodes_into and np.array_equal(out, stack)
    assert np.array_equal(fmt.decode(blob, stack.shape, stack.dtype), stack)
