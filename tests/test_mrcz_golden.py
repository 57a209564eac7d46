"""The on-disk format, pinned: golden files written by python-mrcz (and a few by us) are read
back bit-exact, and our writer reproduces python-mrcz's files byte for byte; interop with the
installed python-mrcz (`mrcz` package) in both directions for every codec and dtype."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from mrczbench import mrcz

python_mrcz = pytest.importorskip("mrcz")  # the reference implementation (pip install mrcz)

GOLDEN = Path(__file__).parent / "golden"
_spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)
pattern = make_golden.pattern
CASES = list(make_golden.golden_cases())

# Plain files differ from python-mrcz's on purpose in these header bytes (MRC2014 validity):
# mx/my/mz 28-40, cella.z 48-52, statistics 76-88, nversion 108-112, rms 216-220.
PLAIN_DIFFERENCES = [(28, 40), (48, 52), (76, 88), (108, 112), (216, 220)]


def expected_pixels(name, dtype):
    if "uint4" in name:
        return (pattern("int8") % 16).astype(np.uint8)
    return pattern(dtype)


@pytest.mark.parametrize("name,dtype,kwargs", CASES, ids=[c[0] for c in CASES])
def test_golden_python_mrcz_files_read_bit_exact(name, dtype, kwargs):
    path = GOLDEN / name
    back = mrcz.read(path)
    expected = expected_pixels(name, dtype)
    assert back.dtype == expected.dtype.newbyteorder("=")
    np.testing.assert_array_equal(back, expected)
    header = mrcz.read_header(path)
    assert header.codec == kwargs.get("compressor")
    assert header.byte_order == (">" if kwargs.get("endian") == "be" else "<")
    np.testing.assert_allclose(header.pixelsize, (0.1, 0.1, 0.1), rtol=1e-6)
    np.testing.assert_array_equal(mrcz.read(path, frames=[1]), expected[1:])


@pytest.mark.parametrize("name,dtype,kwargs", CASES, ids=[c[0] for c in CASES])
def test_our_writer_reproduces_golden_files(name, dtype, kwargs, tmp_path):
    if kwargs.get("endian") == "be":
        pytest.skip("we write little-endian only (python-mrcz's default)")
    ours = tmp_path / name
    mrcz.write(ours, expected_pixels(name, dtype), codec=kwargs.get("compressor"),
               level=kwargs.get("clevel", 1), threads=1, meta=kwargs.get("meta"),
               voltage=kwargs.get("voltage", 0.0), C3=kwargs.get("C3", 0.0),
               gain=kwargs.get("gain", 1.0), pixelsize=0.1, mode101="uint4" in name,
               record_level=False)
    mine, theirs = bytearray(ours.read_bytes()), bytearray((GOLDEN / name).read_bytes())
    if kwargs.get("compressor") is None:
        for start, end in PLAIN_DIFFERENCES:
            mine[start:end] = theirs[start:end] = bytes(end - start)
    assert len(mine) == len(theirs)
    assert mine == theirs, f"first differing byte: {next(i for i in range(len(mine)) if mine[i] != theirs[i])}"


def test_golden_files_of_our_own_choices():
    header = mrcz.read_header(GOLDEN / "ours_zstd_int16_clevel.mrcz")
    assert header.level == 5 and header.meta == {**make_golden.META, "clevel": 5}
    np.testing.assert_array_equal(mrcz.read(GOLDEN / "ours_zstd_int16_clevel.mrcz"),
                                  pattern("int16"))
    header = mrcz.read_header(GOLDEN / "ours_lz4_float32_msgpack.mrcz")
    assert header.exttyp == b"mpk " and header.meta_format == "msgpack"
    assert header.meta == {**make_golden.META, "clevel": 1}
    np.testing.assert_array_equal(mrcz.read(GOLDEN / "ours_lz4_float32_msgpack.mrcz"),
                                  pattern("float32"))
    odd = mrcz.read(GOLDEN / "ours_plain_4bit_odd.mrc")
    np.testing.assert_array_equal(odd, pattern("uint8", (2, 5, 7)) % 16)
    # a uint8 file from before the "dtype" key and the IMOD stamp: mode 0 reads as int8
    legacy = mrcz.read(GOLDEN / "ours_plain_uint8.mrc")
    assert legacy.dtype == np.int8
    np.testing.assert_array_equal(legacy.view(np.uint8), pattern("uint8") * 11)
    # IMOD's stamp with the signed-bytes flag clear: uint8, no metadata needed
    imod = mrcz.read(GOLDEN / "ours_plain_uint8_imod.mrc")
    assert imod.dtype == np.uint8 and mrcz.read_header(GOLDEN / "ours_plain_uint8_imod.mrc").meta is None
    np.testing.assert_array_equal(imod, pattern("uint8") * 11)
    # with the key, uint8 comes back as uint8
    header = mrcz.read_header(GOLDEN / "ours_zstd_uint8_dtype.mrcz")
    assert header.mode == 0 and header.dtype == np.uint8
    assert header.meta == {"clevel": 1, "dtype": "uint8"}
    np.testing.assert_array_equal(mrcz.read(GOLDEN / "ours_zstd_uint8_dtype.mrcz"),
                                  pattern("uint8") * 11)


def test_our_golden_files_are_still_what_we_write(tmp_path):
    for name, kwargs, data in [
        ("ours_zstd_int16_clevel.mrcz", dict(codec="zstd", level=5, meta=make_golden.META),
         pattern("int16")),
        ("ours_lz4_float32_msgpack.mrcz", dict(codec="lz4", meta=make_golden.META,
                                               meta_format="msgpack"), pattern("float32")),
        ("ours_plain_4bit_odd.mrc", dict(mode101=True), pattern("uint8", (2, 5, 7)) % 16),
        ("ours_plain_uint8_imod.mrc", dict(record_dtype=False), pattern("uint8") * 11),
        ("ours_zstd_uint8_dtype.mrcz", dict(codec="zstd"), pattern("uint8") * 11),
    ]:
        mrcz.write(tmp_path / name, data, threads=1, **kwargs)
        assert (tmp_path / name).read_bytes() == (GOLDEN / name).read_bytes(), name


def test_python_mrcz_reads_our_golden_compressed_files():
    image, header = python_mrcz.readMRC(str(GOLDEN / "ours_zstd_int16_clevel.mrcz"))
    np.testing.assert_array_equal(image, pattern("int16"))
    assert header["clevel"] == 5 and header["dose"] == make_golden.META["dose"]
    image, _ = python_mrcz.readMRC(str(GOLDEN / "ours_lz4_float32_msgpack.mrcz"))
    np.testing.assert_array_equal(image, pattern("float32"))  # skips the msgpack metadata
    # uint8 stored as mode 0: python-mrcz sees the same bytes as int8 (the "dtype" key is ours)
    # (python-mrcz keeps its own header['dtype'] when a metadata key has the same name)
    image, header = python_mrcz.readMRC(str(GOLDEN / "ours_zstd_uint8_dtype.mrcz"))
    assert image.dtype == np.int8 and header["dtype"] == "<i1"
    np.testing.assert_array_equal(image.view(np.uint8), pattern("uint8") * 11)


INTEROP_DTYPES = ("int8", "int16", "uint16", "float32", "complex64")


def interop_stack(dtype):
    rng = np.random.default_rng(7)
    values = rng.poisson(3.0, (3, 24, 40))
    if dtype == "complex64":
        return (values + 1j * rng.poisson(2.0, values.shape)).astype(np.complex64)
    if dtype == "float32":
        return (values * 1.5 - 2).astype(np.float32)
    return values.astype(dtype)


@pytest.mark.parametrize("codec", (None,) + mrcz.CODECS)
@pytest.mark.parametrize("dtype", INTEROP_DTYPES)
def test_python_mrcz_reads_what_we_write(tmp_path, codec, dtype):
    stack = interop_stack(dtype)
    path = tmp_path / "ours.mrcz"
    mrcz.write(path, stack, codec=codec, level=2, threads=2, meta={"k": "v"})
    image, header = python_mrcz.readMRC(str(path))
    if isinstance(image, list):  # plain files: mz = 1 (image stack) -> a list of frames
        image = np.stack(image)
    np.testing.assert_array_equal(image, stack)
    assert header["k"] == "v"


@pytest.mark.parametrize("codec", (None,) + mrcz.CODECS)
@pytest.mark.parametrize("dtype", INTEROP_DTYPES)
def test_we_read_what_python_mrcz_writes(tmp_path, codec, dtype):
    stack = interop_stack(dtype)
    path = tmp_path / "theirs.mrcz"
    python_mrcz.writeMRC(stack, str(path), compressor=codec, clevel=4, n_threads=2,
                         meta={"k": [1, 2]})
    np.testing.assert_array_equal(mrcz.read(path), stack)
    np.testing.assert_array_equal(mrcz.read(path, frames=[2, 0]), stack[[2, 0]])
    header = mrcz.read_header(path)
    assert header.meta == {"k": [1, 2]} and header.codec == codec


@pytest.mark.parametrize("codec", mrcz.CODECS)
def test_python_mrcz_blosc2_backend_files_read(tmp_path, codec):
    # python-mrcz >= 0.6 can write blosc2 (format version 5) chunks; we read those too.
    stack = interop_stack("int16")
    path = tmp_path / "b2.mrcz"
    python_mrcz.writeMRC(stack, str(path), compressor=codec, n_threads=1, backend="blosc2")
    assert mrcz.read_header(path).blosc_format == 5
    np.testing.assert_array_equal(mrcz.read(path), stack)


@pytest.mark.parametrize("codec", ("zstd", "lz4"))
def test_byte_identical_to_python_mrcz_on_fresh_data(tmp_path, codec):
    stack = np.random.default_rng(3).poisson(1.0, (3, 64, 48)).astype(np.int8)
    ours, theirs = tmp_path / "ours.mrcz", tmp_path / "theirs.mrcz"
    mrcz.write(ours, stack, codec=codec, level=1, threads=1, pixelsize=0.1, record_level=False)
    python_mrcz.writeMRC(stack, str(theirs), compressor=codec, clevel=1, n_threads=1)
    assert ours.read_bytes() == theirs.read_bytes()
    # with the level recorded, it equals python-mrcz given the same metadata
    mrcz.write(ours, stack, codec=codec, level=1, threads=1, pixelsize=0.1)
    python_mrcz.writeMRC(stack, str(theirs), compressor=codec, clevel=1, n_threads=1,
                         meta={"clevel": 1})
    assert ours.read_bytes() == theirs.read_bytes()


def test_mode101_interop_even_width(tmp_path):
    stack = (np.arange(2 * 6 * 10).reshape(2, 6, 10) % 16).astype(np.uint8)
    ours = tmp_path / "ours.mrc"
    mrcz.write(ours, stack, mode101=True)
    image, _ = python_mrcz.readMRC(str(ours))
    np.testing.assert_array_equal(np.stack(image) if isinstance(image, list) else image, stack)
