"""Checks of user-given settings, one rule for the whole package.

A value of the wrong type is a ``TypeError``, a value of the right type outside its range a
``ValueError`` (scikit-learn's `check_scalar` rule, which these build on). NumPy scalars are
accepted and returned as Python numbers, so settings always serialise as JSON; ``True`` and
``False`` are not numbers here. The CLI's argparse types wrap the same checks (`cli`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

__all__ = [
    "check_bool",
    "check_choice",
    "check_int",
    "check_n_jobs",
    "check_names",
    "check_positive",
    "check_real",
    "check_seed",
    "check_task",
    "check_tolerance",
    "store",
]


def check_int(
    value: Any, name: str, *, min_val: Optional[int] = None, max_val: Optional[int] = None
) -> int:
    """``value`` as an ``int`` within ``[min_val, max_val]``.

    Examples
    --------
    >>> check_int(np.int64(3), "n_interactions", min_val=1)
    3
    >>> check_int(0, "hidden", min_val=1)
    Traceback (most recent call last):
    ...
    ValueError: hidden == 0, must be >= 1.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, not {value!r}")
    from sklearn.utils import check_scalar  # imported on use: it takes ~1 s, --help must not

    return int(check_scalar(value, name, numbers.Integral, min_val=min_val, max_val=max_val))


def check_real(
    value: Any,
    name: str,
    *,
    min_val: Optional[float] = None,
    max_val: Optional[float] = None,
    include_boundaries: str = "both",
) -> float:
    """``value`` as a finite ``float`` within its bounds (``include_boundaries`` as in
    `sklearn.utils.check_scalar`: "both", "left", "right" or "neither").

    Examples
    --------
    >>> check_real(float("nan"), "atol", min_val=0)
    Traceback (most recent call last):
    ...
    ValueError: atol must be a finite number, got nan
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number, not {value!r}")
    from sklearn.utils import check_scalar

    value = check_scalar(
        value,
        name,
        numbers.Real,
        min_val=min_val,
        max_val=max_val,
        include_boundaries=include_boundaries,
    )
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return float(value)


def check_bool(value: Any, name: str, *, optional: bool = False) -> Optional[bool]:
    """``value`` as a ``bool`` (None too when ``optional``): a string such as ``"no"``, or a
    1, would otherwise read as True.

    Examples
    --------
    >>> check_bool(np.True_, "record_smiles")
    True
    >>> check_bool(None, "progress", optional=True) is None
    True
    """
    if optional and value is None:
        return None
    if not isinstance(value, (bool, np.bool_)):
        allowed = "True, False or None" if optional else "True or False"
        raise TypeError(f"{name} must be {allowed}, got {value!r}")
    return bool(value)


def check_seed(value: Any) -> int:
    """A random seed: an int >= 0 (NumPy's generators reject negative seeds)."""
    return check_int(value, "seed", min_val=0)


def check_positive(value: Any, name: str) -> float:
    """A finite number > 0 (a width, a cutoff, a regulariser)."""
    return check_real(value, name, min_val=0.0, include_boundaries="neither")


def store(settings: Any, name: str, value: Any) -> None:
    """Keep a checked, normalised ``value`` on a frozen settings dataclass (``__post_init__``)."""
    object.__setattr__(settings, name, value)


def check_tolerance(value: Any, name: str) -> Optional[float]:
    """An absolute or relative tolerance: None (the default applies) or a finite number >= 0."""
    return None if value is None else check_real(value, name, min_val=0.0)


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``.

    Examples
    --------
    >>> check_choice("mean", "pooling", ("sum", "mean"))
    'mean'
    """
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_names(value: Any, name: str) -> list[str]:
    """A sequence of strings as a list; a lone ``str`` is a ``TypeError``, not its characters.

    Examples
    --------
    >>> check_names("permutation", "symmetries")
    Traceback (most recent call last):
    ...
    TypeError: symmetries must be a list of str, got the str 'permutation': wrap it in a list
    """
    if isinstance(value, str):
        raise TypeError(f"{name} must be a list of str, got the str {value!r}: wrap it in a list")
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{name} must be a list of str, got {value!r}")
    return list(value)


def check_n_jobs(value: Any) -> int:
    """Worker processes: a non-zero int, negative counting back from every core (-1: all).

    Examples
    --------
    >>> check_n_jobs(-1)
    -1
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"n_jobs must be a non-zero int (-1 for every core), got {value!r}")
    if value == 0:
        raise ValueError("n_jobs must be a non-zero int (-1 for every core), got 0")
    return int(value)


def check_task(task: Any, n_tasks: int) -> int:
    """The index of one of a model's ``n_tasks`` outputs (forces are of one task).

    Examples
    --------
    >>> check_task(2, 2)
    Traceback (most recent call last):
    ...
    ValueError: task must be in [0, 2), got 2
    """
    if isinstance(task, (bool, np.bool_)) or not isinstance(task, numbers.Integral):
        raise TypeError(f"task must be an int in [0, {n_tasks}), got {task!r}")
    if not 0 <= task < n_tasks:
        raise ValueError(f"task must be in [0, {n_tasks}), got {task}")
    return int(task)
