"""Damage the fuzz harness found decoding to other pixels with no error (issue 14): TIFF and
EER tags that tifffile trusts or only logs, a .npy byte order flip, a 4-bit MRC whose nx lost
one. Every file here is real, written by tifffile, the EER test encoder or mrcz.write, then
damaged the way the fuzzer did."""
import struct
import warnings

import numpy as np
import pytest
import tifffile

from mrczbench import mrcz
from mrczbench.errors import DatasetError
from mrczbench.fuzz.runner import classify
from mrczbench.fuzz.seeds import write_eer
from mrczbench.fuzz.worker import describe
from mrczbench.movies import readers

from conftest import poisson_stack


def stack(dtype=np.uint16, shape=(4, 12, 20), seed=0):
    return poisson_stack(shape, dtype, dose=3.0, seed=seed)


def tiff(path, data, **options):
    tifffile.imwrite(path, data, photometric="minisblack", metadata=None, contiguous=False, **options)
    return path


def read(path, **options):
    return readers.open_movie(path, **options).read()


def tag(path, page, name):
    with tifffile.TiffFile(path) as tif:
        found = tif.pages[page].tags[name]
        return found.offset, found.valueoffset, found.count


def poke(path, offset, data: bytes):
    raw = bytearray(path.read_bytes())
    raw[offset:offset + len(data)] = data
    path.write_bytes(bytes(raw))


def overwrite(path, page, name, value):
    with tifffile.TiffFile(path, mode="r+") as tif:
        tif.pages[page].tags[name].overwrite(value)


# ---------------------------------------------------------------- TIFF layouts read exactly


@pytest.mark.parametrize("options", [
    {}, {"compression": "lzw"}, {"compression": "zlib"}, {"compression": "zstd"},
    {"compression": "packbits"}, {"compression": "zlib", "predictor": True},
    {"compression": "lzw", "predictor": True, "byteorder": ">"}, {"byteorder": ">"},
    {"compression": "lzw", "rowsperstrip": 5}, {"rowsperstrip": 5}])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.float32])
def test_supported_tiff_layouts_read_exactly(tmp_path, options, dtype):
    if options.get("predictor") and np.dtype(dtype).kind == "f":
        options = {**options, "predictor": False}  # horizontal predictor is for integers
    data = stack(dtype)
    assert np.array_equal(read(tiff(tmp_path / "m.tif", data, **options)), data)


@pytest.mark.parametrize("options, has", [
    ({"tile": (16, 16)}, "has tiles of 16 x 16"),
    ({"compression": "zlib", "predictor": 3, "dtype": np.float32},
     "has predictor 3 with float32 samples"),
    ({"compression": "jpeg2000", "dtype": np.uint8}, "has compression 34712")])
def test_other_tiff_layouts_are_refused_in_one_line(tmp_path, options, has):
    options = dict(options)
    data = stack(options.pop("dtype", np.uint16), (2, 32, 32))
    path = tiff(tmp_path / "m.tif", data, **options)
    with pytest.raises(DatasetError, match=rf"m.tif: TIFF page 0 {has}; supported: strips") as err:
        readers.open_movie(path)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- damaged TIFF tags


@pytest.mark.parametrize("count, error", [
    (0, r"TIFF page 1 strip 0 has 0 bytes"),  # tifffile pads the missing strip with zeros
    (40, r"cannot decode TIFF page 1: .*strip 0 decodes to \d+ bytes, expected 480")])
def test_lzw_strip_byte_count_too_small_is_an_error(tmp_path, count, error):
    path = tiff(tmp_path / "m.tif", stack(), compression="lzw")
    overwrite(path, 1, "StripByteCounts", count)
    with pytest.raises(DatasetError, match=error):
        read(path)


@pytest.mark.parametrize("compression", [None, "lzw"])
def test_rows_per_strip_edit_is_an_error(tmp_path, compression):
    path = tiff(tmp_path / "m.tif", stack(), compression=compression)
    overwrite(path, 2, "RowsPerStrip", 5)  # 12 rows of 5 need 3 strips; the page has 1
    with pytest.raises(DatasetError, match=r"m.tif: TIFF page 2 is damaged: .*incorrect Strip"):
        readers.open_movie(path)


@pytest.mark.parametrize("dtype, bits", [(np.uint8, 7), (np.uint16, 15), (np.uint8, 2)])
def test_bits_per_sample_edit_is_an_error(tmp_path, dtype, bits):
    path = tiff(tmp_path / "m.tif", stack(dtype), compression="zlib")
    overwrite(path, 3, "BitsPerSample", bits)
    with pytest.raises(DatasetError, match=rf"TIFF page 3 has {bits}-bit samples; supported"):
        readers.open_movie(path)


def test_lost_compression_tag_is_an_error(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (4, 12, 20), dtype=np.uint8)
    path = tiff(tmp_path / "m.tif", noise, compression="lzw")  # LZW makes noise bigger
    entry, _, _ = tag(path, 1, "Compression")
    poke(path, entry, struct.pack("<H", 0x7FFF))  # unknown tag: tifffile assumes no compression
    with pytest.raises(DatasetError, match=r"TIFF page 1 strip 0 has \d+ bytes, but its rows take "
                                           r"240 uncompressed: damaged header \(a lost Compression"):
        readers.open_movie(path)


def test_unreadable_tag_entry_is_an_error(tmp_path):
    path = tiff(tmp_path / "m.tif", stack(), compression="zlib", predictor=True)
    entry, _, _ = tag(path, 2, "Predictor")
    poke(path, entry + 2, struct.pack("<H", 0))  # data type 0: tifffile logs and skips the tag
    with pytest.raises(DatasetError, match=r"TIFF page 2 is damaged: .*invalid data type 0"):
        readers.open_movie(path)


def test_page_tifffile_cannot_parse_is_an_error_not_the_end_of_the_movie(tmp_path):
    path = tiff(tmp_path / "m.tif", stack(np.uint8))
    entry, _, _ = tag(path, 1, "BitsPerSample")
    poke(path, entry + 4, struct.pack("<I", 0))  # count 0: iterating tif.pages stops here
    with pytest.raises(DatasetError, match=r"TIFF page 1: unreadable TIFF directory"):
        readers.open_movie(path)


def test_moved_strip_offset_is_an_error(tmp_path):
    path = tiff(tmp_path / "m.tif", stack(np.int16))
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[2].dataoffsets[0]
    overwrite(path, 2, "StripOffsets", offset - 32)  # reads other pages' bytes as pixels
    with pytest.raises(DatasetError, match=r"the strip of page 2 .* overlaps .*: damaged offsets"):
        readers.open_movie(path)


# ---------------------------------------------------------------- damaged EER files


def eer_file(path, frames=8, shape=(16, 24), seed=1, integrated=None):
    rng = np.random.default_rng(seed)
    events, expected = [], np.zeros((frames, shape[0] * shape[1]), np.uint8)
    for frame in range(frames):
        pixels = np.sort(rng.choice(shape[0] * shape[1], 40, replace=False))
        events.append((pixels, rng.integers(0, 4, 40), rng.integers(0, 4, 40)))
        expected[frame, pixels] = 1
    write_eer(path, events, shape, integrated=integrated)
    return expected.reshape(frames, *shape)


def test_eer_with_an_integrated_image_first_page_reads_its_frames(tmp_path):
    # some EER files start with an uncompressed integrated image (tifffile's convention)
    path = tmp_path / "m.eer"
    expected = eer_file(path, integrated=stack(np.uint16, (16, 24)))
    movie = readers.open_movie(path, eer_grouping=4)
    assert movie.internal_frames == 8
    np.testing.assert_array_equal(movie.read(), expected.reshape(2, 4, 16, 24).sum(axis=1))
    # its strip must hold exactly its pixels: an EER frame whose Compression tag was lost
    # is not taken for an integrated image
    with tifffile.TiffFile(path) as tif:
        count_at = tif.pages[0].tags["StripByteCounts"].valueoffset
    poke(path, count_at, struct.pack("<Q", 16 * 24 * 2 - 2))
    with pytest.raises(DatasetError, match=r"m.eer: .*integrated image page 0"):
        readers.open_movie(path, eer_grouping=4)


def test_eer_page_whose_compression_tag_is_lost_is_an_error(tmp_path):
    path = tmp_path / "m.eer"
    eer_file(path)
    entry, _, _ = tag(path, 3, "Compression")
    poke(path, entry, struct.pack("<H", 0x7FFF))  # tifffile would read the codes as pixels
    with pytest.raises(DatasetError, match=r"m.eer: EER frame 3 has compression 1; every page"):
        readers.open_movie(path, eer_grouping=4)


def test_eer_truncated_at_the_end_of_a_frame_is_an_error(tmp_path):
    path = tmp_path / "m.eer"
    eer_file(path)
    with tifffile.TiffFile(path) as tif:
        end = tif.pages[5].dataoffsets[0] + tif.pages[5].databytecounts[0]
    path.write_bytes(path.read_bytes()[:end])  # page 6's directory is gone
    with pytest.raises(DatasetError, match=r"m.eer: the EER movie ends early: the page chain "
                                           r"breaks after 6 frames"):
        readers.open_movie(path, eer_grouping=4)


def test_eer_rows_per_strip_edit_is_an_error(tmp_path):
    path = tmp_path / "m.eer"
    eer_file(path)
    overwrite(path, 4, "RowsPerStrip", 15)
    with pytest.raises(DatasetError, match=r"m.eer: EER frame 4 is damaged: .*incorrect Strip"):
        readers.open_movie(path, eer_grouping=4)


@pytest.mark.parametrize("upsampling", [1, 2])
def test_eer_stream_cut_short_is_an_error_not_fewer_events(tmp_path, upsampling):
    path = tmp_path / "m.eer"
    expected = eer_file(path)
    movie = readers.open_movie(path, eer_grouping=1, eer_upsampling=upsampling)
    frames = movie.read()
    assert np.array_equal(frames.reshape(8, 16, upsampling, 24, upsampling).sum(axis=(2, 4)), expected)
    with tifffile.TiffFile(path) as tif:
        count = tif.pages[2].databytecounts[0]
    overwrite(path, 2, "StripByteCounts", count // 2 & ~1)  # even: imagecodecs decodes what is there
    with pytest.raises(DatasetError, match=r"m.eer: cannot decode EER frame 2: .*the codes end "
                                           r"before the frame does"):
        readers.open_movie(path, eer_grouping=1, eer_upsampling=upsampling).read()


@pytest.mark.parametrize("upsampling", [1, 2])
def test_eer_strip_of_an_odd_byte_count_decodes_as_relion(tmp_path, upsampling):
    """imagecodecs refuses odd-length EER streams; RELION reads them (the writer's two slack
    bytes leave room to drop one and still hold every code)."""
    path = tmp_path / "m.eer"
    expected = eer_file(path)
    for page in range(8):
        with tifffile.TiffFile(path) as tif:
            count = tif.pages[page].databytecounts[0]
        overwrite(path, page, "StripByteCounts", count - 1 if count % 2 == 0 else count)
    with tifffile.TiffFile(path) as tif:
        assert all(p.databytecounts[0] % 2 == 1 for p in tif.pages)
    frames = readers.open_movie(path, eer_grouping=1, eer_upsampling=upsampling).read()
    assert np.array_equal(frames.reshape(8, 16, upsampling, 24, upsampling).sum(axis=(2, 4)), expected)


# ---------------------------------------------------------------- .npy byte order (fuzz oracle)


def test_npy_byte_order_flip_is_classified_reinterpreted(tmp_path):
    data = stack(">u2", (3, 6, 10))
    path = tmp_path / "s.npy"
    np.save(path, data)
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"'>u2'", b"'<u2'", 1))
    got = describe([m.read() for m in readers.open_movies(path)])
    expected = describe([data.astype("=u2")])
    assert classify({**got, "warnings": []}, expected, False, False)[0] == "reinterpreted"
    # other pixels of the same shape are still a wrong array
    other = describe([data.astype("=u2") + 1])
    assert classify({**other, "warnings": []}, expected, False, False)[0] == "wrong-array"


# ---------------------------------------------------------------- mode 101 padding


def test_mode101_writer_pads_odd_rows_with_zero_and_reads_without_warning(tmp_path):
    data = stack(np.uint8, (3, 10, 13)) % 16
    mrcz.write(tmp_path / "odd.mrc", data, mode101=True)
    packed = np.frombuffer(mrcz_payload(tmp_path / "odd.mrc"), np.uint8).reshape(3, 10, 7)
    assert not (packed[..., -1] >> 4).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(mrcz.read(tmp_path / "odd.mrc"), data)


def mrcz_payload(path):
    raw = path.read_bytes()
    return raw[1024 + struct.unpack("<i", raw[92:96])[0]:]


def test_mode101_nx_one_less_than_written_warns(tmp_path):
    data = stack(np.uint8, (3, 10, 14)) % 16
    data[:, :, -1] = 5  # the last column is not 0: it becomes the padding nibble below
    path = tmp_path / "m.mrc"
    mrcz.write(path, data, mode101=True)
    poke(path, 0, struct.pack("<i", 13))  # nx 14 -> 13: the same bytes per row
    for reading in (lambda: mrcz.read(path), lambda: list(mrcz.iter_frames(path)),
                    lambda: readers.open_movie(path).read()):
        with pytest.warns(UserWarning, match=r"m.mrc: mode 101 .*padding nibble after pixel 13 "
                                             r".*nx \(13\) is probably wrong"):
            reading()
