"""Optional libraries: which `pip install mrczbench[<extra>]` brings each, and the one-line
reason a contender gives when its library is missing (`Format.unavailable_reason`, skipped
cases). The extras are declared in pyproject.toml; `[all]` installs every one."""
from __future__ import annotations

import importlib

# importable module -> the extra (pyproject.toml [project.optional-dependencies]) that installs it
EXTRA_OF = {
    "h5py": "hdf5",
    "hdf5plugin": "hdf5",
    "orjson": "orjson",
    "pcodec": "pcodec",
    "distributed": "cluster",
}


def install_hint(module: str) -> str:
    """`pip install mrczbench[hdf5]` for a module of an extra, else `pip install <module>`."""
    top = module.partition(".")[0]
    return f"pip install mrczbench[{EXTRA_OF[top]}]" if top in EXTRA_OF else f"pip install {top}"


def missing_reason(*modules: str) -> str | None:
    """None when every module imports, else why the first one does not and how to get it.
    Only ImportError is caught: a library that is present but broken in another way is a bug
    worth its traceback."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            if exc.name == module or exc.name is None and module in str(exc):
                return f"python package {module} is not installed: {install_hint(module)}"
            return (f"python package {module} cannot be imported ({type(exc).__name__}: {exc}); "
                    f"reinstall it: {install_hint(module)}")
    return None
