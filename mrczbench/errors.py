"""Error types. Everything a user can cause is a MrczbenchError (a ValueError): the CLI
prints its message on one line and exits 2. Anything else is a bug and keeps its traceback."""


class MrczbenchError(ValueError):
    """A problem with the user's input, files, parameters or environment."""


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
