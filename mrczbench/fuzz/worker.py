"""The fuzz worker: a child process that reads one input per request line and answers with
one JSON line, so that a crash, a hang or a memory blow-up costs the child, never the fuzzer.

Started as `python -m mrczbench.fuzz.worker MEMORY_MIB`: it imports the readers' libraries,
then limits its address space (RLIMIT_AS) to what it uses plus MEMORY_MIB, so an allocation
bomb fails (MemoryError) or kills this process instead of the machine.
Request: {"target": "module:function" or "file.py:function", "documented": "module.Error",
"path": ...}. Answer: {"status": "value", "shape", "dtype", "digest", "bytes", "swapped" (the
digest of the bytes with each item's byte order reversed)} or
{"status": "error", "type", "message", "lines", "documented", "memory"}.
"""
from __future__ import annotations

import errno
import hashlib
import importlib
import importlib.util
import json
import os
import resource
import sys
import warnings

import numpy as np

_CACHE: dict[str, object] = {}


def _load(spec: str):
    """A function from 'module:name' or '/path/file.py:name', or a class from 'module.Name'."""
    if spec in _CACHE:
        return _CACHE[spec]
    if ":" in spec:
        where, name = spec.rsplit(":", 1)
        if where.endswith(".py"):
            module_spec = importlib.util.spec_from_file_location(f"_fuzz_{len(_CACHE)}", where)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    else:
        where, name = spec.rsplit(".", 1)
        module = importlib.import_module(where)
    _CACHE[spec] = getattr(module, name)
    return _CACHE[spec]


def describe(value) -> dict:
    """Digest of a read result: arrays by shape, dtype and bytes; anything else by repr."""
    arrays = value if isinstance(value, list) and all(isinstance(v, np.ndarray) for v in value) \
        else [value] if isinstance(value, np.ndarray) else None
    if arrays is None:
        return {"status": "value", "shape": None, "dtype": None,
                "digest": hashlib.sha256(repr(value).encode()).hexdigest(), "bytes": None}
    full, raw, swapped = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    multibyte = any(a.dtype.itemsize > 1 for a in arrays)  # else swapping changes nothing
    for array in arrays:
        array = np.ascontiguousarray(array)
        data = array.tobytes()
        full.update(f"{array.shape}{array.dtype.str}".encode())
        full.update(data)
        raw.update(data)
        if multibyte:
            swapped.update(array.byteswap().tobytes())
    return {"status": "value", "shape": [list(a.shape) for a in arrays],
            "dtype": [a.dtype.str for a in arrays], "digest": full.hexdigest(),
            "bytes": raw.hexdigest(), "swapped": swapped.hexdigest() if multibyte else None}


def _is_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, OSError) and exc.errno == errno.ENOMEM:
        return True
    text = str(exc).lower()
    return "cannot allocate memory" in text or "out of memory" in text or "memoryerror" in text


def handle(request: dict) -> dict:
    target = _load(request["target"])
    documented = _load(request["documented"])
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = target(request["path"])
    except BaseException as exc:  # noqa: BLE001 - every failure is reported, none escapes
        if isinstance(exc, KeyboardInterrupt):
            raise
        message = str(exc)
        return {"status": "error", "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                "message": message.splitlines()[0][:500] if message else "",
                "lines": len(message.splitlines()), "documented": isinstance(exc, documented),
                "memory": _is_memory(exc)}
    return {**describe(value), "warnings": [str(w.message).splitlines()[0][:200] for w in caught]}


def limit_memory(headroom_mib: int) -> int:
    """Limit the address space to the current size plus `headroom_mib`; return the limit."""
    with open("/proc/self/status") as status:
        vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    limit = vm + headroom_mib * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    return limit


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)  # readers that print must not corrupt the answers
    if hasattr(os, "sched_setaffinity"):
        # two CPUs at most: readers still run their threaded paths, but the thread count (and
        # with it the address space of thread stacks) does not grow with the machine
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
    from mrczbench.fuzz.targets import preload
    preload()
    limit = limit_memory(int(argv[0]) if argv else 512)
    channel.write(json.dumps({"ready": True, "limit": limit}) + "\n")
    for line in sys.stdin:
        channel.write(json.dumps(handle(json.loads(line))) + "\n")


if __name__ == "__main__":
    main()
