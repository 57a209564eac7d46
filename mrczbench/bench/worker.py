"""The worker process that runs cases, and the pipe between it and the main process.

The main process sends a Case; the worker answers with ("row", row) per sample, then
("done", None), or ("bug", traceback) when mrczbench's own harness raised (not the contender:
see measure.py), which stops the run. A worker that crashes or overruns the case timeout is
killed; the case gets an error row and a fresh worker takes the next case.

Each worker leads its own process group, and killing it kills the group: a command-line
compressor it started (xz -T2, ...) never outlives its case."""
from __future__ import annotations

import multiprocessing
import os
import signal
import time
import traceback
from typing import Any, Callable

from mrczbench.bench.measure import run_case
from mrczbench.bench.suites import Case


TIMED_OUT = "timed out after"


def timeout_message(limit: float) -> str:
    """The error of a case that overran the limit: names the option that raises it."""
    return (f"{TIMED_OUT} {limit:g} s (limit per case: --timeout {limit:g}; give a larger "
            f"--timeout SECONDS to let it finish)")


class HarnessError(RuntimeError):
    """A bug in mrczbench's harness (not a contender's failure): the run stops."""


class Worker:
    """A forked process in its own process group that runs cases sent through a pipe."""

    def __init__(self, settings: dict[str, Any]):
        context = multiprocessing.get_context("fork")
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child_conn, settings), daemon=True)
        self.process.start()
        child_conn.close()
        try:  # also set here: the group must exist before the worker can start a tool
            os.setpgid(self.process.pid, self.process.pid)
        except OSError:
            pass  # the worker already did it (or has exited)

    def kill(self) -> None:
        """Kill the worker and everything in its process group (tools it started)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(5)
        self.kill()  # a tool left running in the group (or a worker that did not stop)

    def run(self, case: Case, on_row: Callable[[dict[str, Any]], None] | None = None
            ) -> tuple[list[dict[str, Any]], str | None]:
        """Send one case; collect its rows until 'done' (failure None), a crash or the
        timeout (failure: the reason). Raises HarnessError when the harness itself failed."""
        self.conn.send(case)
        rows: list[dict[str, Any]] = []
        deadline = time.monotonic() + case.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return rows, timeout_message(case.timeout)
            try:
                ready = self.conn.poll(min(remaining, 0.5))
            except (EOFError, OSError):
                ready = True
            if not ready:
                if not self.process.is_alive():
                    return rows, self.death_reason()
                continue
            try:
                kind, payload = self.conn.recv()
            except (EOFError, OSError):
                self.process.join(1)
                return rows, self.death_reason()
            if kind == "row":
                rows.append(payload)
                if on_row:
                    on_row(payload)
            elif kind == "done":
                return rows, None
            elif kind == "bug":
                raise HarnessError(
                    f"internal error in mrczbench's benchmark harness (a bug, not a failure of "
                    f"the contender) while running case {case.case_id!r}; please report it. "
                    f"Worker traceback:\n{payload}")

    def death_reason(self) -> str:
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                return f"worker killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"worker killed by signal {-code}"
        return f"worker exited with status {code}"


def _worker_main(conn, settings: dict[str, Any]) -> None:
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    # Ctrl-C is the main process's to handle; it kills this group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    # A contender that crashes the worker is reported as an error row; a fault handler
    # inherited from the parent (pytest enables one) would only add a traceback dump.
    import faulthandler
    faulthandler.disable()
    loaded: dict[str, Any] = {}  # the last dataset, reused by the next case on the same data
    while True:
        try:
            case = conn.recv()
        except (EOFError, OSError):
            return
        if case is None:
            return
        try:
            run_case(case, settings, lambda row: conn.send(("row", row)), loaded)
        except Exception:
            conn.send(("bug", traceback.format_exc()))
            continue
        conn.send(("done", None))


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker if the main process dies (e.g. SIGKILL), so no
    orphan keeps writing into the scratch folder."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)
