"""Run-time settings of the prediction and training paths: how they use this machine, not
what they compute.

They are not saved with models and may be changed at any time, from the public name
``dc_invariant.models.RUNTIME``::

    from dc_invariant.models import RUNTIME
    RUNTIME.inference_threads = 2       # a quiet machine with cores to spare
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch

from dc_invariant.validation import check_choice, check_int

__all__ = [
    "RUNTIME",
    "Runtime",
    "eigh",
    "inference_threads",
    "one_torch_thread_each",
    "pin_one_torch_thread",
    "runtime_settings",
    "training_threads",
]


@dataclass
class Runtime:
    """Settings every model reads when it predicts or trains.

    Attributes
    ----------
    inference_threads : int, default=1
        Torch threads for predictions and forces, or 0 to keep torch's own setting. One
        by default: a forward pass is many small operations, each ending in a barrier
        across threads, and on a shared machine a barrier waits a scheduler tick
        whenever another core is busy (measured: 16x slower predictions with two threads
        while other work ran; `benchmarks/inference.py`).
    training_threads : int, default=1
        Torch threads while an `InvariantModel` (the tutorial networks, `SchNetModel`)
        trains on the CPU, or 0 to keep torch's own setting. One by default, for the same
        reason and because a thread count that follows the machine's load would make the
        same seed train to different rounding: `benchmarks/threads.py` measures SchNet's
        epoch with each count on a quiet machine and beside a busy process.
    eigen_threads : int, default=1
        Torch threads for the symmetric eigendecompositions of `KernelModel`'s fit (its
        width search and its projection), or 0 to keep torch's own setting. One by default:
        LAPACK's reduction to tridiagonal form ends each of its n steps in a barrier, and
        beside one busy process a 2,000 x 2,000 ``eigh`` took 3.9 s on two threads against
        1.2 s on one (32 s when that process ran at a higher priority; 1.8x faster on two
        on a quiet machine). GEMMs and Cholesky factorisations barely notice the load and
        keep torch's threads (`benchmarks/threads.py`).
    schnet_keep_bytes : int, default=64 MiB
        Largest pair tensor a `SchNetModel` keeps between prediction batches (a 1,024-atom
        QM9 batch needs about 11 MB); a larger one, for one big system, is freed after its
        batch.
    elementwise : {"auto", "torch", "numpy"}, default="auto"
        Kernels of the in-place activations and exponentials at inference: chosen by
        timing on this CPU (`dc_invariant.models.elementwise`), or forced.

    Examples
    --------
    >>> from dc_invariant.models import RUNTIME
    >>> RUNTIME.inference_threads, RUNTIME.training_threads, RUNTIME.eigen_threads
    (1, 1, 1)
    >>> RUNTIME.inference_threads = -1
    Traceback (most recent call last):
    ...
    ValueError: inference_threads == -1, must be >= 0.
    """

    inference_threads: int = 1
    training_threads: int = 1
    eigen_threads: int = 1
    schnet_keep_bytes: int = 64 << 20
    elementwise: str = "auto"

    def __setattr__(self, name: str, value: Any) -> None:
        # Checked on every change: a bad value would otherwise surface deep in a prediction.
        if name == "elementwise":
            value = check_choice(value, name, ("auto", "torch", "numpy"))
        else:
            value = check_int(value, name, min_val=0)
        super().__setattr__(name, value)


#: The settings in force (one per process).
RUNTIME = Runtime()


@contextlib.contextmanager
def runtime_settings(settings: dict[str, Any]) -> Iterator[None]:
    """`RUNTIME` set to ``settings`` (``dataclasses.asdict`` of another process's) inside
    the context, restored after."""
    before = asdict(RUNTIME)
    for name, value in settings.items():
        setattr(RUNTIME, name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            setattr(RUNTIME, name, value)


@contextlib.contextmanager
def inference_threads() -> Iterator[None]:
    """Run torch on ``RUNTIME.inference_threads`` threads inside this context (every
    prediction does; see `Runtime` for why one is the default)."""
    with _threads(RUNTIME.inference_threads):
        yield


@contextlib.contextmanager
def training_threads() -> Iterator[None]:
    """Run torch on ``RUNTIME.training_threads`` threads inside this context (every
    `InvariantModel` fit does)."""
    with _threads(RUNTIME.training_threads):
        yield


def eigh(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.linalg.eigh(matrix)`` on ``RUNTIME.eigen_threads`` threads (see `Runtime`)."""
    with _threads(RUNTIME.eigen_threads):
        return torch.linalg.eigh(matrix)


class _Hold:
    """Open `one_torch_thread_each` contexts, and the thread count to restore after them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.saved = 1


_HOLD = _Hold()


@contextlib.contextmanager
def one_torch_thread_each() -> Iterator[None]:
    """Torch on one thread inside the context, whatever `RUNTIME` asks, for Python threads
    that predict side by side (the audit's workers for dc_invariant's own models).

    Torch's thread count is one setting for the whole process: threads that each set and
    restore it around their own predictions would undo each other's and leave two torch
    threads per Python thread, the oversubscription `RUNTIME` avoids. So it is set once
    here and the per-call contexts stand aside until the last such context closes. Each
    worker thread must also call `pin_one_torch_thread` first.
    """
    with _HOLD.lock:
        if _HOLD.count == 0:
            _HOLD.saved = torch.get_num_threads()
            torch.set_num_threads(1)
        _HOLD.count += 1
    try:
        yield
    finally:
        with _HOLD.lock:
            _HOLD.count -= 1
            if _HOLD.count == 0:
                torch.set_num_threads(_HOLD.saved)


def pin_one_torch_thread() -> None:
    """Run torch on one thread in the calling thread: the first thing each worker thread of
    `one_torch_thread_each` does.

    OpenMP keeps a thread count per thread, and a new thread starts from the machine's;
    torch sets it only at the thread's first parallel operation. Before that, in a worker's
    first task, torch reported one thread while MKL ran a (36 x 840) @ (840 x 16) product
    on two and rounded it differently from the serial audit.
    """
    torch.set_num_threads(1)


@contextlib.contextmanager
def _threads(wanted: int) -> Iterator[None]:
    """Torch on ``wanted`` threads (0: unchanged) inside the context, restored after."""
    if _HOLD.count:
        yield
        return
    saved = torch.get_num_threads()
    change = wanted > 0 and saved != wanted
    if change:
        torch.set_num_threads(wanted)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(saved)
