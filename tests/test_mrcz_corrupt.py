"""Corrupt or hostile input raises MRCZError naming the file and the problem: never a crash,
hang, huge allocation or silently wrong array."""
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mrczbench import mrcz
from mrczbench.errors import MRCZError


def poisson(shape=(3, 32, 40), dtype=np.int16, seed=0):
    return np.random.default_rng(seed).poisson(2.0, shape).astype(dtype)


@pytest.fixture
def compressed(tmp_path):
    path = tmp_path / "movie.mrcz"
    mrcz.write(path, poisson(), codec="zstd", meta={"dose": 1})
    return path


@pytest.fixture
def plain(tmp_path):
    path = tmp_path / "movie.mrc"
    mrcz.write(path, poisson())
    return path


def patch(path, offset, fmt, *values):
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, *values)
    path.write_bytes(bytes(data))


def first_chunk(path):
    return mrcz.read_header(path).data_offset


def expect_error(path, pattern, frames=None):
    with pytest.raises(MRCZError, match=pattern) as info:
        mrcz.read(path, frames=frames)
    assert str(path) in str(info.value)
    return info.value


def test_truncated_compressed_file(compressed):
    data = compressed.read_bytes()
    for keep in (0, 100, 1023, len(data) - 1, len(data) - 200):
        compressed.write_bytes(data[:keep])
        expect_error(compressed, "too short|packedBytes|truncated")


@pytest.mark.parametrize("call", [mrcz.read, mrcz.read_header, lambda p: list(mrcz.iter_frames(p))])
def test_a_folder_is_an_mrcz_error_not_is_a_directory_error(tmp_path, call):
    (tmp_path / "movie.mrcz").mkdir()
    with pytest.raises(MRCZError, match=r"movie.mrcz: is a folder, not an MRC/MRCZ file"):
        call(tmp_path / "movie.mrcz")


def test_truncated_plain_file(plain):
    data = plain.read_bytes()
    plain.write_bytes(data[:-1])
    expect_error(plain, "truncated|file has")


def test_plain_file_with_trailing_bytes_reads_with_a_warning(plain):
    # mrcfile reads such files (it warns); so do we, ignoring the extra bytes
    plain.write_bytes(plain.read_bytes() + b"\0" * 7)
    with pytest.warns(UserWarning, match="7 bytes after the last of 3 frames"):
        back = mrcz.read(plain)
    np.testing.assert_array_equal(back, poisson())
    with pytest.warns(UserWarning, match="ignored"):
        assert mrcz.read_header(plain).shape == (3, 32, 40)


def test_wrong_packed_bytes(compressed):
    packed = mrcz.read_header(compressed).packed_bytes
    for wrong in (packed - 1, packed + 1, 0, -5, 2**62):
        patch(compressed, 144, "<q", wrong)
        expect_error(compressed, "packedBytes")


def test_unknown_mode_and_codec_id(plain, compressed):
    for mode in (3, 5, 99, 7, -1, 2**31 - 1):
        patch(plain, 12, "<i", mode)
        expect_error(plain, "mode")
    patch(compressed, 12, "<i", 9001)  # codec id 9 is not an MRCZ blosc1 codec
    expect_error(compressed, "codec id 9")
    patch(compressed, 12, "<i", 6101)
    expect_error(compressed, "101")


@pytest.mark.parametrize("field,value", [(0, 0), (0, -3), (4, -1), (8, 0), (8, -2**31),
                                         (0, 2**31 - 1), (8, 2**31 - 1)])
def test_bad_or_absurd_dimensions(plain, compressed, field, value):
    for path in (plain, compressed):
        patch(path, field, "<i", value)
        expect_error(path, "dimension|bytes|packedBytes|too big|chunk")


def test_dimensions_not_matching_chunks(compressed):
    patch(compressed, 0, "<i", 39)  # nx 40 -> 39: chunk nbytes no longer fit a frame
    expect_error(compressed, "decodes to")
    patch(compressed, 0, "<i", 40)
    patch(compressed, 8, "<i", 2)  # one frame fewer: chunks and packedBytes disagree
    expect_error(compressed, "packedBytes")


def test_chunk_header_corruption(compressed):
    start = first_chunk(compressed)
    original = compressed.read_bytes()
    cases = [(0, "<B", 9, "not a blosc chunk"), (4, "<I", 1, "decodes to"),
             (12, "<I", 3, "impossible"), (12, "<I", 2**31, "impossible|truncated"),
             (8, "<I", 0, "impossible"), (8, "<I", 2**30, "impossible")]
    for offset, fmt, value, pattern in cases:
        compressed.write_bytes(original)
        patch(compressed, start + offset, fmt, value)
        expect_error(compressed, pattern)


@pytest.mark.parametrize("offset,value,pattern", [
    (3, 1, "typesize 1 but the MRC mode stores 2-byte"),      # int16 data, typesize 1
    (2, None, "flags byte"),                                   # shuffle bit flipped
    (2, 0x08 | 0x04 | 0x80 | 0x10, "reserved bit 3"),
    (2, 0x04 | 0x20, "codec code 1, but the MRC mode says zstd"),
    (2, 0x05 | 0x80, "both shuffle and bitshuffle"),
])
def test_damaged_chunk_flags_and_typesize_are_errors(compressed, offset, value, pattern):
    """Issue 14 #5: a damaged chunk header must not decode to wrong pixels silently."""
    start = first_chunk(compressed) + mrcz.read_header(compressed).packed_bytes - 1
    data = bytearray(compressed.read_bytes())
    # damage the LAST chunk (frame 2), so the error must name frame 2
    offsets = [first_chunk(compressed)]
    for _ in range(2):
        offsets.append(offsets[-1] + struct.unpack("<I", data[offsets[-1] + 12:offsets[-1] + 16])[0])
    last = offsets[-1]
    assert last < start
    data[last + offset] = data[last + offset] ^ 0x01 if value is None else value
    compressed.write_bytes(bytes(data))
    error = expect_error(compressed, pattern)
    assert "frame 2" in str(error)
    np.testing.assert_array_equal(mrcz.read(compressed, frames=[0, 1]), poisson()[:2])


def test_int8_chunk_claiming_typesize_2_is_an_error(tmp_path):
    path = tmp_path / "int8.mrcz"
    mrcz.write(path, poisson(dtype=np.int8), codec="lz4")
    patch(path, first_chunk(path) + 3, "<B", 2)
    expect_error(path, "typesize 2")


def test_garbage_chunk_payload(compressed):
    start = first_chunk(compressed)
    data = bytearray(compressed.read_bytes())
    cbytes = struct.unpack("<I", data[start + 12:start + 16])[0]
    data[start + 16:start + cbytes] = b"\xff" * (cbytes - 16)
    compressed.write_bytes(bytes(data))
    expect_error(compressed, "chunk 0 .* corrupt")
    np.testing.assert_array_equal(mrcz.read(compressed, frames=[1, 2]), poisson()[1:])


def test_claimed_huge_frames_do_not_allocate(tmp_path):
    # A 2 KB file claiming 100 000 frames of 2 GB each must fail fast, not allocate.
    path = tmp_path / "bomb.mrcz"
    mrcz.write(path, np.zeros((4, 32, 32), np.int8), codec="zstd", record_level=False)
    patch(path, 0, "<3i", 46340, 46340, 100000)
    expect_error(path, "packedBytes|decodes to|too big")


def test_zeros_stack_bigger_than_the_limit_is_refused_before_allocating(tmp_path, monkeypatch):
    """Issue 14 #11: a small valid file of a huge zero stack: `read` says how much it needs
    and how to raise the limit; iter_frames streams it; max_bytes / the env var raise it."""
    path = tmp_path / "zeros.mrcz"
    mrcz.write(path, np.zeros((6, 256, 256), np.int16), codec="zstd")
    assert path.stat().st_size < 2000
    with pytest.raises(MRCZError, match=r"needs 0.00 GiB, over the 0.00 GiB limit \(max_bytes"):
        mrcz.read(path, max_bytes=5 * 256 * 256 * 2)
    assert mrcz.read(path, max_bytes=6 * 256 * 256 * 2).shape == (6, 256, 256)
    assert mrcz.read(path, frames=[0, 1], max_bytes=2 * 256 * 256 * 2).shape == (2, 256, 256)
    monkeypatch.setenv(mrcz.MAX_READ_ENV, "1000")
    with pytest.raises(MRCZError, match=mrcz.MAX_READ_ENV):
        mrcz.read(path)
    assert sum(1 for _ in mrcz.iter_frames(path)) == 6  # streaming needs no limit
    plain = tmp_path / "zeros.mrc"  # plain files have the same limit
    mrcz.write(plain, np.zeros((6, 256, 256), np.int16))
    with pytest.raises(MRCZError, match=mrcz.MAX_READ_ENV):
        mrcz.read(plain)
    monkeypatch.setenv(mrcz.MAX_READ_ENV, "lots")
    with pytest.raises(MRCZError, match="number of bytes"):
        mrcz.read(path)


def test_forged_huge_chunks_are_an_mrcz_error_not_memory_error(tmp_path):
    """A forged file claiming 60 chunks of ~2 GB each (120 GiB) fails with MRCZError."""
    path = tmp_path / "forged.mrcz"
    mrcz.write(path, np.zeros((60, 64, 64), np.int16), codec="zstd", record_level=False)
    offset = first_chunk(path)
    patch(path, 0, "<2i", 32767, 32767)  # frames of 2 GiB claimed by the header
    data = bytearray(path.read_bytes())
    for _ in range(60):  # every chunk claims to decode to a whole 2 GiB frame
        struct.pack_into("<I", data, offset + 4, 32767 * 32767 * 2)
        offset += struct.unpack("<I", data[offset + 12:offset + 16])[0]
    path.write_bytes(bytes(data))
    with pytest.raises(MRCZError) as info:
        mrcz.read(path)
    assert str(path) in str(info.value)


def test_bad_metadata(tmp_path):
    path = tmp_path / "meta.mrcz"
    mrcz.write(path, poisson((1, 8, 8)), codec="lz4", meta={"a": 1})
    data = bytearray(path.read_bytes())
    data[1024] = ord("[")  # JSON now unparseable
    path.write_bytes(bytes(data))
    expect_error(path, "corrupt json metadata")
    mrcz.write(path, poisson((1, 8, 8)), meta=None)
    patch(path, 92, "<i", -4)
    expect_error(path, "extended header")
    patch(path, 92, "<i", 10**6)
    expect_error(path, "extended header")
    # JSON that is valid but not an object
    blob = b"[1, 2]"
    mrcz.write(path, poisson((1, 8, 8)), meta={"abc": 1})
    data = bytearray(path.read_bytes())
    nsymbt = struct.unpack("<i", data[92:96])[0]
    data[1024:1024 + nsymbt] = blob.ljust(nsymbt)
    path.write_bytes(bytes(data))
    expect_error(path, "must be an object")
    # msgpack garbage
    mrcz.write(path, poisson((1, 8, 8)), meta={"abc": 1}, meta_format="msgpack")
    data = bytearray(path.read_bytes())
    data[1024] = 0xC1  # never used in msgpack
    path.write_bytes(bytes(data))
    expect_error(path, "corrupt msgpack metadata")


def test_unknown_extended_header_type_is_skipped(tmp_path):
    path = tmp_path / "fei.mrc"
    stack = poisson((2, 8, 8))
    mrcz.write(path, stack, meta={"a": 1})
    data = bytearray(path.read_bytes())
    data[104:108] = b"FEI1"
    path.write_bytes(bytes(data))
    header = mrcz.read_header(path)
    assert header.meta is None and header.extended_bytes > 0
    np.testing.assert_array_equal(mrcz.read(path), stack)


def test_not_an_mrc_file(tmp_path):
    path = tmp_path / "text.mrc"
    path.write_bytes(b"hello world\n" * 200)
    expect_error(path, "mode|dimension")


def test_iter_frames_reports_corruption_too(compressed):
    patch(compressed, 144, "<q", 10)
    with pytest.raises(MRCZError, match="packedBytes"):
        next(mrcz.iter_frames(compressed))


def test_random_header_and_chunk_damage_never_crashes(tmp_path):
    """Flip random bytes in headers and chunks, in a child process so that a segfault in
    the C decoders would fail this test instead of killing pytest."""
    path = tmp_path / "fuzz.mrcz"
    mrcz.write(path, poisson((3, 24, 24)), codec="zstd", meta={"a": 1})
    script = textwrap.dedent(f"""
        import numpy as np
        from pathlib import Path
        from mrczbench import mrcz
        from mrczbench.errors import MRCZError
        original = Path({str(path)!r}).read_bytes()
        target = Path({str(path)!r}).with_name("damaged.mrcz")
        rng = np.random.default_rng(1)
        header = mrcz.read_header({str(path)!r})
        hot = list(range(0, 160)) + list(range(header.data_offset, header.data_offset + 16))
        outcomes = {{"error": 0, "ok": 0}}
        for trial in range(400):
            data = bytearray(original)
            for _ in range(int(rng.integers(1, 4))):
                where = int(rng.choice(hot)) if rng.random() < 0.7 else int(rng.integers(0, len(data)))
                data[where] = int(rng.integers(0, 256))
            target.write_bytes(bytes(data))
            try:
                mrcz.read(target)
                outcomes["ok"] += 1
            except MRCZError:
                outcomes["error"] += 1
        print(outcomes)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "error" in result.stdout
