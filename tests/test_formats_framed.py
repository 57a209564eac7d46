"""The per-frame coders in the framed container (pcodec, htj2k, jpegls, lerc) and the in-process
byte streams (zstd, lz4): bit-exact on every dtype each accepts, a clear reason for the others,
single-frame reads, and one-line FormatErrors for corrupt or truncated files. Real libraries."""
from __future__ import annotations

import os
import shutil
import subprocess
import zlib

import numpy as np
import pytest

from mrczbench.errors import FormatError
from mrczbench.formats import framed, framed_formats, get_format
from mrczbench.formats.base import Format

FRAMED = tuple(framed_formats().values())  # the registry's FramedFormat contenders
STREAMS = ("zstd", "lz4")
ALL_DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "float16", "float32",
              "float64", "complex64")
# what each new contender stores exactly (every other dtype must be refused with a reason)
ACCEPTS = {
    "pcodec": {"int8", "uint8", "int16", "uint16", "int32", "uint32", "float16", "float32",
               "float64"},
    "htj2k": {"int8", "uint8", "int16", "uint16", "int32", "uint32"},
    "jpegls": {"int8", "uint8", "int16", "uint16"},
    "lerc": {"int8", "uint8", "int16", "uint16", "int32", "uint32", "float32", "float64"},
    "zstd": {"int8", "uint8", "int16", "uint16", "float16", "float32", "complex64"},
    "lz4": {"int8", "uint8", "int16", "uint16", "float16", "float32", "complex64"},
}


def available(name: str, **params) -> Format:
    fmt = get_format(name, **params)
    if fmt.unavailable_reason():
        pytest.skip(f"{name}: {fmt.unavailable_reason()}")
    return fmt


def stack_of(dtype: str, shape=(3, 40, 52), seed=0) -> np.ndarray:
    """Counts with each dtype's awkward values: negatives for signed types, the top of the
    range for unsigned ones, non-integer values and -0.0/inf for floats."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    counts = rng.poisson(1.0, size=shape)
    if dtype.kind == "c":
        return (counts + 1j * rng.standard_normal(shape)).astype(dtype)
    if dtype.kind == "f":
        stack = (counts * rng.uniform(0.9, 1.1, size=shape[1:])).astype(dtype)
        stack[0, 0, :3] = [-0.0, np.inf, -np.inf]
        return stack
    stack = counts.astype(dtype)
    info = np.iinfo(dtype)
    stack[:, 0, :2] = [info.min, info.max]
    if dtype.kind == "i":
        stack[:, 1, :3] = [-1, -2, -3]
    return stack


def as_bytes(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array).view(np.uint8)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("name", FRAMED + STREAMS)
def test_round_trip_on_every_accepted_dtype_and_a_reason_for_the_rest(name, dtype, tmp_path):
    fmt = available(name, threads=2)
    stack = stack_of(dtype)
    reason = fmt.check_data(stack)
    if dtype not in ACCEPTS[name]:
        assert reason and dtype in reason, reason
        if name in FRAMED:
            assert reason.startswith(f"unsupported dtype {dtype}")
        with pytest.raises(FormatError, match=dtype):
            fmt.write(tmp_path / f"x{fmt.suffix}", stack)
        assert os.listdir(tmp_path) == []
        return
    assert reason is None, reason
    path = tmp_path / f"movie{fmt.suffix}"
    stored = fmt.write(path, stack)
    assert stored == path.stat().st_size
    back = fmt.read(path)
    assert back.dtype == stack.dtype and back.shape == stack.shape
    assert np.array_equal(as_bytes(back), as_bytes(stack))
    blob = fmt.encode(stack)
    decoded = fmt.decode(blob, stack.shape, stack.dtype)
    assert decoded.dtype == stack.dtype and np.array_equal(as_bytes(decoded), as_bytes(stack))
    if name in FRAMED and not (name == "lerc" and stack.dtype.itemsize == 1):
        assert blob == path.read_bytes()  # the in-memory codec gives exactly the file
        # (LERC 4.0 leaves a few bytes of its 8-bit output uninitialised: same pixels,
        # different bytes from run to run)
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_lerc_refuses_nan_which_it_cannot_keep():
    fmt = available("lerc")
    stack = stack_of("float32")
    stack[1, 2, 3] = np.nan
    assert "NaN" in fmt.check_data(stack)


@pytest.mark.parametrize("name", FRAMED)
def test_single_frames_are_read_alone(name, tmp_path):
    fmt = available(name)
    stack = stack_of("int16" if name != "pcodec" else "float32", shape=(5, 33, 17))
    path = tmp_path / f"movie{fmt.suffix}"
    fmt.write(path, stack)
    for i in range(5):
        frame = fmt.read_frame(path, i)
        assert frame.dtype == stack.dtype and np.array_equal(as_bytes(frame), as_bytes(stack[i]))
    assert np.array_equal(as_bytes(fmt.read_frame(path, -1)), as_bytes(stack[4]))
    for bad in (5, -6, "1", True):
        with pytest.raises(FormatError, match="out of range; the movie has 5 frame"):
            fmt.read_frame(path, bad)


def test_a_frame_is_read_without_the_other_frames(tmp_path):
    """Damage every payload but one: that one still reads; the whole movie does not."""
    fmt = available("pcodec")
    stack = stack_of("int16", shape=(4, 64, 64))
    path = tmp_path / "movie.frames"
    fmt.write(path, stack)
    blob = bytearray(path.read_bytes())
    layout = framed.parse_layout(bytes(blob), "x", len(blob))
    for i, (offset, length, _) in enumerate(layout.index):
        if i != 2:
            blob[offset:offset + length] = bytes(length)
    path.write_bytes(bytes(blob))
    assert np.array_equal(fmt.read_frame(path, 2), stack[2])
    with pytest.raises(FormatError, match="frame 0 is corrupt"):
        fmt.read(path)


def test_container_layout_is_as_documented(tmp_path):
    fmt = available("jpegls", threads=2)
    stack = stack_of("int16", shape=(3, 20, 24))
    blob = fmt.encode(stack)
    assert blob[:8] == b"MRCZBFR1"
    layout = framed.parse_layout(blob, "blob", len(blob))
    assert layout.codec == "jpegls" and layout.shape == (3, 20, 24)
    assert layout.dtype == np.int16 and layout.stored_dtype == np.uint16  # JPEG-LS is unsigned
    assert layout.params == {}  # threads do not change the bytes and are not recorded
    ends = [offset + length for offset, length, _ in layout.index]
    assert [offset for offset, _, _ in layout.index[1:]] == ends[:-1]  # contiguous payloads
    assert ends[-1] == len(blob)
    for offset, length, crc in layout.index:
        assert zlib.crc32(blob[offset:offset + length]) == crc
    # threads change neither the bytes nor the header
    assert available("jpegls").encode(stack) == blob
    assert available("lerc", compression="zstd").encode(stack) != available("lerc").encode(stack)
    assert framed.parse_layout(available("pcodec", level=3).encode(stack), "b",
                               10**9).params == {"level": 3}


@pytest.mark.parametrize("frames", [b"1", b"2"])
def test_a_damaged_frame_count_is_an_error_not_a_shorter_movie(tmp_path, frames):
    # found by the fuzz harness: one bit flipped in the header's "shape": [3, ... -> [1, ...
    fmt = available("jpegls")
    path = tmp_path / "movie.frames"
    fmt.write(path, stack_of("int16", shape=(3, 20, 24)))
    blob = path.read_bytes()
    path.write_bytes(blob.replace(b'"shape": [3,', b'"shape": [' + frames + b",", 1))
    assert path.read_bytes() != blob
    with pytest.raises(FormatError, match=r"movie.frames: corrupt framed container: the index of "
                                          rf"{frames.decode()} frames does not describe payloads"):
        fmt.read(path)


@pytest.mark.parametrize("name", FRAMED)
def test_corrupt_and_truncated_containers_are_one_line_format_errors(name, tmp_path):
    fmt = available(name)
    stack = stack_of("int16", shape=(3, 32, 32))
    good = fmt.encode(stack)
    path = tmp_path / f"movie{fmt.suffix}"
    damaged = {
        "empty": b"",
        "not a container": b"this is not a movie" * 10,
        "cut in the header": good[:20],
        "cut in the index": good[:len(good) - sum(l for _, l, _ in
                                                   framed.parse_layout(good, "", len(good)).index) - 5],
        "cut in the last frame": good[:-7],
        "flipped payload byte": good[:-30] + bytes([good[-30] ^ 0xFF]) + good[-29:],
        "bad header JSON": good[:13] + b"#" + good[14:],
    }
    for what, blob in damaged.items():
        path.write_bytes(blob)
        with pytest.raises(FormatError) as info:
            fmt.read(path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message, (what, message)
        with pytest.raises(FormatError):
            fmt.decode(blob, stack.shape, stack.dtype)
        if what != "flipped payload byte":  # the index is intact there: frame 0 still reads
            with pytest.raises(FormatError):
                fmt.read_frame(path, 0)
    with pytest.raises(FormatError, match="no such file"):
        fmt.read(tmp_path / "missing.frames")
    with pytest.raises(FormatError, match="not a regular file"):
        fmt.read_frame(tmp_path, 0)


def test_a_container_of_another_coder_is_named(tmp_path):
    path = tmp_path / "movie.frames"
    available("lerc").write(path, stack_of("int16"))
    with pytest.raises(FormatError, match="holds lerc frames, not htj2k"):
        available("htj2k").read(path)


def test_an_htj2k_error_that_imagecodecs_ignores_is_raised():
    """imagecodecs ignores OpenJPH's errors raised while it copies the decoded lines (it prints
    "Exception ignored in ..._copy_from_codestream") and returns a partly written frame with
    no exception. decode_frame raises for every such codestream (the framed container's CRC
    catches damage before decoding; this guards OpenJPH failing on a sound one)."""
    import sys
    import imagecodecs
    fmt = available("htj2k")
    frame = stack_of("int8")[0]
    codestream = imagecodecs.htj2k_encode(frame, reversible=True)
    ignored, raised = [], []
    for position in range(len(codestream) - 40, len(codestream) - 2):
        damaged = bytearray(codestream)
        damaged[position] ^= 0xFF
        events = []
        hook, sys.unraisablehook = sys.unraisablehook, events.append
        try:
            imagecodecs.htj2k_decode(bytes(damaged), out=np.zeros_like(frame))
        except RuntimeError:
            pass  # raised by imagecodecs itself: not the case at hand
        finally:
            sys.unraisablehook = hook
        if not events:
            continue
        ignored.append(position)
        with pytest.raises(RuntimeError, match="imagecodecs ignored"):
            fmt.decode_frame(bytes(damaged), np.zeros_like(frame))
        raised.append(position)
    assert ignored and raised == ignored


def test_decode_checks_the_expected_shape():
    fmt = available("htj2k")
    stack = stack_of("uint8")
    with pytest.raises(FormatError, match="expected"):
        fmt.decode(fmt.encode(stack), (2, 40, 52), stack.dtype)


def test_empty_and_single_pixel_movies(tmp_path):
    for name in FRAMED:
        fmt = available(name)
        for stack in (np.zeros((0, 4, 4), np.uint16), np.full((2, 1, 1), 7, np.uint16)):
            path = tmp_path / f"{name}{fmt.suffix}"
            fmt.write(path, stack)
            back = fmt.read(path)
            assert back.shape == stack.shape and np.array_equal(back, stack)


@pytest.mark.parametrize("name", FRAMED)
def test_frames_compress_to_less_than_raw_and_threads_do_not_change_bytes(name):
    stack = stack_of("uint16", shape=(4, 128, 128))
    one, two = (available(name, threads=t).encode(stack) for t in (1, 3))
    assert one == two
    assert len(one) < stack.nbytes / 2  # Poisson(1) counts: ~2 bits of 16


def test_pcodec_level_changes_output_and_is_near_the_bound():
    from mrczbench.movies import entropy

    stack = np.random.default_rng(1).poisson(1.0, size=(2, 256, 256)).astype(np.int8)
    low, high = (available("pcodec", level=lvl).encode(stack) for lvl in (0, 8))
    assert len(high) < len(low)
    bound = entropy.bound_ratio(stack) * stack.nbytes
    assert len(high) < 1.05 * bound  # issue 17: Pco stays within a few % of the i.i.d. bound


# --- byte streams ------------------------------------------------------------------------------
@pytest.mark.parametrize("name, tool", [("zstd", "zstd"), ("lz4", "lz4")])
def test_stream_files_open_with_the_command_line_tool(name, tool, tmp_path):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    fmt = available(name, threads=2)
    stack = stack_of("int16")
    path = tmp_path / f"movie{fmt.suffix}"
    fmt.write(path, stack)
    out = tmp_path / "movie.mrc"
    with open(out, "wb") as handle:
        done = subprocess.run([tool, "-d", "-q", "-c", str(path)], stdout=handle,
                              stderr=subprocess.PIPE)
    assert done.returncode == 0, done.stderr
    import mrcfile

    with mrcfile.open(out, permissive=False) as mrc:
        assert np.array_equal(np.asarray(mrc.data), stack)


@pytest.mark.parametrize("name", STREAMS)
def test_truncated_or_garbage_streams_are_format_errors(name, tmp_path):
    fmt = available(name)
    stack = stack_of("int16")
    path = tmp_path / f"movie{fmt.suffix}"
    fmt.write(path, stack)
    good = path.read_bytes()
    for blob in (good[:-9], b"not a stream" * 5, b""):
        path.write_bytes(blob)
        with pytest.raises(FormatError) as info:
            fmt.read(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
    with pytest.raises(FormatError):
        fmt.decode(fmt.encode(stack)[:-9], stack.shape, stack.dtype)


def test_streams_use_no_filter_and_levels_change_output():
    stack = stack_of("int16", shape=(2, 128, 128))
    import lz4.frame
    import zstandard

    blob = available("zstd", level=3).encode(stack)
    assert zstandard.ZstdDecompressor().decompress(blob) == stack.astype("<i2").tobytes()
    assert lz4.frame.decompress(available("lz4").encode(stack)) == stack.astype("<i2").tobytes()
    assert len(available("zstd", level=19).encode(stack)) < len(available("zstd").encode(stack))
    assert available("lz4", level=9).encode(stack) != available("lz4").encode(stack)
    # zstandard's worker threads give a valid stream of the same data
    threaded = available("zstd", threads=2).encode(stack)
    assert zstandard.ZstdDecompressor().decompress(threaded) == stack.astype("<i2").tobytes()


def test_framed_formats_come_from_the_registry():
    """The fuzz seeds and the tests above find every FramedFormat contender by its class."""
    assert framed_formats() == {".pco.frames": "pcodec", ".htj2k.frames": "htj2k",
                                ".jls.frames": "jpegls", ".lerc.frames": "lerc"}
