"""Registry, configs (validation, JSON round trip), labels, `formats list`, plugins."""
from __future__ import annotations

import argparse
import dataclasses
import json
import textwrap

import pytest

from mrczbench.errors import FormatError
from mrczbench.commands.formats import add_commands
from mrczbench.formats import (BUILTIN, describe_formats, format_class,
                               format_from_dict, format_from_json, format_names, get_format)
from mrczbench.formats.base import Format

CONTENDERS = ["mrc", "mrcz", "mrc-uint4", "tiff", "bzip2", "lbzip2", "pigz", "xz", "pxz",
              "zstd-cli", "lz4-cli", "zstd", "lz4", "jpeg2000", "jpegxl", "hdf5", "blosc2",
              "pcodec", "htj2k", "jpegls", "lerc", "metadata"]


def test_every_contender_is_registered_by_its_issue_name():
    assert set(CONTENDERS) <= set(format_names())
    for name in CONTENDERS:
        cls = format_class(name)
        assert cls.name == name
        assert issubclass(cls, Format)


def test_unknown_format_lists_the_valid_names():
    with pytest.raises(FormatError) as info:
        get_format("tif")
    message = str(info.value)
    assert "unknown format 'tif'" in message
    for name in CONTENDERS:
        assert name in message


@pytest.mark.parametrize("name", CONTENDERS)
def test_unknown_parameter_lists_the_valid_ones(name):
    with pytest.raises(FormatError) as info:
        get_format(name, colour="red")
    message = str(info.value)
    assert "unknown parameter(s) colour" in message
    for field in dataclasses.fields(format_class(name).Config):
        assert field.name in message


@pytest.mark.parametrize("name", CONTENDERS)
def test_defaults_validate_and_threads_is_a_parameter(name):
    fmt = get_format(name)
    assert fmt.config.threads == 1
    assert fmt.threads_note, f"{name} must say how it uses threads"
    assert get_format(name, threads=4).to_dict()["threads"] == 4
    with pytest.raises(FormatError, match=r"threads: expected an integer >= 1\. Got 0"):
        get_format(name, threads=0)


@pytest.mark.parametrize("name, params", [
    ("mrc", {"threads": 3}),
    ("mrcz", {"codec": "lz4", "level": 9, "blocksize": 1 << 20, "filter": "shuffle"}),
    ("mrc-uint4", {}),
    ("tiff", {"compression": "deflate", "level": 9, "line_by_line": True, "threads": 2}),
    ("tiff", {"compression": "none"}),
    ("bzip2", {"level": 1}),
    ("lbzip2", {"level": 5, "threads": 2}),
    ("pigz", {"level": 9}),
    ("xz", {"level": 0}),
    ("pxz", {"level": 9}),
    ("zstd-cli", {"level": 19}),
    ("lz4-cli", {"level": 12}),
    ("zstd", {"level": 22, "threads": 2}),
    ("lz4", {"level": 16}),
    ("pcodec", {"level": 12}),
    ("htj2k", {"threads": 2}),
    ("jpegls", {}),
    ("lerc", {"compression": "zstd"}),
    ("jpeg2000", {"threads": 2}),
    ("jpegxl", {"effort": 3}),
    ("hdf5", {"compression": "bitshuffle-zstd", "level": 9}),
    ("blosc2", {"codec": "lz4hc", "level": 5, "filter": "bytedelta", "blocksize": 65536}),
])
def test_config_round_trips_through_json(name, params):
    fmt = get_format(name, **params)
    text = fmt.to_json()
    assert json.loads(text)["format"] == name
    again = format_from_json(text)
    assert again == fmt
    assert again.config == fmt.config
    assert format_from_dict(json.loads(text)) == fmt
    assert again.label() == fmt.label()


def test_configs_are_frozen():
    fmt = get_format("mrcz")
    with pytest.raises(dataclasses.FrozenInstanceError):
        fmt.config.level = 5


@pytest.mark.parametrize("name, params, message", [
    ("bzip2", {"level": 12}, "level: expected an integer 1-9. Got 12"),
    ("bzip2", {"level": "9"}, "level: expected an integer 1-9. Got '9'"),
    ("bzip2", {"level": True}, "level: expected an integer 1-9. Got True"),
    ("mrcz", {"codec": "snappy"},
     "codec: expected one of blosclz, lz4, lz4hc, zlib, zstd. Got 'snappy'"),
    ("mrcz", {"level": 0}, "level: expected an integer 1-9. Got 0"),
    ("mrcz", {"filter": "delta"}, "filter: expected one of bitshuffle, shuffle, none. Got 'delta'"),
    ("mrcz", {"blocksize": 100}, "blocksize: expected 0 (automatic) or an integer number of "
                                 "bytes 1024-2147483647. Got 100"),
    ("tiff", {"compression": "zip"}, "compression: expected one of lzw, deflate, none. Got 'zip'"),
    ("tiff", {"compression": "deflate", "level": 10}, "level: expected an integer 1-9. Got 10"),
    ("tiff", {"level": 6}, "level: only deflate has a level; lzw has none. Got 6"),
    ("tiff", {"line_by_line": 1}, "line_by_line: expected true or false. Got 1"),
    ("zstd-cli", {"level": 20}, "level: expected an integer 1-19. Got 20"),
    ("lz4-cli", {"level": 0}, "level: expected an integer 1-12. Got 0"),
    ("zstd", {"level": 23}, "level: expected an integer 1-22. Got 23"),
    ("lz4", {"level": 17}, "level: expected an integer 1-16. Got 17"),
    ("pcodec", {"level": 13}, "level: expected an integer 0-12. Got 13"),
    ("lerc", {"compression": "lzma"}, "compression: expected one of none, deflate, zstd. Got 'lzma'"),
    ("xz", {"level": 10}, "level: expected an integer 0-9. Got 10"),
    ("pigz", {"level": 11}, "level: expected an integer 1-9. Got 11"),
    ("jpegxl", {"effort": 10}, "effort: expected an integer 1-9. Got 10"),
    ("hdf5", {"compression": "gzip"},
     "compression: expected one of bitshuffle-lz4, bitshuffle-zstd. Got 'gzip'"),
    ("hdf5", {"level": 3}, "level: only bitshuffle-zstd has a level; bitshuffle-lz4 has none"),
    ("blosc2", {"filter": "delta"},
     "filter: expected one of bitshuffle, shuffle, bytedelta, none. Got 'delta'"),
    ("blosc2", {"threads": 1.5}, "threads: expected an integer >= 1. Got 1.5"),
])
def test_invalid_parameters_say_what_is_valid(name, params, message):
    with pytest.raises(FormatError) as info:
        get_format(name, **params)
    assert message in str(info.value)


def test_format_from_dict_needs_a_format_key():
    with pytest.raises(FormatError, match="needs a 'format' key"):
        format_from_dict({"level": 1})
    with pytest.raises(FormatError, match="not valid JSON"):
        format_from_json("{level")


@pytest.mark.parametrize("name, params, label", [
    ("mrc", {}, "mrc"),
    ("mrcz", {"codec": "zstd", "level": 1}, "mrcz zstd-1"),
    ("mrcz", {"codec": "lz4", "level": 9, "filter": "none"}, "mrcz lz4-9 none"),
    ("mrcz", {"blocksize": 1 << 20}, "mrcz zstd-1 bs1024K"),
    ("mrc-uint4", {}, "mrc-uint4"),
    ("tiff", {}, "tiff lzw"),
    ("tiff", {"compression": "deflate"}, "tiff deflate-6"),
    ("tiff", {"compression": "deflate", "level": 9, "line_by_line": True}, "tiff deflate-9 lines"),
    ("bzip2", {}, "bzip2-9"),
    ("lbzip2", {}, "lbzip2-9"),
    ("pigz", {}, "pigz-1"),
    ("pxz", {}, "pxz-6"),
    ("zstd-cli", {"level": 1}, "zstd-cli-1"),
    ("lz4-cli", {}, "lz4-cli-1"),
    ("zstd", {}, "zstd-1 stream"),
    ("lz4", {"level": 9}, "lz4-9 stream"),
    ("pcodec", {}, "pcodec-8"),
    ("htj2k", {}, "htj2k"),
    ("jpegls", {}, "jpegls"),
    ("lerc", {"compression": "deflate"}, "lerc deflate"),
    ("jpeg2000", {}, "jpeg2000"),
    ("jpegxl", {}, "jpegxl e7"),
    ("hdf5", {}, "hdf5 bslz4"),
    ("hdf5", {"compression": "bitshuffle-zstd"}, "hdf5 bszstd-3"),
    ("blosc2", {"filter": "bytedelta"}, "blosc2 zstd-1 bytedelta"),
])
def test_labels_are_short_table_names(name, params, label):
    assert get_format(name, **params).label() == label


# --- `mrczbench formats list` -------------------------------------------------------------
def run_formats_command(argv, capsys):
    """The command as the CLI wires it (mrczbench.commands.formats.add_commands on a fresh parser)."""
    parser = argparse.ArgumentParser(prog="mrczbench")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code = args.func(args)
    return code, capsys.readouterr().out


def test_formats_list_json_shows_parameters_and_availability(capsys):
    code, out = run_formats_command(["formats", "list", "--json"], capsys)
    assert code == 0
    listed = {entry["name"]: entry for entry in json.loads(out)}
    assert set(CONTENDERS) <= set(listed)
    mrcz = listed["mrcz"]
    assert mrcz["parameters"]["codec"] == {
        "default": "zstd", "valid": "blosclz | lz4 | lz4hc | zlib | zstd"}
    assert mrcz["parameters"]["threads"]["default"] == 1
    assert mrcz["label"] == "mrcz zstd-1"
    for entry in listed.values():
        assert isinstance(entry["available"], bool)
        assert entry["available"] == (entry["unavailable_reason"] is None)
        assert "threads" in entry["parameters"]
    # pxz is not packaged in Debian 12; when absent, the reason names the missing tool
    if not listed["pxz"]["available"]:
        assert "pxz" in listed["pxz"]["unavailable_reason"]


def test_formats_list_text(capsys):
    code, out = run_formats_command(["formats", "list"], capsys)
    assert code == 0
    for name in CONTENDERS:
        assert f"\n{name} " in "\n" + out
    assert "bitshuffle | shuffle | none" in out
    assert "threads: ignored" in out  # the ones that ignore threads say so


def test_formats_without_subcommand_is_one_error_line(capsys):
    with pytest.raises(SystemExit) as exc:
        run_formats_command(["formats"], capsys)
    assert exc.value.code == 2
    assert "required: SUBCOMMAND" in capsys.readouterr().err


def test_the_registry_reads_entry_points_once_per_process(monkeypatch):
    """Building a suite's cases asks the registry about a thousand times; each read of the
    installed distributions' entry points took milliseconds (suites list: 20 s)."""
    import mrczbench.formats as formats
    from mrczbench.bench import suites
    calls = []

    def counting(**kwargs):
        calls.append(kwargs)
        return entry_points(**kwargs)

    from importlib.metadata import entry_points
    monkeypatch.setattr(formats, "entry_points", counting)
    monkeypatch.setattr(formats, "_REGISTRY", {}, raising=False)
    cases = suites.load_suite("dose-sweep").cases()
    assert len(cases) > 100 and format_names() and format_class("tiff")
    assert len(calls) == 1


def test_suites_list_paper_column_fits_its_longest_entry(capsys):
    from mrczbench.cli import main
    assert main(["suites", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines[0].index("source")
    assert all(line[start - 2:start] == "  " for line in lines), lines  # nothing runs into "source"


# --- plugins ------------------------------------------------------------------------------
PLUGIN_MODULE = '''
import dataclasses
from pathlib import Path
import numpy as np
from mrczbench.atomic import atomic_output
from mrczbench.formats.base import Format, FormatConfig, integer, param

@dataclasses.dataclass(frozen=True)
class RawConfig(FormatConfig):
    padding: int = param(0, "integer 0-16", integer(0, 16))

class RawFormat(Format):
    name = "facility-raw"
    description = "raw bytes (test plugin)"
    suffix = ".raw"
    Config = RawConfig
    has_memory_codec = True
    threads_note = "ignored"

    def encode(self, stack):
        return b"\\0" * self.config.padding + stack.tobytes()

    def decode(self, blob, shape, dtype):
        return np.frombuffer(blob[self.config.padding:], dtype=dtype).reshape(shape)
'''


def make_plugin(folder, entry_points):
    (folder / "facility_codec.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    info = folder / "facility_codec-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: facility-codec\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[mrczbench.formats]\n" + entry_points)


def test_plugin_registered_by_entry_point_is_found(tmp_path, monkeypatch):
    import numpy as np

    make_plugin(tmp_path, "facility-raw = facility_codec:RawFormat\n"
                          "mrc = facility_codec:RawFormat\n")  # may not shadow a built-in
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "facility-raw" in format_names()
    fmt = get_format("facility-raw", padding=3)
    assert type(fmt).__module__ == "facility_codec"
    stack = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    assert np.array_equal(fmt.decode(fmt.encode(stack), stack.shape, stack.dtype), stack)
    assert format_from_json(fmt.to_json()) == fmt
    with pytest.raises(FormatError, match=r"padding: expected an integer 0-16\. Got 17"):
        get_format("facility-raw", padding=17)
    assert format_class("mrc").__module__ == "mrczbench.formats.mrc"
    listed = {entry["name"]: entry for entry in describe_formats()}
    assert listed["facility-raw"]["builtin"] is False
    assert listed["facility-raw"]["parameters"]["padding"]["default"] == 0


def test_broken_plugin_is_listed_unavailable_not_fatal(tmp_path, monkeypatch):
    make_plugin(tmp_path, "facility-broken = facility_codec:NoSuchClass\n"
                          "facility-notaformat = facility_codec:RawConfig\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(FormatError, match="cannot be loaded"):
        get_format("facility-broken")
    with pytest.raises(FormatError, match="is not a mrczbench Format"):
        get_format("facility-notaformat")
    listed = {entry["name"]: entry for entry in describe_formats()}
    assert listed["facility-broken"]["available"] is False
    assert "cannot be loaded" in listed["facility-broken"]["unavailable_reason"]
    assert set(BUILTIN) <= set(listed)


def test_formats_list_through_the_mrczbench_command(capsys):
    from mrczbench.cli import main

    assert main(["formats", "list", "--json"]) == 0
    names = [entry["name"] for entry in json.loads(capsys.readouterr().out)]
    assert names[:len(BUILTIN)] == list(BUILTIN) and set(CONTENDERS) <= set(names)
