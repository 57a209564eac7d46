"""mrczbench.mrc: the one header table and the public blosc chunk API, and the choices the
codec makes on top of them (mode 12, the IMOD stamp with record_dtype=False, nversion)."""
import io
import subprocess
import sys

import mrcfile
import numpy as np
import pytest
from mrcfile.dtypes import HEADER_DTYPE as MRCFILE_HEADER

from mrczbench import mrcz
from mrczbench.errors import MRCZError
from mrczbench.formats import mrcraw
from mrczbench.mrc import chunks, header

from conftest import poisson_stack

python_mrcz = pytest.importorskip("mrcz")


def stack(dtype="int16", shape=(3, 24, 40)):
    return poisson_stack(shape, dtype, dose=3.0, seed=5)


def test_header_table_has_mrcfile_layout():
    """Every mrcfile field that we did not split sits at the same offset with the same type."""
    ours = header.HEADER_DTYPE
    for name, (dtype, offset) in MRCFILE_HEADER.fields.items():
        if name in ours.fields:
            assert ours.fields[name][1] == offset, name
            assert ours.fields[name][0].itemsize == dtype.itemsize, name
    for name, offset in [("voltage", 132), ("packed_bytes", 144), ("imod_stamp", 152),
                         ("imod_flags", 156)]:
        assert ours.fields[name][1] == offset


def test_plain_writers_share_one_nversion_and_pass_mrcfile_validate(tmp_path):
    data = stack()
    ours, raw = tmp_path / "ours.mrc", tmp_path / "raw.mrc"
    mrcz.write(ours, data)
    raw.write_bytes(mrcraw.header_bytes(data.shape, data.dtype) + mrcraw.data_bytes(data))
    for path in (ours, raw):
        record = np.frombuffer(path.read_bytes()[:1024], header.HEADER_DTYPE)[0]
        assert int(record["nversion"]) == header.MRC_VERSION == 20140
        assert mrcfile.validate(str(path), print_file=io.StringIO())
        np.testing.assert_array_equal(mrcfile.read(str(path)), data)


@pytest.mark.parametrize("codec", [None, "zstd", "lz4"])
def test_float16_mode_12_everywhere(tmp_path, codec):
    data = (stack("float32") / 3).astype(np.float16)
    path = tmp_path / "half.mrcz"
    mrcz.write(path, data, codec=codec)
    info = mrcz.read_header(path)
    assert (info.mode, info.dtype) == (12, np.float16)
    np.testing.assert_array_equal(mrcz.read(path), data)
    np.testing.assert_array_equal(np.stack(list(mrcz.iter_frames(path))), data)
    if codec is None:  # mrcfile writes and reads mode 12 too: both directions agree
        np.testing.assert_array_equal(mrcfile.read(str(path)), data)
        theirs = tmp_path / "theirs.mrc"
        with mrcfile.new(str(theirs)) as handle:
            handle.set_data(data)
        np.testing.assert_array_equal(mrcz.read(theirs), data)


def test_record_dtype_false_keeps_the_imod_stamp_as_documented(tmp_path):
    data = stack("uint8") * 40
    ours, theirs = tmp_path / "ours.mrcz", tmp_path / "theirs.mrcz"
    mrcz.write(ours, data, codec="zstd", threads=1, pixelsize=0.1, record_level=False,
               record_dtype=False)
    python_mrcz.writeMRC(data.view(np.int8), str(theirs), compressor="zstd", clevel=1,
                         n_threads=1)
    assert mrcz.read_header(ours).meta is None and mrcz.read(ours).dtype == np.uint8
    a, b = ours.read_bytes(), theirs.read_bytes()
    assert len(a) == len(b)
    assert [i for i in range(len(a)) if a[i] != b[i]] and all(
        152 <= i < 160 for i in range(len(a)) if a[i] != b[i])
    # the docstring's way to python-mrcz's exact bytes: write the int8 view
    mrcz.write(ours, data.view(np.int8), codec="zstd", threads=1, pixelsize=0.1,
               record_level=False)
    assert ours.read_bytes() == b


def test_chunk_api_encode_table_decode_round_trip():
    data = stack()
    blobs = list(chunks.encode_frames(data, "zstd", 1, header.FILTERS["bitshuffle"], 2, 0))
    assert blobs == [chunks.encode(frame, "zstd", 1, header.FILTERS["bitshuffle"], 1, 0)
                     for frame in data]  # independent of the thread count
    blob = b"".join(blobs)
    table = chunks.chunk_table(blob, 0, len(blob), 3, data[0].nbytes, 2, "zstd", "mem")
    assert [cbytes for _, cbytes in table] == [len(b) for b in blobs]
    out = np.empty_like(data)
    chunks.decode_into(blob, table, [2, 0], out[:2], 2, "mem")
    np.testing.assert_array_equal(out[:2], data[[2, 0]])
    single = np.empty_like(data[0])
    assert chunks.decode(blobs[1], out=single) is single
    np.testing.assert_array_equal(single, data[1])
    assert chunks.decode(blobs[1]) == data[1].tobytes()
    with pytest.raises(MRCZError, match="mem: chunk 0 .*typesize 2 but the MRC mode stores 1"):
        chunks.chunk_table(blob, 0, len(blob), 3, data[0].nbytes, 1, "zstd", "mem")


def test_importing_the_codec_does_not_import_blosc():
    """Issue 18: `mrczbench --help` (every command module) loads no blosc/blosc2."""
    code = ("import sys; from mrczbench import mrcz, cli; cli.build_parser(); "
            "print(sorted(m for m in ('blosc', 'blosc2') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
