"""How the benchmarks measure: wall time, peak memory, the machine's state, fresh processes.

* `best_time`: the shortest of several wall times of one call, and that call's result.
* `max_rss_mib`: the process's peak resident memory so far; `PeakMemory`: the peak within
  a ``with`` block, sampled, for code that cannot run in a process of its own.
* `in_fresh_process` with a `process_context`: one call in a new process, so that its peak
  memory is its own and one failure (even the kernel's out-of-memory killer) is one result.
* `load_average`, `usable_cpus` and `cpu_model`: what else was running, on how many cores
  of which CPU (figures are only comparable on one kind of CPU).

Imported by the benchmark scripts; not a benchmark itself. Only the standard library is
imported at the top, so a measured child process can import this cheaply.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Optional


class Best(NamedTuple):
    """What `best_time` measured."""

    seconds: float  # the shortest wall time
    result: Any  # what the fastest call returned
    runs: int


def best_time(
    run: Callable[[], Any],
    min_runs: int = 1,
    max_runs: Optional[int] = None,
    budget_s: float = 0.0,
) -> Best:
    """Shortest of ``min_runs`` to ``max_runs`` wall times of ``run``.

    Calls go on after ``min_runs`` while their total time stays under ``budget_s`` and fewer
    than ``max_runs`` were made: fast cases get more tries against the noise of a shared
    machine, slow ones no more than ``min_runs``.

    Parameters
    ----------
    run : callable
        Called with no arguments.
    min_runs : int, default=1
    max_runs : int, optional
        Default ``min_runs``: exactly ``min_runs`` calls.
    budget_s : float, default=0.0
        Seconds (s).

    Returns
    -------
    Best
        The shortest time (s), the fastest call's result and the number of calls.
    """
    limit = min_runs if max_runs is None else max_runs
    best_seconds, best_result = float("inf"), None
    runs, total = 0, 0.0
    while runs < min_runs or (runs < limit and total < budget_s):
        start = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - start
        runs, total = runs + 1, total + seconds
        if seconds < best_seconds:
            best_seconds, best_result = seconds, result
    return Best(best_seconds, best_result, runs)


def max_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB.

    On Linux the kernel's high-water mark of this process's own memory (``VmHWM``): its
    ``ru_maxrss`` carries over the parent's resident size at the fork, even across
    ``exec``, so a command started by a 2.4 GB process reported at least 2.4 GB whatever it
    used itself.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class PeakMemory:
    """Peak resident memory of this process above its level at entry (sampled, GiB).

    A thread samples the RSS every 50 ms, so a peak shorter than that may be missed; use
    `max_rss_mib` in a fresh process where the call can have one to itself.
    """

    def __enter__(self) -> PeakMemory:
        import psutil  # only the scripts that sample memory need it

        self._process = psutil.Process()
        self.start = self._process.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.gib = (self.peak - self.start) / 2**30


def load_average() -> str:
    """The 1, 5 and 15-minute load averages as "1.00/0.80/0.50" ("n/a" where unknown)."""
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def usable_cpus() -> int:
    """Cores this process may run on."""
    # A container may be allowed fewer cores than the machine has; speed-ups depend on those.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _child(connection: Any, function: Callable[..., Any], args: tuple) -> None:
    try:
        connection.send(("ok", function(*args)))
    except Exception as error:  # noqa: BLE001 - any failure becomes a table cell in the parent
        connection.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        connection.close()


def in_fresh_process(context: Any, function: Callable[..., Any], *args: Any) -> tuple[Any, str]:
    """``function(*args)`` in a new process; returns ``(result, "")`` or ``(None, why not)``.

    ``function`` must be importable by name (a module-level function) and its result
    picklable; ``context`` comes from `process_context`.
    """
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(send, function, args))
    process.start()
    send.close()
    try:
        status, payload = receive.recv()
    except EOFError:  # killed, e.g. by the kernel's out-of-memory killer
        process.join()
        return None, f"failed (process exit code {process.exitcode})"
    process.join()
    return (payload, "") if status == "ok" else (None, f"failed ({payload})")


def process_context(preload: Sequence[str]) -> Any:
    """A start method whose processes begin with ``preload`` imported but nothing run.

    A forkserver imports the modules once; every process then forks from it in milliseconds
    instead of spending seconds on importing torch and DeepChem as a spawned one would.
    Where there is no forkserver, processes are spawned.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    return context


def cpu_model() -> str:
    """The CPU's model name: /proc/cpuinfo's, where ``platform.processor()`` often says
    only "x86_64" on Linux."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
