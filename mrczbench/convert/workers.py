"""Local worker processes for `convert` that die with their parent (and the Dask client for --scheduler).

A worker outliving a killed `convert` (kill -9, OOM killer) would finish its movie and rename
it into place with no manifest row. On Linux each worker asks the kernel for SIGKILL when its
parent dies (prctl PR_SET_PDEATHSIG, the same end as `run`'s process groups: nothing outlives
the command), and exits at once if the parent is already gone. SIGTERM inside a worker
unwinds it (the temporary output is removed by atomic.py); SIGINT (Ctrl-C reaches the whole
foreground group) is left to the main process, which decides whether to finish or abandon."""
from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from mrczbench.errors import MrczbenchError, one_line_warnings

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


class Abandoned(SystemExit):
    """Raised in a worker by SIGTERM: unwinds the movie in flight (its temporary file is
    removed); a SystemExit, so an idle worker exits quietly."""


def _unwind(signum, frame):
    raise Abandoned(128 + signum)


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Abandoned as exc:  # the pool would report it and take the next movie: exit instead
        os._exit(exc.code)


def _init(parent: int) -> None:
    _die_with_parent(parent)
    one_line_warnings()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _unwind)


class Pool(ProcessPoolExecutor):
    """`jobs` spawned worker processes that die with this one. Create it (and submit to it)
    from the main thread: PR_SET_PDEATHSIG fires when the thread that started a worker ends."""

    def __init__(self, jobs: int):
        super().__init__(jobs, mp_context=multiprocessing.get_context("spawn"),
                         initializer=_init, initargs=(os.getpid(),))

    def start(self) -> None:
        """Start the workers now (they start on first use otherwise): a follower's first
        movie should not wait for `jobs` Python processes to import numpy."""
        for _ in range(self._max_workers):
            super().submit(os.getpid)

    def submit(self, fn, /, *args, **kwargs):
        return super().submit(_call, fn, *args, **kwargs)

    def abandon(self, grace: float = 10.0) -> None:
        """Abandon the movies in flight: SIGTERM each worker (it removes its temporary file
        and exits), SIGKILL one that has not exited after `grace` seconds."""
        processes = list((self._processes or {}).values())
        for process in processes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(process.pid, signal.SIGTERM)
        for process in processes:
            process.join(grace)
            if process.is_alive():
                process.kill()
        self.shutdown(wait=True, cancel_futures=True)


def dask_client(scheduler: str):
    """A Dask client for --scheduler (an address or a scheduler JSON file); one line if not."""
    from distributed import Client
    try:
        return Client(scheduler_file=scheduler) if Path(scheduler).is_file() else Client(scheduler, timeout=30)
    except (OSError, TimeoutError, ValueError) as exc:
        raise MrczbenchError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
