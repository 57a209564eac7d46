"""mrczbench.movies.readers and .eer: the one way to open users' movies, and its safety
rules (issue 14): regular files only, compressed files named, frame counts checked, no
permissive guessing at MRCZ, claimed sizes checked, lists streamed, EER errors wrapped."""
import bz2
import gzip
import os

import numpy as np
import pytest
import tifffile

from mrczbench import mrcz
from mrczbench.cli import main
from mrczbench.errors import DatasetError
from mrczbench.movies import eer, readers
from mrczbench.fuzz.seeds import write_eer

from conftest import one_error_line, poisson_stack, run_cli


# ---------------------------------------------------------------- the API


def test_open_movie_gives_name_shape_dtype_frames_and_read(tmp_path):
    data = poisson_stack()
    mrcz.write(tmp_path / "m.mrcz", data, codec="zstd")
    movie = readers.open_movie(tmp_path / "m.mrcz")
    assert (movie.name, movie.shape, movie.dtype) == ("m.mrcz", (4, 24, 32), np.int16)
    assert np.array_equal(np.stack(list(movie.iter_frames())), data)
    assert np.array_equal(movie.read(), data)


# ---------------------------------------------------------------- non-regular inputs (#10)


@pytest.mark.parametrize("command", [["info"], ["datasets", "inspect"], ["compress"]])
def test_fifo_input_is_refused_not_waited_on(tmp_path, command):
    fifo = tmp_path / "movie.mrc"
    os.mkfifo(fifo)
    argv = [*command, str(fifo)] + ([str(tmp_path / "out.mrcz")] if command == ["compress"] else [])
    result = run_cli(*argv)
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1 and "FIFO" in result.stderr and "no such file" not in result.stderr


def test_fifo_list_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "movies.star")
    result = run_cli("datasets", "inspect", str(tmp_path / "movies.star"))
    assert result.returncode == 2 and "movies.star: is a FIFO" in result.stderr


def test_symlink_to_dev_zero_is_not_a_movie(tmp_path):
    (tmp_path / "zero.mrc").symlink_to("/dev/zero")
    with pytest.raises(DatasetError, match=r"zero.mrc: is a character device, not a regular file"):
        readers.open_movie(tmp_path / "zero.mrc")


def test_zero_frame_npy_is_refused(tmp_path, capsys):
    np.save(tmp_path / "empty.npy", np.zeros((0, 4, 4), np.int16))
    with pytest.raises(DatasetError, match=r"empty.npy: the movie has shape \(0, 4, 4\): no frames"):
        readers.open_movie(tmp_path / "empty.npy")
    err = one_error_line(capsys, ["compress", str(tmp_path / "empty.npy"), str(tmp_path / "o.mrcz")])
    assert "no frames" in err and not (tmp_path / "o.mrcz").exists()


# ---------------------------------------------------------------- compressed files


@pytest.mark.parametrize("opener,name", [(gzip.open, "gzip"), (bz2.open, "bzip2")])
def test_compressed_movie_is_named_whatever_its_suffix(tmp_path, capsys, opener, name):
    mrcz.write(tmp_path / "plain.mrc", poisson_stack())
    packed = tmp_path / "movie.mrc"  # a .mrc.gz renamed: the suffix does not say
    with opener(packed, "wb") as handle:
        handle.write((tmp_path / "plain.mrc").read_bytes())
    with pytest.raises(DatasetError, match=f"movie.mrc: compressed with {name}: decompress it first"):
        readers.open_movie(packed)
    for argv in (["info", str(packed)], ["datasets", "inspect", str(packed)],
                 ["compress", str(packed), str(tmp_path / "o.mrcz")]):
        assert f"compressed with {name}: decompress it first" in one_error_line(capsys, argv)


# ---------------------------------------------------------------- frame counts (#3)


def test_truncated_tiff_is_an_error_with_expected_and_found(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "full.tif", poisson_stack((5, 64, 64), np.uint16), photometric="minisblack")
    data = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) * 3 // 5])
    with pytest.raises(DatasetError, match=r"cut.tif: the TIFF movie ends early: expected 5 frames, found 1"):
        readers.open_movies(tmp_path / "cut.tif")
    err = one_error_line(capsys, ["compress", str(tmp_path / "cut.tif"), str(tmp_path / "o.mrcz")])
    assert "expected 5 frames, found 1" in err and not (tmp_path / "o.mrcz").exists()


def test_truncated_plain_tiff_without_shape_metadata_is_an_error(tmp_path):
    tifffile.imwrite(tmp_path / "full.tif", poisson_stack((5, 64, 64), np.uint16), photometric="minisblack",
                     metadata=None)
    data = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) * 3 // 5])
    with pytest.raises(DatasetError, match=r"cut.tif: the TIFF movie ends early"):
        readers.open_movie(tmp_path / "cut.tif")


def test_movie_ending_early_while_streaming_names_expected_and_found(tmp_path):
    np.save(tmp_path / "m.npy", poisson_stack())
    movie = readers.open_movie(tmp_path / "m.npy")
    np.save(tmp_path / "m.npy", poisson_stack()[:2])  # the file shrank after it was opened
    with pytest.raises(DatasetError, match=r"m.npy: the movie ends early: expected 4 frames, found 2"):
        list(movie.iter_frames())


# ---------------------------------------------------------------- no permissive guessing (#4)


@pytest.mark.parametrize("suffix", [".mrcz", ".mrc"])
def test_mrcz_with_damaged_mode_is_an_error_not_compressed_bytes_as_pixels(tmp_path, suffix):
    path = tmp_path / f"damaged{suffix}"
    noise = np.random.default_rng(0).integers(-2 ** 15, 2 ** 15, (4, 64, 64), dtype=np.int16)
    mrcz.write(path, noise, codec="zstd")  # incompressible: about as big as the raw data
    data = bytearray(path.read_bytes())
    data[12:16] = (0).to_bytes(4, "little")  # mode word 6001 (zstd, int16) -> 0 (plain int8)
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"cannot read as MRC/MRCZ"):
        readers.open_movie(path)


def test_plain_mrc_with_trailing_bytes_still_reads_through_mrcfile(tmp_path):
    import mrcfile
    data = poisson_stack()
    with mrcfile.new(tmp_path / "odd.mrc") as mrc:
        mrc.set_data(data)
    with open(tmp_path / "odd.mrc", "ab") as handle:
        handle.write(b"\0" * 7)
    movie = readers.open_movie(tmp_path / "odd.mrc")
    assert movie.kind == "mrc"  # our reader reads it too, with a warning (issue 14)
    with pytest.warns(UserWarning, match="ignored"):
        assert np.array_equal(movie.read(), data)


# ---------------------------------------------------------------- claimed sizes (#11)


def test_tiny_tiff_claiming_65535_squared_is_refused_before_allocating(tmp_path):
    path = tmp_path / "bomb.tif"
    tifffile.imwrite(path, np.zeros((16, 16), np.uint16), compression="zlib")
    with tifffile.TiffFile(path, mode="r+") as tif:
        tif.pages[0].tags["ImageWidth"].overwrite(65535)
        tif.pages[0].tags["ImageLength"].overwrite(65535)
    assert path.stat().st_size < 1000
    with pytest.raises(DatasetError, match=r"bomb.tif: TIFF page 0 claims \(65535, 65535\)"):
        readers.open_movie(path)


# ---------------------------------------------------------------- lists (#8, #12)


def test_star_value_with_an_apostrophe_is_a_plain_value(tmp_path):
    mrcz.write(tmp_path / "it's.mrc", poisson_stack())
    (tmp_path / "movies.star").write_text(
        "data_movies\nloop_\n_rlnMicrographMovieName #1\n_rlnOpticsGroup #2\nit's.mrc 1\n")
    (movie,) = readers.open_movies(tmp_path / "movies.star")
    assert movie.name == "it's.mrc"


def test_star_value_with_an_unclosed_quote_is_one_line(tmp_path, capsys):
    (tmp_path / "movies.star").write_text(
        "data_movies\nloop_\n_rlnMicrographMovieName #1\n'a movie.mrc\n")
    err = one_error_line(capsys, ["datasets", "inspect", str(tmp_path / "movies.star")])
    assert "line 4 has an unclosed quote" in err


def test_list_entry_longer_than_a_file_name_is_one_line(tmp_path, capsys):
    (tmp_path / "movies.lst").write_text("x" * 300 + ".mrc\n")
    err = one_error_line(capsys, ["datasets", "inspect", str(tmp_path / "movies.lst")])
    assert "File name too long" in err or "not a usable path" in err


def test_same_sub_list_twice_is_not_a_loop_but_a_list_naming_itself_is(tmp_path):
    mrcz.write(tmp_path / "a.mrc", poisson_stack())
    (tmp_path / "sub.lst").write_text("a.mrc\n")
    (tmp_path / "top.lst").write_text("sub.lst\nsub.lst\n")
    assert [m.name for m in readers.open_movies(tmp_path / "top.lst")] == ["a.mrc", "a.mrc"]
    (tmp_path / "loop.lst").write_text("a.mrc\nloop2.lst\n")
    (tmp_path / "loop2.lst").write_text("loop.lst\n")
    with pytest.raises(DatasetError, match=r"the list includes itself"):
        readers.open_movies(tmp_path / "loop.lst")


def test_lists_are_streamed_movies_opened_one_at_a_time(tmp_path):
    mrcz.write(tmp_path / "a.mrc", poisson_stack())
    (tmp_path / "movies.lst").write_text("a.mrc\nmissing.mrc\n")
    movies = readers.iter_movies(tmp_path / "movies.lst")
    assert next(movies).name == "a.mrc"  # before the list's second line is looked at
    with pytest.raises(DatasetError, match=r"missing.mrc: no such file"):
        next(movies)


def test_inspect_prints_movies_as_it_opens_them(tmp_path, capsys):
    mrcz.write(tmp_path / "a.mrc", poisson_stack())
    (tmp_path / "movies.lst").write_text("a.mrc\nmissing.mrc\n")
    assert main(["datasets", "inspect", str(tmp_path / "movies.lst")]) == 2
    captured = capsys.readouterr()
    assert "a.mrc" in captured.out and "missing.mrc: no such file" in captured.err


# ---------------------------------------------------------------- EER (#9)


def eer_events(frames, shape, seed=3):
    from mrczbench.movies import synthetic
    model = synthetic.make_model("eer", shape, 0.5, seed=seed, grouping=frames).prepare()
    rng = np.random.default_rng(1)
    return [model.internal_frame_events(rng) for _ in range(frames)]


def test_eer_with_a_changed_image_length_is_refused(tmp_path):
    path = tmp_path / "movie.eer"
    write_eer(path, eer_events(4, (32, 48)), (32, 48))
    with tifffile.TiffFile(path, mode="r+") as tif:
        tif.pages[0].tags["ImageLength"].overwrite(2 ** 30)
    with pytest.raises(DatasetError, match=r"movie.eer: EER frame 0 claims 1073741824 x 48 pixels"):
        readers.open_movie(path, eer_grouping=4)


@pytest.mark.parametrize("damage", ["odd", "short"])
def test_eer_decoding_errors_name_file_and_frame(tmp_path, damage):
    path = tmp_path / "movie.eer"
    write_eer(path, eer_events(4, (32, 48)), (32, 48))
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[2]
        offset, count = page.dataoffsets[0], page.databytecounts[0]
    data = bytearray(path.read_bytes())
    if damage == "short":
        data[offset:offset + count] = b"\xff" * count  # skips of 127 without end: too few pixels
    path.write_bytes(bytes(data))
    if damage == "odd":
        with tifffile.TiffFile(path, mode="r+") as tif:
            # an odd count decodes as in RELION (tests/test_readers_strict.py); one that also
            # cuts the codes short is an error
            tif.pages[2].tags["StripByteCounts"].overwrite((count // 2) | 1)
    movie = readers.open_movie(path, eer_grouping=4)
    with pytest.raises(DatasetError, match=r"movie.eer: cannot decode EER frame 2"):
        movie.read()


def encode_eer8(events, npix, waste_after_skip=True) -> bytes:
    """8-bit EER codes (TIFF compression 65000), 12 bits each, LSB first: an 8-bit skip then
    4 sub-pixel bits (column, row, each XOR 2). With waste_after_skip (RELION's and the FEI
    reference's reading), a 255 skip is followed by 4 unused bits too."""
    acc, bit, pos = 0, 0, 0

    def put(value, nbits):
        nonlocal acc, bit
        acc |= int(value) << bit
        bit += nbits

    def skip_to(target):
        nonlocal pos
        skip = target - pos
        while skip >= 255:
            put(255, 8)
            if waste_after_skip:
                put(0, 4)
            skip -= 255
        return skip

    for p, h, v in events:
        put(skip_to(p), 8)
        put((h ^ 2) | ((v ^ 2) << 2), 4)
        pos = p + 1
    put(skip_to(npix), 8)
    put(0, 4)
    return acc.to_bytes((bit + 7) // 8 + 3, "little")


def test_eer8_decoder_follows_relion_unused_bits_after_a_255_skip():
    # events far apart: each needs 255 skips before it
    events = [(3, 1, 0), (700, 3, 2), (701, 0, 3), (2000, 2, 1)]
    positions, symbols = eer.decode_eer8(encode_eer8(events, 64 * 48), 64 * 48)
    assert positions.tolist() == [p for p, _, _ in events]
    assert (symbols & 3).tolist() == [h for _, h, _ in events]
    assert (symbols >> 2).tolist() == [v for _, _, v in events]
    # the other reading (no unused bits after 255) is not what RELION decodes
    with pytest.raises(ValueError):
        eer.decode_eer8(encode_eer8(events, 64 * 48, waste_after_skip=False), 64 * 48)


def test_eer8_file_renders_events_at_relion_positions(tmp_path):
    shape = (64, 48)
    events = [[(3, 1, 0), (700, 3, 2), (2000, 2, 1)], [(5, 0, 0), (1500, 1, 1)]]
    strips = [encode_eer8(frame, shape[0] * shape[1]) for frame in events]
    path = tmp_path / "movie8.eer"
    meta = b"<metadata><item name='sensorPixelSize.width'>1</item></metadata>"
    tifffile.imwrite(path, data=iter(strips), shape=(2, *shape), dtype=np.uint8,
                     compression="zlib", rowsperstrip=shape[0], photometric="minisblack",
                     bigtiff=True, metadata=None, extratags=[(65001, 7, len(meta), meta, True)])
    with tifffile.TiffFile(path, mode="r+") as tif:
        for page in tif.pages:
            page.tags["Compression"].overwrite(65000)
    for upsampling in (1, 2):
        movie = readers.open_movie(path, eer_grouping=2, eer_upsampling=upsampling)
        expected = np.zeros((shape[0] * upsampling, shape[1] * upsampling), np.uint8)
        for frame in events:
            for p, h, v in frame:
                y, x = divmod(p, shape[1])
                if upsampling == 2:
                    y, x = 2 * y + (v >> 1), 2 * x + (h >> 1)
                expected[y, x] += 1
        assert np.array_equal(movie.read()[0], expected)
