"""Error types. Everything a user can cause is a MrczbenchError (a ValueError): the CLI
prints its message on one line and exits 2. Anything else is a bug and keeps its traceback."""


class MrczbenchError(ValueError):
    """A problem with the user's input, files, parameters or environment.

    Its message is always one line: control characters (a newline or vertical tab inside a
    user's file name, say) are shown escaped, so no input can break the one-line promise."""

    def __str__(self) -> str:
        return "".join(_ONE_LINE.get(c, c) for c in super().__str__())


# every character str.splitlines() breaks on, and the other C0 controls, as escapes
_ONE_LINE = {chr(c): repr(chr(c))[1:-1] for c in (*range(32), 0x7f, 0x85, 0x2028, 0x2029)
             if chr(c) != " "}


class MRCZError(MrczbenchError):
    """A corrupt, truncated or unsupported MRC/MRCZ file, or bad codec parameters."""


class FormatError(MrczbenchError):
    """Unknown format name, bad format parameter, or a format that cannot run here."""


class DatasetError(MrczbenchError):
    """Unknown dataset, bad dataset spec, or a movie file that cannot be read."""


class SuiteError(MrczbenchError):
    """Unknown suite or an invalid suite file."""


class ResultsError(MrczbenchError):
    """Missing or unreadable result files."""


def one_line_warnings() -> None:
    """Python warnings (a library's, or mrczbench's own UserWarnings) as one line on stderr,
    `mrczbench: warning: <message>`, without the file, line number and source line."""
    import sys
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        print(f"mrczbench: warning: {text}", file=file or sys.stderr, flush=True)

    warnings.showwarning = show
