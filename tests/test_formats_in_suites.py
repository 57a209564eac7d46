"""The shipped suites and the contenders: the dose sweep's filter dimension expands into cases,
table1/detectors include the new coders, and every contender a suite names builds."""
from __future__ import annotations

import pytest

from mrczbench.bench import suites
from mrczbench.formats import format_from_dict

NEW = {"pcodec", "htj2k", "jpegls", "lerc", "zstd", "lz4"}
FILTERS = ("bitshuffle", "shuffle", "none")


@pytest.mark.parametrize("quick", [False, True])
def test_dose_sweep_sweeps_the_filter_of_mrcz_zstd_and_lz4_at_every_dose(quick):
    suite = suites.load_suite("dose-sweep", quick=quick)
    cases = suite.cases()
    doses = suite.sweep["dose"]
    for codec in ("zstd", "lz4"):
        for dose in doses:
            found = [c for c in cases if c.dataset["dose"] == dose
                     and c.format["format"] == "mrcz" and c.format["codec"] == codec
                     and c.format["level"] == 1
                     and not c.format.get("blocksize")]   # the 1 MiB (paper's) block: bitshuffle only
            # MRCZ's default filter is bitshuffle: a contender without `filter` is that one
            filters = sorted(c.format.get("filter", "bitshuffle") for c in found)
            assert filters == sorted(FILTERS), (codec, dose, filters)
            labels = {c.label for c in found}
            assert len(labels) == 3  # one line per filter in the ratio-vs-dose figure
            for case in found:  # the filter reaches the format that runs
                assert format_from_dict(case.format).config.filter == case.format.get(
                    "filter", "bitshuffle")


@pytest.mark.parametrize("name", ["dose-sweep", "table1", "detectors"])
def test_suites_include_the_new_contenders(name):
    if name not in suites.suite_paths():
        pytest.skip(f"suite {name} not shipped here")
    for quick in (False, True):
        suite = suites.load_suite(name, quick=quick)
        formats = {case.format["format"] for case in suite.cases()}
        assert NEW <= formats, (name, quick, NEW - formats)


@pytest.mark.parametrize("name", ["dose-sweep", "table1", "detectors"])
def test_every_contender_in_the_suite_builds_with_its_parameters(name):
    if name not in suites.suite_paths():
        pytest.skip(f"suite {name} not shipped here")
    for case in suites.load_suite(name).cases():
        fmt = format_from_dict(case.format)
        assert fmt.name == case.format["format"]


def test_command_line_tools_are_named_cli_in_table1():
    suite = suites.load_suite("table1")
    by_label = {c.label: c.format["format"] for c in suite.cases()}
    assert by_label["zstd-cli-1"] == "zstd-cli" and by_label["lz4-cli-1"] == "lz4-cli"
    assert by_label["zstd-1 stream"] == "zstd" and by_label["lz4-1 stream"] == "lz4"


def test_quick_profiles_stay_small():
    for name in ("dose-sweep", "table1", "detectors"):
        if name not in suites.suite_paths():
            continue
        suite = suites.load_suite(name, quick=True)
        for case in suite.cases():
            frames = case.dataset.get("frames")
            assert frames is None or frames <= 4, (name, case.case_id, frames)
