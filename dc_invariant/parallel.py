"""Run independent chunks of work serially, on local threads or processes (joblib), or on a
Dask cluster.

Featurization and the audit split their input into chunks whose results do not depend on
where they run. `map_ordered` yields the results in input order while keeping only a bounded
number of chunks in flight, so the caller can stream them to disk. Scheduling, retries after
a lost worker and data transfer are Dask's or joblib's: nothing here talks to sockets.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional, TypeVar

from dc_invariant.validation import check_n_jobs

__all__ = ["check_workers", "connected", "dask_client", "map_ordered"]

Result = TypeVar("Result")


def check_workers(n_jobs: int, scheduler: Any) -> None:
    """Validate the ``n_jobs`` / ``scheduler`` pair every parallel entry point takes."""
    check_n_jobs(n_jobs)
    if scheduler is not None and n_jobs != 1:
        raise ValueError("pass either n_jobs (local processes) or scheduler (Dask), not both")
    if (
        scheduler is not None
        and not isinstance(scheduler, str)
        and not hasattr(scheduler, "submit")
    ):
        raise TypeError(
            "scheduler must be a dask.distributed.Client or a scheduler address such as "
            f"'tcp://10.0.0.5:8786', got {type(scheduler).__name__}"
        )


def dask_client(scheduler: Any) -> Any:
    """The Dask client for ``scheduler`` (a Client, returned as is, or an address)."""
    if not isinstance(scheduler, str):
        return scheduler
    try:
        from distributed import Client
    except ImportError as error:
        raise ImportError(
            "running on a Dask cluster needs dask.distributed: pip install 'dc_invariant[dask]'"
        ) from error
    try:
        return Client(scheduler, timeout=10)
    except OSError as error:
        raise ValueError(f"cannot reach the Dask scheduler at {scheduler!r}: {error}") from error


@contextlib.contextmanager
def connected(scheduler: Any) -> Iterator[Any]:
    """`dask_client` as a context: a client opened here from an address is closed on exit.

    A client passed in is the caller's and stays open; None gives None.
    """
    client = None if scheduler is None else dask_client(scheduler)
    try:
        yield client
    finally:
        if isinstance(scheduler, str):
            client.close()


def map_ordered(
    function: Callable[..., Result],
    tasks: Iterable[tuple],
    *,
    n_jobs: int = 1,
    scheduler: Any = None,
    in_flight: Optional[int] = None,
    threads: bool = False,
    initializer: Optional[Callable[[], None]] = None,
) -> Iterator[Result]:
    """``function(*task)`` for every task, yielded in task order.

    Parameters
    ----------
    function : callable
        A module-level function (it is pickled to the workers).
    tasks : iterable of tuple
        Positional arguments of each call; consumed lazily.
    n_jobs : int, default=1
        Local worker processes (joblib's loky backend); 1 runs in this process, -1 uses
        every core (joblib's convention).
    scheduler : dask.distributed.Client or str, optional
        Run on this Dask cluster instead. A task whose worker dies is run again by Dask.
    in_flight : int, optional
        Tasks submitted but not yet yielded (default: twice the workers), which bounds the
        memory held by results waiting for an earlier task.
    threads : bool, default=False
        Run the ``n_jobs`` workers as threads of this process: for functions that spend
        their time in code that releases the GIL (NumPy, torch) and are safe to run side by
        side. Nothing is copied or started, and the tasks need not be picklable.
    initializer : callable, optional
        Called once in each worker thread before its first task (with ``threads``).

    Examples
    --------
    >>> list(map_ordered(pow, [(2, 3), (3, 2)]))
    [8, 9]
    """
    check_workers(n_jobs, scheduler)
    if scheduler is not None:
        with connected(scheduler) as client:
            yield from _dask_ordered(function, tasks, client, in_flight)
    elif n_jobs == 1:
        for task in tasks:
            yield function(*task)
    elif threads:
        yield from _threads_ordered(function, tasks, n_jobs, in_flight, initializer)
    else:
        from joblib import Parallel, delayed

        parallel = Parallel(
            n_jobs=n_jobs,
            backend="loky",
            return_as="generator",
            pre_dispatch=str(in_flight) if in_flight else "2*n_jobs",
        )
        yield from parallel(delayed(function)(*task) for task in tasks)


def _threads_ordered(
    function: Callable[..., Result],
    tasks: Iterable[tuple],
    n_jobs: int,
    in_flight: Optional[int],
    initializer: Optional[Callable[[], None]],
) -> Iterator[Result]:
    from joblib import effective_n_jobs

    workers = effective_n_jobs(n_jobs)
    with ThreadPoolExecutor(workers, initializer=initializer) as pool:
        yield from _windowed(
            lambda *task: pool.submit(function, *task), tasks, in_flight or 2 * workers
        )


def _dask_ordered(
    function: Callable[..., Result], tasks: Iterable[tuple], client: Any, in_flight: Optional[int]
) -> Iterator[Result]:
    workers = max(1, sum(client.nthreads().values()))

    def submit(*task: Any) -> Any:
        # pure=False: every task is run even if its arguments hash like an earlier one's.
        return client.submit(function, *task, pure=False)

    yield from _windowed(submit, tasks, in_flight or 2 * workers)


def _windowed(submit: Callable[..., Any], tasks: Iterable[tuple], window: int) -> Iterator[Any]:
    """The results of ``submit(*task)`` futures in task order, with at most ``window``
    submitted and not yet yielded; a failure (or a consumer that stops early) cancels the
    futures still waiting."""
    pending: deque = deque()
    try:
        for task in tasks:
            pending.append(submit(*task))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
