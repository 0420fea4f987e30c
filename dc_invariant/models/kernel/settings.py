"""Hyperparameters of `KernelModel`, checked with `dc_invariant.validation` and saved as JSON.

The kernel model's counterpart of `settings` (the torch models'): `KernelModel`'s
constructor builds a `KernelSettings` from its keyword arguments before any work, so a bad
value fails there, and ``to_dict`` is what `save` writes and `load_model` reads back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from dc_invariant.models.kernel.representation import FCHL19
from dc_invariant.validation import (
    check_choice,
    check_int,
    check_positive,
    check_real,
    check_seed,
    store,
)

__all__ = ["AUTO_EXACT_LIMIT", "CONFORMERS", "SOLVERS", "KernelSettings"]

#: The solves `KernelModel` offers (``"auto"``: exact up to `AUTO_EXACT_LIMIT` molecules).
SOLVERS = ("auto", "exact", "nystrom")
#: How `KernelModel` reads a molecule with several conformers (``Conformer.ensemble``):
#: its first geometry, or the mean of the kernel over every pair of geometries.
CONFORMERS = ("first", "average")
#: Training molecules up to which ``solver="auto"`` is exact: its kernel takes ``8 n^2`` bytes
#: per width, 3.2 GB here and a 12 GiB peak in the whole fit.
AUTO_EXACT_LIMIT = 20_000


def _candidates(values: Any, name: str) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of positive numbers, got {values!r}")
    if len(values) == 0:
        raise ValueError(f"{name} must be positive numbers, got an empty sequence")
    return tuple(check_positive(v, f"{name}[{k}]") for k, v in enumerate(values))


@dataclass(frozen=True, kw_only=True)
class KernelSettings:
    """Settings of `KernelModel` (see its docstring for what each one does).

    Parameters
    ----------
    n_tasks : int, default=1
    sigma, regularization : float, optional
        Given width and ridge; searched when None.
    sigmas : sequence of float, default=(2, 4, 8)
        Starting widths of the search (extended at its edges); stored as a tuple.
    regularizations : sequence of float, optional
        Candidate ridges; None (the default) searches 1e-10 to 10 times the kernel's mean
        diagonal. Stored as a tuple.
    search_size : int, default=4000
        At least 10.
    pca_tolerance : float, default=1e-6
        In [0, 1).
    representation : dict, optional
        `FCHL19` fields replacing `FCHL19.tuned`'s; stored complete (every field).
    memory_mb : int, default=256
        At least 1.
    seed : int, default=0
    solver : {"auto", "exact", "nystrom"}, default="auto"
    landmarks : int, optional
        Landmark molecules of the Nystrom solve (None: `nystrom.DEFAULT_LANDMARKS`); at
        least 1.
    conformers : {"first", "average"}, default="first"
        See `CONFORMERS`.

    Examples
    --------
    >>> KernelSettings(sigmas=[2, 3]).sigmas
    (2.0, 3.0)
    >>> KernelSettings(search_size=5)
    Traceback (most recent call last):
    ...
    ValueError: search_size == 5, must be >= 10.
    """

    n_tasks: int = 1
    sigma: Optional[float] = None
    regularization: Optional[float] = None
    sigmas: Sequence[float] = (2.0, 4.0, 8.0)
    regularizations: Optional[Sequence[float]] = None
    search_size: int = 4_000
    pca_tolerance: float = 1e-6
    representation: Optional[dict[str, Any]] = None
    memory_mb: int = 256
    seed: int = 0
    solver: str = "auto"
    landmarks: Optional[int] = None
    conformers: str = "first"

    def __post_init__(self) -> None:
        store(self, "n_tasks", check_int(self.n_tasks, "n_tasks", min_val=1))
        for name in ("sigma", "regularization"):
            if getattr(self, name) is not None:
                store(self, name, check_positive(getattr(self, name), name))
        store(self, "sigmas", _candidates(self.sigmas, "sigmas"))
        if self.regularizations is not None:
            store(self, "regularizations", _candidates(self.regularizations, "regularizations"))
        store(self, "search_size", check_int(self.search_size, "search_size", min_val=10))
        tolerance = check_real(
            self.pca_tolerance, "pca_tolerance", min_val=0.0, max_val=1.0,
            include_boundaries="left",
        )  # fmt: skip
        store(self, "pca_tolerance", tolerance)
        rep = self.representation or {}
        if not isinstance(rep, dict):
            raise TypeError(f"representation must be a dict of FCHL19 settings, got {rep!r}")
        unknown = sorted(set(rep) - {f.name for f in dataclasses.fields(FCHL19)})
        if unknown:
            raise ValueError(
                f"representation has unknown FCHL19 settings {unknown}; known: "
                f"{[f.name for f in dataclasses.fields(FCHL19)]}"
            )
        for name in ("n_radial2", "n_radial3"):
            if name in rep:
                rep = {**rep, name: check_int(rep[name], f"representation {name}", min_val=1)}
        for name in ("eta2", "eta3", "cutoff"):
            if name in rep:
                rep = {**rep, name: check_positive(rep[name], f"representation {name}")}
        for name in ("zeta", "two_body_decay", "three_body_decay", "three_body_weight"):
            if name in rep:
                rep = {**rep, name: check_real(rep[name], f"representation {name}")}
        store(self, "representation", FCHL19.tuned(**rep).to_dict())
        store(self, "memory_mb", check_int(self.memory_mb, "memory_mb", min_val=1))
        store(self, "seed", check_seed(self.seed))
        check_choice(self.solver, "solver", SOLVERS)
        if self.landmarks is not None:
            store(self, "landmarks", check_int(self.landmarks, "landmarks", min_val=1))
        check_choice(self.conformers, "conformers", CONFORMERS)

    def solver_for(self, n: int) -> str:
        """The solve ``fit`` uses for ``n`` training molecules (``"auto"`` resolved)."""
        if self.solver != "auto":
            return self.solver
        return "exact" if n <= AUTO_EXACT_LIMIT else "nystrom"

    @property
    def memory_bytes(self) -> int:
        """Budget of each kernel work block, in bytes."""
        return self.memory_mb * 2**20

    @property
    def fchl19(self) -> FCHL19:
        """The representation these settings describe."""
        return FCHL19(**self.representation)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible settings (the constructor's keyword arguments; lists for tuples)."""
        out = dataclasses.asdict(self)
        out["sigmas"] = list(self.sigmas)
        if self.regularizations is not None:
            out["regularizations"] = list(self.regularizations)
        return out
