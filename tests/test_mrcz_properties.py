"""Property tests (hypothesis): headers and 4-bit packing round-trip for any valid input."""
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mrczbench import mrcz

SETTINGS = settings(max_examples=25, deadline=None)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=10)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8)


@SETTINGS
@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 9), st.integers(1, 9)),
    dtype=st.sampled_from(["int8", "int16", "uint16", "float32", "complex64"]),
    codec=st.sampled_from((None,) + mrcz.CODECS),
    level=st.integers(1, 9),
    voltage=st.floats(0, 1000, width=32),
    gain=st.floats(0.125, 100, width=32),
    pixel=st.tuples(*[st.floats(0.0625, 100, width=32)] * 3),
    meta=st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    meta_format=st.sampled_from(["json", "msgpack"]),
    seed=st.integers(0, 2**16),
)
def test_header_and_pixels_round_trip(shape, dtype, codec, level, voltage, gain, pixel, meta,
                                      meta_format, seed):
    rng = np.random.default_rng(seed)
    stack = rng.integers(-100, 100, size=shape).astype(dtype)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.mrcz"
        mrcz.write(path, stack, codec=codec, level=level, voltage=voltage, gain=gain,
                   pixelsize=pixel, meta=meta, meta_format=meta_format, threads=2)
        header = mrcz.read_header(path)
        np.testing.assert_array_equal(mrcz.read(path), stack)
    assert header.shape == shape and header.dtype == np.dtype(dtype)
    assert header.codec == codec
    assert header.voltage == voltage and header.gain == gain
    np.testing.assert_allclose(header.pixelsize, pixel, rtol=1e-5)
    expected_meta = meta
    if codec is not None:
        expected_meta = {**(meta or {}), "clevel": level}
        assert header.level == level
    assert header.meta == expected_meta


@SETTINGS
@given(hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, max_side=17),
                  elements=st.integers(0, 15)))
def test_4bit_pack_unpack(frame):
    packed = mrcz.pack_4bit(frame)
    ny, nx = frame.shape
    assert packed.shape == (ny, (nx + 1) // 2)
    assert np.all(packed[:, 0] & 0x0F == frame[:, 0])  # left pixel in the low nibble
    if nx % 2:
        assert np.all(packed[:, -1] >> 4 == 0)  # odd rows padded with a zero nibble
    np.testing.assert_array_equal(mrcz.unpack_4bit(packed, nx), frame)


@SETTINGS
@given(hnp.arrays(np.int16, hnp.array_shapes(min_dims=3, max_dims=3, max_side=9),
                  elements=st.integers(-40, 40)))
def test_4bit_files_clip_or_refuse(stack):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.mrc"
        if stack.min() < 0 or stack.max() > 15:
            try:
                mrcz.write(path, stack, mode101=True)
            except mrcz.MRCZError:
                assert not path.exists()
            else:
                raise AssertionError("out-of-range pixels were accepted")
        mrcz.write(path, stack, mode101=True, clip=True)
        np.testing.assert_array_equal(mrcz.read(path), np.clip(stack, 0, 15))
