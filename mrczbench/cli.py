"""The `mrczbench` command line.

Every command lives in mrczbench.commands, one module per command or group of subcommands:
a module in COMMAND_MODULES defines `add_commands(subparsers)`, which adds its sub-parsers
and sets `func(args) -> int`. Modules keep heavy imports (pandas, matplotlib) inside their
command functions so that `mrczbench --help` stays fast.

User errors (MrczbenchError, a ValueError) print one line on stderr and exit 2, and so do
bad command-line values (`Parser.error`, used by every sub-parser) and the OSErrors of the
user's environment (missing file, permission denied, read-only or full disk, a file where a
folder is expected: `_os_error_line`); anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from mrczbench.version import __version__
from mrczbench.errors import MrczbenchError, one_line_warnings

COMMAND_MODULES = tuple(f"mrczbench.commands.{name}" for name in (
    "files",      # compress, decompress, info
    "datasets",   # datasets list|show|generate|cache|inspect
    "formats",    # formats list
    "suites",     # suites list|show
    "run",        # run
    "report",     # report
    "compare",    # compare
    "recommend",  # recommend
    "convert",    # convert, verify
    "gain",       # estimate-gain
    "fuzz",       # fuzz
))


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, exit code 2:
    `mrczbench <command>: error: <message> (see 'mrczbench <command> --help')`.

    add_subparsers creates sub-parsers of type(parent) unless told otherwise, so every
    command and subcommand parser is a Parser too (tests/test_cli.py checks it)."""

    def error(self, message: str):
        message = " ".join(str(message).split())  # argparse messages are meant to be one line
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    # bad arguments: one error line (Parser.error) and exit 2, for every subcommand
    parser = Parser(
        prog="mrczbench",
        description="Benchmark and evaluate compressed cryo-EM movie storage "
        "(MRCZ, TIFF LZW/deflate, 4-bit MRC, bzip2, ...).",
        epilog="Start with: mrczbench run --suite dose-sweep --quick",
    )
    parser.add_argument("--version", action="version", version=f"mrczbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    import warnings
    from mrczbench.atomic import forget_inputs
    shown = warnings.showwarning
    one_line_warnings()
    try:
        return int(args.func(args) or 0)
    except MrczbenchError as exc:
        print(f"mrczbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mrczbench {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except RuntimeError as exc:
        # Python < 3.13: Path.resolve() raises RuntimeError("Symlink loop from '...'"), where
        # open() and 3.13 raise OSError(ELOOP)
        if not str(exc).startswith("Symlink loop from "):
            raise
        where = str(exc)[len("Symlink loop from "):].strip("'\"")
        print(f"mrczbench {args.command}: error: {where}: Too many levels of symbolic links "
              f"(a symbolic link loop)", file=sys.stderr)
        return 2
    except OSError as exc:
        message = _os_error_line(exc)
        if message is None:
            raise
        print(f"mrczbench {args.command}: error: {message}", file=sys.stderr)
        return 2
    finally:
        forget_inputs()
        warnings.showwarning = shown


def _os_error_line(exc: OSError) -> str | None:
    """One line for an OSError the user's environment causes (a missing, unwritable, full or
    read-only place, a file where a folder was expected); None for anything else (a bug)."""
    import errno

    from mrczbench.atomic import WRITE_ERRNOS

    where = exc.filename if exc.filename is not None else "output"
    if isinstance(exc, FileExistsError):
        return f"{where}: already exists and is not a folder; give a new name or a folder"
    if isinstance(exc, NotADirectoryError):
        return f"{where}: a part of this path is a file, not a folder"
    if isinstance(exc, (FileNotFoundError, IsADirectoryError)):
        return f"{exc.strerror}: {where}"
    if exc.errno in WRITE_ERRNOS:
        return f"{where}: {WRITE_ERRNOS[exc.errno]}"
    if exc.errno in (errno.ELOOP, errno.EISDIR):
        return f"{where}: {exc.strerror}"
    return None
