"""`mrczbench compress`, `decompress` and `info`, through mrczbench.cli.main."""
import json

import mrcfile
import numpy as np
import pytest
import tifffile

from mrczbench import mrcz
from mrczbench.cli import main

from conftest import one_error_line, poisson_stack, run_cli


def movie(shape=(4, 24, 32), dtype=np.int8):
    return poisson_stack(shape, dtype, dose=1.0)


@pytest.mark.parametrize("suffix", (".npy", ".tif", ".tiff", ".mrc", ".mrcz"))
def test_compress_every_input_type(tmp_path, suffix, capsys):
    stack = movie(dtype=np.uint16)
    source = tmp_path / f"in{suffix}"
    if suffix == ".npy":
        np.save(source, stack)
    elif suffix in (".tif", ".tiff"):
        tifffile.imwrite(source, stack, photometric="minisblack")
    else:
        mrcz.write(source, stack, codec="lz4" if suffix == ".mrcz" else None,
                   meta={"dose": 1.0}, voltage=300)
    out = tmp_path / "out.mrcz"
    assert main(["compress", str(source), str(out), "--codec", "zlib", "--level", "4",
                 "--threads", "2", "--blocksize", "0"]) == 0
    assert "4 frames" in capsys.readouterr().out
    np.testing.assert_array_equal(mrcz.read(out), stack)
    header = mrcz.read_header(out)
    assert header.codec == "zlib" and header.level == 4
    if suffix in (".mrc", ".mrcz"):
        assert header.meta == {"dose": 1.0, "clevel": 4} and header.voltage == 300


def test_compress_2d_npy_and_uint8_tiff(tmp_path):
    np.save(tmp_path / "one.npy", movie((24, 32)))
    assert main(["compress", str(tmp_path / "one.npy"), str(tmp_path / "one.mrcz")]) == 0
    assert mrcz.read_header(tmp_path / "one.mrcz").shape == (1, 24, 32)
    stack = movie(dtype=np.uint8) * 40
    tifffile.imwrite(tmp_path / "u8.tif", stack, photometric="minisblack")
    assert main(["compress", str(tmp_path / "u8.tif"), str(tmp_path / "u8.mrcz")]) == 0
    back = mrcz.read(tmp_path / "u8.mrcz")
    assert back.dtype == np.uint8  # not turned into int8
    np.testing.assert_array_equal(back, stack)


def test_uint8_above_127_keeps_its_values_and_warns_once(tmp_path, capsys):
    stack = np.full((3, 8, 8), 200, np.uint8)
    tifffile.imwrite(tmp_path / "t1.tif", stack, photometric="minisblack")
    assert main(["compress", str(tmp_path / "t1.tif"), str(tmp_path / "t1.mrcz")]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning" in err and "int8" in err and "127" in err
    np.testing.assert_array_equal(mrcz.read(tmp_path / "t1.mrcz"), stack)
    assert main(["info", str(tmp_path / "t1.mrcz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dtype"] == "uint8"
    # decompress keeps uint8 (the metadata records it); --no-meta gives legacy int8
    assert main(["decompress", str(tmp_path / "t1.mrcz"), str(tmp_path / "a.mrc")]) == 0
    assert mrcz.read(tmp_path / "a.mrc").dtype == np.uint8
    assert main(["decompress", str(tmp_path / "t1.mrcz"), str(tmp_path / "b.mrc"),
                 "--no-meta"]) == 0
    assert mrcz.read_header(tmp_path / "b.mrc").meta is None
    assert mrcz.read(tmp_path / "b.mrc").view(np.uint8).min() == 200
    # values up to 127 are the same in both readings: no warning
    capsys.readouterr()
    np.save(tmp_path / "low.npy", np.full((2, 8, 8), 100, np.uint8))
    assert main(["compress", str(tmp_path / "low.npy"), str(tmp_path / "low.mrcz")]) == 0
    assert capsys.readouterr().err == ""


def test_decompress_gives_valid_plain_mrc(tmp_path):
    stack = movie(dtype=np.int16)
    source = tmp_path / "in.mrcz"
    mrcz.write(source, stack, codec="zstd", pixelsize=1.3)
    out = tmp_path / "out.mrc"
    assert main(["decompress", str(source), str(out)]) == 0
    assert mrcfile.validate(str(out), print_file=open(tmp_path / "log", "w"))
    with mrcfile.open(out) as mrc:
        np.testing.assert_array_equal(mrc.data, stack)
        assert float(mrc.voxel_size.x) == pytest.approx(1.3)
    assert mrcz.read_header(out).codec is None


def test_decompress_keeps_or_drops_metadata(tmp_path):
    source = tmp_path / "in.mrcz"
    mrcz.write(source, movie(), codec="zstd", meta={"dose": 2})
    assert main(["decompress", str(source), str(tmp_path / "a.mrc")]) == 0
    assert mrcz.read_header(tmp_path / "a.mrc").meta == {"dose": 2}  # "clevel" dropped
    assert main(["decompress", str(source), str(tmp_path / "b.mrc"), "--no-meta"]) == 0
    assert mrcz.read_header(tmp_path / "b.mrc").meta is None


def test_info_text_and_json(tmp_path, capsys):
    path = tmp_path / "m.mrcz"
    stack = movie()
    mrcz.write(path, stack, codec="zstd", level=3, meta={"detector": "K3"})
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    for word in ("shape", "[4, 24, 32]", "zstd", "level", "3", "ratio", "K3", "stored_bytes"):
        assert word in text
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [4, 24, 32] and info["dtype"] == "int8" and info["mode"] == 0
    assert info["codec"] == "zstd" and info["level"] == 3
    assert info["stored_bytes"] == path.stat().st_size and info["raw_bytes"] == stack.nbytes
    assert info["ratio"] == pytest.approx(path.stat().st_size / stack.nbytes, rel=1e-5)
    assert info["metadata"] == {"detector": "K3", "clevel": 3}


def test_user_errors_are_one_line_exit_2(tmp_path, capsys):
    np.save(tmp_path / "f64.npy", np.zeros((2, 4, 4)))
    (tmp_path / "bad.mrcz").write_bytes(b"x" * 2000)
    (tmp_path / "notes.txt").write_text("hi")
    np.save(tmp_path / "ok.npy", movie())
    cases = [
        ["compress", str(tmp_path / "missing.npy"), str(tmp_path / "o.mrcz")],
        ["compress", str(tmp_path / "notes.txt"), str(tmp_path / "o.mrcz")],
        ["compress", str(tmp_path / "f64.npy"), str(tmp_path / "o.mrcz")],
        ["compress", str(tmp_path / "ok.npy"), str(tmp_path / "ok.npy")],
        ["compress", str(tmp_path / "ok.npy"), str(tmp_path / "nodir" / "o.mrcz")],
        ["decompress", str(tmp_path / "bad.mrcz"), str(tmp_path / "o.mrc")],
        ["info", str(tmp_path / "bad.mrcz")],
        ["info", str(tmp_path / "missing.mrc")],
    ]
    for argv in cases:
        one_error_line(capsys, argv, "error")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mrcz", "f64.npy", "notes.txt",
                                                          "ok.npy"]


def test_output_suffix_must_match_the_format(tmp_path, capsys):
    mrcz.write(tmp_path / "m1.mrc", movie())
    mrcz.write(tmp_path / "x.mrcz", movie(), codec="zstd")
    err = one_error_line(capsys, ["compress", str(tmp_path / "m1.mrc"), str(tmp_path / "out.mrc")])
    assert ".mrcz" in err and "misread" in err
    err = one_error_line(capsys, ["decompress", str(tmp_path / "x.mrcz"),
                              str(tmp_path / "out.mrcz")])
    assert "must not end in .mrcz" in err and ".mrc" in err
    assert not (tmp_path / "out.mrc").exists() and not (tmp_path / "out.mrcz").exists()
    # .MRCZ counts; .mrcs is fine for plain output
    assert main(["compress", str(tmp_path / "m1.mrc"), str(tmp_path / "UP.MRCZ")]) == 0
    assert main(["decompress", str(tmp_path / "x.mrcz"), str(tmp_path / "s.mrcs")]) == 0


def test_messages_name_the_problem_not_internals(tmp_path, capsys):
    mrcz.write(tmp_path / "m1.mrc", movie())
    (tmp_path / "adir.mrcz").mkdir()
    (tmp_path / "folder").mkdir()
    # output is a folder: name it, not our temporary file
    err = one_error_line(capsys, ["compress", str(tmp_path / "m1.mrc"), str(tmp_path / "adir.mrcz")])
    assert "Is a directory" in err and err.rstrip().endswith("adir.mrcz") and ".tmp" not in err
    err = one_error_line(capsys, ["decompress", str(tmp_path / "m1.mrc"), str(tmp_path / "folder")])
    assert "Is a directory" in err and ".tmp" not in err
    # input is a folder
    err = one_error_line(capsys, ["compress", str(tmp_path / "folder"), str(tmp_path / "o.mrcz")])
    assert "is a folder" in err and "(none)" not in err
    # parameter errors name the parameter, not the output file
    for flag, value in (("--threads", "-1"), ("--threads", "0"), ("--blocksize", "-5"),
                        ("--blocksize", "100"), ("--blocksize", "abc")):
        err = one_error_line(capsys, ["compress", str(tmp_path / "m1.mrc"), str(tmp_path / "o.mrcz"),
                                  flag, value])
        assert flag in err and "o.mrcz" not in err, err
    assert "1024-2147483647" in err
    # a TIFF is not an MRC file with a strange mode
    tifffile.imwrite(tmp_path / "t1.tif", np.zeros((64, 64), np.uint8))
    err = one_error_line(capsys, ["info", str(tmp_path / "t1.tif")])
    assert "this is a TIFF/EER movie" in err and "datasets inspect" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.mrcz", "folder", "m1.mrc",
                                                          "t1.tif"]
    assert list((tmp_path / "adir.mrcz").iterdir()) == []


def test_info_says_there_is_no_payload_checksum(tmp_path, capsys):
    mrcz.write(tmp_path / "m.mrcz", movie(), codec="zstd")
    assert main(["info", str(tmp_path / "m.mrcz")]) == 0
    assert "no payload checksum" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "m.mrcz"), "--json"]) == 0
    assert "no payload checksum" in json.loads(capsys.readouterr().out)["checksum"]


def test_cli_in_a_subprocess(tmp_path):
    np.save(tmp_path / "m.npy", movie())
    done = run_cli("compress", tmp_path / "m.npy", tmp_path / "m.mrcz")
    assert done.returncode == 0, done.stderr
    assert mrcz.read_header(tmp_path / "m.mrcz").codec == "zstd"
    done = run_cli("info", tmp_path / "nothing.mrcz")
    assert done.returncode == 2 and done.stderr.count("\n") == 1


def test_help_mentions_units(capsys):
    with pytest.raises(SystemExit):
        main(["compress", "--help"])
    text = capsys.readouterr().out
    assert "BYTES" in text and "bytes" in text and "1-9" in text
    with pytest.raises(SystemExit):
        main(["info", "--help"])
    text = capsys.readouterr().out
    assert "37 % of the raw size" in text and "%%" not in text


def test_dtype_error_names_the_input_not_the_output(tmp_path, capsys):
    np.save(tmp_path / "doubles.npy", np.ones((2, 8, 8), np.float64))
    err = one_error_line(capsys, ["compress", str(tmp_path / "doubles.npy"), str(tmp_path / "o.mrcz")])
    assert "doubles.npy" in err and "float64" in err and "o.mrcz" not in err
    assert not (tmp_path / "o.mrcz").exists()
