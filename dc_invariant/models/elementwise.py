"""In-place element-wise kernels of the inference paths, chosen by measurement on this CPU.

Torch's and NumPy's element-wise kernels differ by an order of magnitude from one CPU kind
to another: per million float32 values, ``torch.tanh`` takes about as long as ``np.tanh``
on an Intel Xeon and 13x longer on an AMD EPYC. So where the inference paths apply an
activation or an exponential in place (no gradients, tensors on the CPU: the tutorial
networks' tanh, SchNet's Gaussian expansion and softplus), the kernel is
picked once per process by timing both on a small buffer: NumPy's ufunc, run on the
tensor's own memory (no copy), only when it is clearly faster (`MARGIN`) and agrees with
torch's to a few units in the last place. Either way every element goes through the same
kernel, so the kernel choice adds no dependence of a prediction on its batch mates.
``RUNTIME.elementwise`` overrides the timing (``"torch"`` always, ``"numpy"`` wherever
NumPy's kernel is exact here).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Optional

import numpy as np
import torch

from dc_invariant.models.runtime import RUNTIME, inference_threads

__all__ = [
    "MARGIN",
    "KERNELS",
    "adopted",
    "choice",
    "exp_",
    "resolved",
    "softplus_",
    "tanh_",
    "timings",
]

#: NumPy is chosen only when it takes less than 1/MARGIN of torch's time.
MARGIN = 2.0

# Elements of the timed buffer (cache-resident, as the inference pieces are), and timings.
_SIZE = 1 << 16
_REPEATS = 5
# Largest difference from torch's result, in units in the last place, that counts as exact.
_ULPS = 4


def _torch_softplus(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.softplus(x, out=x)


def _numpy_softplus(values: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    # log(1 + e^x) without overflow. Torch returns x itself above x = 20; this returns
    # x + e^-x there, which float32 rounds to x and float64 does not: the exactness check
    # (its sample reaches 30) keeps torch's kernel for float64.
    return np.logaddexp(values, 0.0, out=out)


#: Candidate kernels of each operation: name -> (torch in place, NumPy ufunc or a function
#: called like one: ``f(values)`` and ``f(values, out=values)``).
KERNELS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], Callable[..., np.ndarray]]] = {
    "tanh": (torch.Tensor.tanh_, np.tanh),
    "exp": (torch.Tensor.exp_, np.exp),
    "softplus": (_torch_softplus, _numpy_softplus),
}

_CHOSEN: dict[tuple[str, torch.dtype], str] = {}
_EXACT: dict[tuple[str, torch.dtype], bool] = {}
_CHOOSING = threading.Lock()
# Answers taken from another process (`adopted`): they win over this process's own.
_ADOPTED: dict[tuple[str, torch.dtype], str] = {}
_DTYPES = (torch.float32, torch.float64)


def resolved() -> dict[tuple[str, torch.dtype], str]:
    """Every operation's kernel for both precisions in this process (timing them now where
    not yet chosen), as ``{("tanh", torch.float32): "numpy", ...}``: what a worker process
    must use (`adopted`) to compute the same numbers as this one."""
    return {(name, d): choice(name, d) for name in KERNELS for d in _DTYPES}


@contextlib.contextmanager
def adopted(kernels: dict[tuple[str, torch.dtype], str]) -> Iterator[None]:
    """Use ``kernels`` (from `resolved` in another process) inside the context."""
    with _CHOOSING:
        before = dict(_ADOPTED)
        _ADOPTED.update(kernels)
    try:
        yield
    finally:
        with _CHOOSING:
            _ADOPTED.clear()
            _ADOPTED.update(before)


def tanh_(x: torch.Tensor) -> torch.Tensor:
    """``x.tanh_()`` with the kernel chosen for this CPU (`choice`)."""
    return _apply("tanh", x)


def exp_(x: torch.Tensor) -> torch.Tensor:
    """``x.exp_()`` with the kernel chosen for this CPU (`choice`)."""
    return _apply("exp", x)


def softplus_(x: torch.Tensor) -> torch.Tensor:
    """``softplus(x)`` in place (torch's threshold of 20) with the kernel chosen for this
    CPU (`choice`)."""
    return _apply("softplus", x)


def _apply(name: str, x: torch.Tensor) -> torch.Tensor:
    in_place, ufunc = KERNELS[name]
    usable = x.device.type == "cpu" and not x.requires_grad and x.is_contiguous()
    if usable and choice(name, x.dtype) == "numpy":
        values = x.numpy()
        ufunc(values, out=values)
        return x
    return in_place(x)


def choice(name: str, dtype: torch.dtype) -> str:
    """``"torch"`` or ``"numpy"``: the kernel used for operation ``name`` on ``dtype``.

    NumPy's kernel is a candidate only where it is exact here: within a few units in the
    last place of torch's, and giving every element the same result wherever it sits in an
    array (a SIMD kernel whose tail elements round differently would make a prediction
    depend on its batch mates). Among exact candidates, ``RUNTIME.elementwise`` decides,
    and ``"auto"`` times both on first use (a few milliseconds); answers are kept for the
    process.
    """
    key = (name, dtype)
    if RUNTIME.elementwise == "torch" and key not in _ADOPTED:
        return "torch"
    # Threads predicting side by side must all get the one answer: two timings could
    # disagree, and the two kernels round differently.
    with _CHOOSING:
        if key not in _EXACT:
            _EXACT[key] = _agree(name, dtype) and _position_independent(name, dtype)
        if key in _ADOPTED:  # another process's answer, if its kernel is exact here too
            return _ADOPTED[key] if _EXACT[key] else "torch"
        if _EXACT[key] and RUNTIME.elementwise == "auto" and key not in _CHOSEN:
            seconds = timings(name, dtype)
            _CHOSEN[key] = "numpy" if seconds["numpy"] * MARGIN < seconds["torch"] else "torch"
    if not _EXACT[key]:
        return "torch"
    if RUNTIME.elementwise == "numpy":
        return "numpy"
    return _CHOSEN[key]


def timings(name: str, dtype: torch.dtype, size: int = _SIZE) -> dict[str, float]:
    """Best-of-5 seconds per million values of each kernel of ``name``, on one buffer, on
    the inference paths' threads (``RUNTIME.inference_threads``)."""
    in_place, ufunc = KERNELS[name]
    buffer = _sample(dtype, size)
    out = {}
    with inference_threads():
        for label in ("torch", "numpy"):
            out[label] = _best(label, in_place, ufunc, buffer)
    return out


def _best(label: str, in_place: Callable, ufunc: Callable, buffer: torch.Tensor) -> float:
    """Best seconds per million values of one kernel over `_REPEATS` runs."""
    best = float("inf")
    for _ in range(_REPEATS):
        work = buffer.clone()
        start = time.perf_counter()
        if label == "torch":
            in_place(work)
        else:
            values = work.numpy()
            ufunc(values, out=values)
        best = min(best, time.perf_counter() - start)
    return best * 1e6 / len(buffer)


def _agree(name: str, dtype: torch.dtype) -> bool:
    in_place, ufunc = KERNELS[name]
    buffer = _sample(dtype, _SIZE)
    expected = in_place(buffer.clone()).numpy()
    got = ufunc(buffer.numpy())
    ulp = np.spacing(np.abs(expected).astype(expected.dtype))
    return bool((np.abs(got - expected) <= _ULPS * ulp).all())


def _position_independent(name: str, dtype: torch.dtype) -> bool:
    """Whether NumPy's kernel gives each element the same bits at any offset and length."""
    ufunc = KERNELS[name][1]
    values = _sample(dtype, 4099).numpy()
    whole = ufunc(values)
    for start, stop in ((1, 4099), (3, 1000), (5, 21), (7, 8), (2, 4098)):
        if not np.array_equal(ufunc(values[start:stop]), whole[start:stop]):
            return False
    return True


def _sample(dtype: torch.dtype, size: int) -> torch.Tensor:
    # Pre-activations and Gaussian exponents of the networks lie within a few units of 0;
    # the last 64 values reach +-30, past softplus's threshold, where kernels may differ.
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(size, generator=generator, dtype=torch.float64).mul_(3.0)
    values[-64:] = torch.linspace(-30.0, 30.0, 64, dtype=torch.float64)
    return values.to(dtype)
