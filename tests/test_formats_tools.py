"""Files written here open in the real tools (tiffinfo, bzip2 -t, h5dump, mrcfile, the
command-line compressors' own tests), and missing command-line tools are skipped, not crashed on."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from mrczbench.errors import FormatError
from mrczbench.formats import describe_formats, get_format
from mrczbench.formats.tools import ToolFormat, ZstdCliFormat

from test_formats_roundtrip import movie


def need_tool(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, check=False, **kwargs)


# --- TIFF in libtiff's tiffinfo ---------------------------------------------------------------
def tiffinfo_strips(path) -> list[bytes]:
    """The decoded strips as libtiff's `tiffinfo -d` prints them (hex bytes)."""
    out = run("tiffinfo", "-d", str(path))
    assert out.returncode == 0, out.stderr
    strips, current = [], None
    for line in out.stdout.decode().splitlines():
        if re.match(r"^Strip \d+:", line):
            current = bytearray()
            strips.append(current)
        elif current is not None and re.fullmatch(r"( [0-9a-f]{2})+", line):
            current += bytes.fromhex(line.replace(" ", ""))
        elif current is not None and line.strip():
            current = None
    return [bytes(s) for s in strips]


@pytest.mark.parametrize("dtype", ["int8", "int16", "float32"])
@pytest.mark.parametrize("params, scheme, rows", [
    ({}, "LZW", 32),
    ({"compression": "deflate", "level": 9}, "AdobeDeflate", 32),
    ({"compression": "none"}, "None", 32),
    ({"line_by_line": True}, "LZW", 1),
])
def test_tiff_opens_in_tiffinfo_bit_exact(params, scheme, rows, dtype, tmp_path):
    need_tool("tiffinfo")
    stack = movie(dtype, shape=(2, 32, 24))
    path = tmp_path / "movie.tif"
    get_format("tiff", **params).write(path, stack)
    info = run("tiffinfo", str(path)).stdout.decode()
    assert info.count("TIFF Directory at offset") == 2  # one page per frame
    assert f"Compression Scheme: {scheme}" in info
    assert f"Rows/Strip: {rows}" in info
    sample_format = {"int8": "signed integer", "int16": "signed integer",
                     "float32": "IEEE floating point"}[dtype]
    assert f"Sample Format: {sample_format}" in info
    # libtiff decodes the strips to exactly our bytes, rows bottom-up as RELION writes them
    strips = tiffinfo_strips(path)
    assert len(strips) == 2 * 32 // rows
    assert b"".join(strips) == stack[:, ::-1].astype(stack.dtype.newbyteorder("<")).tobytes()


# --- bzip2 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bzip2", "lbzip2"])
def test_bzip2_output_passes_bzip2_t_and_opens_in_mrcfile(name, tmp_path):
    need_tool("bzip2")
    fmt = get_format(name, level=3)
    if fmt.unavailable_reason():
        pytest.skip(fmt.unavailable_reason())
    stack = movie("int16")
    path = tmp_path / f"movie{fmt.suffix}"
    fmt.write(path, stack)
    checked = run("bzip2", "-t", str(path))
    assert checked.returncode == 0, checked.stderr
    # the payload is a plain MRC any reader opens (mrcfile reads .bz2 itself)
    import mrcfile

    with mrcfile.open(path, permissive=False) as mrc:
        assert mrc.header.mode == 1
        assert np.array_equal(mrc.data, stack)
    raw = run("bzip2", "-dc", str(path)).stdout
    assert np.array_equal(get_format("mrc").decode(raw[1024:], stack.shape, stack.dtype), stack)


@pytest.mark.parametrize("name", ["bzip2", "lbzip2"])
def test_uint8_bzip2_payload_opens_in_mrcfile_with_the_same_bytes(name, tmp_path):
    fmt = get_format(name)
    if fmt.unavailable_reason():
        pytest.skip(fmt.unavailable_reason())
    stack = np.full((2, 8, 6), 200, dtype=np.uint8)
    stack[0, 0, 0] = 3
    path = tmp_path / f"movie{fmt.suffix}"
    fmt.write(path, stack)
    import mrcfile

    with mrcfile.open(path, permissive=False) as mrc:
        assert mrc.header.mode == 0
        assert np.array_equal(np.asarray(mrc.data).view(np.uint8), stack)
    back = fmt.read(path)
    assert back.dtype == np.uint8 and np.array_equal(back, stack)


# --- the other command-line tools check their own output ---------------------------------
@pytest.mark.parametrize("name, check", [
    ("pigz", ["pigz", "-t"]), ("xz", ["xz", "-t"]), ("zstd-cli", ["zstd", "-q", "-t"]),
    ("lz4-cli", ["lz4", "-q", "-t"]), ("pxz", ["xz", "-t"])])
def test_tool_output_passes_the_tools_own_test(name, check, tmp_path):
    fmt = get_format(name, threads=2)
    if fmt.unavailable_reason():
        pytest.skip(fmt.unavailable_reason())
    path = tmp_path / f"movie{fmt.suffix}"
    fmt.write(path, movie("int8"))
    done = run(*check, str(path))
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name, low, high", [
    ("lbzip2", 1, 9), ("pigz", 1, 9), ("xz", 0, 6), ("zstd-cli", 1, 19), ("lz4-cli", 1, 9)])
def test_tool_level_changes_output(name, low, high, tmp_path):
    fmt_low, fmt_high = get_format(name, level=low), get_format(name, level=high)
    if fmt_low.unavailable_reason():
        pytest.skip(fmt_low.unavailable_reason())
    stack = movie("int16", shape=(2, 128, 256))  # > 100 kB: bzip2 levels are block sizes
    sizes = [f.write(tmp_path / f"{f.label()}{f.suffix}", stack) for f in (fmt_low, fmt_high)]
    assert sizes[0] != sizes[1]
    assert np.array_equal(fmt_high.read(tmp_path / f"{fmt_high.label()}{fmt_high.suffix}"), stack)


# --- missing tools are skipped with the reason, never crashed on -------------------------------
class MissingToolFormat(ZstdCliFormat):
    name = "zstd-missing"
    tool = "mrczbench-no-such-compressor"
    install_hint = "not a real tool"


def test_missing_tool_gives_reason_and_format_error(tmp_path):
    fmt = MissingToolFormat()
    reason = fmt.unavailable_reason()
    assert "mrczbench-no-such-compressor not found on PATH" in reason
    with pytest.raises(FormatError, match="not found on PATH"):
        fmt.write(tmp_path / "x.mrc.zst", movie("int8"))
    assert os.listdir(tmp_path) == []  # no raw or partial file left behind
    (tmp_path / "x.mrc.zst").write_bytes(b"x")
    with pytest.raises(FormatError, match="not found on PATH"):
        fmt.read(tmp_path / "x.mrc.zst")
    assert os.listdir(tmp_path) == ["x.mrc.zst"]


def test_unavailable_tools_are_listed_with_their_reason():
    needs = {"lbzip2": ["lbzip2"], "pigz": ["pigz"], "xz": ["xz"], "pxz": ["pxz", "xz"],
             "zstd-cli": ["zstd"], "lz4-cli": ["lz4"]}  # pxz compresses, xz decompresses
    listed = {entry["name"]: entry for entry in describe_formats()}
    for name, tools in needs.items():
        missing = [tool for tool in tools if shutil.which(tool) is None]
        assert listed[name]["available"] == (not missing)
        for tool in missing:
            assert f"{tool}" in listed[name]["unavailable_reason"]
            assert "not found on PATH" in listed[name]["unavailable_reason"]


def test_failing_tool_is_a_format_error_with_its_message(tmp_path):
    need_tool("zstd")
    path = tmp_path / "bad.mrc.zst"
    path.write_bytes(b"not zstd data at all")
    with pytest.raises(FormatError, match=r"zstd failed .* \(exit 1\)"):
        get_format("zstd-cli").read(path)
    assert os.listdir(tmp_path) == ["bad.mrc.zst"]


def test_tool_formats_are_files_only():
    assert not ToolFormat.has_memory_codec
    with pytest.raises(NotImplementedError):
        get_format("zstd-cli").encode(movie("int8"))


# --- HDF5 in h5py and h5dump ------------------------------------------------------------------
@pytest.mark.parametrize("params, cd4", [({}, 2), ({"compression": "bitshuffle-zstd"}, 3)])
def test_hdf5_opens_in_h5dump(params, cd4, tmp_path):
    need_tool("h5dump")
    import hdf5plugin

    stack = movie("int16")
    path = tmp_path / "movie.h5"
    get_format("hdf5", **params).write(path, stack)
    header = run("h5dump", "-H", "-p", str(path))
    assert header.returncode == 0, header.stderr
    text = header.stdout.decode()
    assert 'DATASET "data"' in text and "H5T_STD_I16LE" in text
    assert "CHUNKED ( 1, 64, 48 )" in text and "FILTER_ID 32008" in text
    assert re.search(rf"PARAMS {{ \d+ \d+ 2 \d+ {cd4}", text)
    # with the bitshuffle plugin on HDF5_PLUGIN_PATH, h5dump decodes the data bit-exact
    binary = tmp_path / "data.bin"
    env = dict(os.environ, HDF5_PLUGIN_PATH=hdf5plugin.PLUGIN_PATH)
    dumped = run("h5dump", "-d", "/data", "-b", "LE", "-o", str(binary), str(path), env=env)
    assert dumped.returncode == 0, dumped.stderr
    assert binary.read_bytes() == stack.astype("<i2").tobytes()
