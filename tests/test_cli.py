"""mrczbench.cli: bad command-line values give one error line and exit 2, for every command."""

import argparse

import pytest

from mrczbench.cli import Parser, build_parser, main

from conftest import run_cli


def parsers(parser):
    """The parser and every sub-parser below it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from parsers(child)


def test_every_sub_parser_uses_the_one_line_error():
    found = list(parsers(build_parser()))
    assert len(found) > 10
    assert all(isinstance(parser, Parser) for parser in found), \
        [p.prog for p in found if not isinstance(p, Parser)]


BAD = [
    (["compress", "a.mrc", "b.mrcz", "--level", "0"], "mrczbench compress", "--level"),
    (["compress", "a.mrc", "b.mrcz", "--codec", "foo"], "mrczbench compress", "--codec"),
    (["compress", "a.mrc", "b.mrcz", "--blocksize", "abc"], "mrczbench compress", "--blocksize"),
    (["compress", "a.mrc", "b.mrcz", "--blocksize", "100"], "mrczbench compress", "1024"),
    (["compress", "a.mrc", "b.mrcz", "--threads", "-1"], "mrczbench compress", "--threads"),
    (["run", "--eviction", "foo"], "mrczbench run", "--eviction"),
    (["compare", "a.jsonl", "b.jsonl", "--factor", "abc"], "mrczbench compare", "--factor"),
    (["formats", "show"], "mrczbench formats", "show"),
    (["compress"], "mrczbench compress", "required"),
    (["bogus"], "mrczbench", "bogus"),
]


@pytest.mark.parametrize("argv,prog,word", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_values_are_one_line_exit_2(argv, prog, word, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    line = captured.err.rstrip("\n")
    assert line.startswith(f"{prog}: error: ") and word in line
    assert line.endswith(f"(see '{prog} --help')")
    assert "usage:" not in line


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: mrczbench" in capsys.readouterr().out


def test_one_line_in_a_subprocess():
    done = run_cli("compress", "a.mrc", "b.mrcz", "--level", "0")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("mrczbench compress: error: argument --level")


def test_argtypes_validators_name_the_valid_values():
    from mrczbench import argtypes
    assert argtypes.positive_int("3") == 3 and argtypes.fraction("1") == 1.0
    assert argtypes.fraction_below_one("0") == 0.0
    assert argtypes.names_from(("a", "b"), "reader")(" A,b ") == ("a", "b")
    for check, text, message in [
            (argtypes.positive_int, "0", "expected an integer >= 1. Got '0'"),
            (argtypes.positive_number, "inf", "expected a finite number > 0. Got 'inf'"),
            (argtypes.fraction, "1.5", "expected a fraction in (0, 1]. Got '1.5'"),
            (argtypes.fraction_below_one, "1", "expected a fraction in [0, 1). Got '1'"),
            (argtypes.non_negative_number, "-1", "expected a number >= 0. Got '-1'"),
            (argtypes.names_from(("a", "b"), "reader"), "a,c", "unknown reader 'c'; valid: a, b")]:
        with pytest.raises(argparse.ArgumentTypeError) as info:
            check(text)
        assert str(info.value) == message
