"""The error of every ``lambda`` for one kernel: by exact leave-one-out or on a validation set.

`search` asks a `Scorer` for residuals (every ``lambda`` at once from an eigendecomposition,
or one ``lambda`` from a Cholesky factor) and turns them into one score per ``lambda``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from dc_invariant.models.kernel.kernels import AtomSet
from dc_invariant.models.kernel.loo import LeaveOneOut, cholesky_residuals, eigen_residuals
from dc_invariant.models.kernel.solve import offsets, solve
from dc_invariant.models.runtime import eigh

__all__ = ["Holdout", "Scorer", "errors", "spread_of"]


@dataclass
class Holdout:
    """A validation set: its atoms (projected as the training atoms), counts and labels."""

    sets: list[AtomSet]
    counts: np.ndarray
    y: np.ndarray


class Scorer:
    """Errors of every ``lambda`` for one kernel, by leave-one-out or on the holdout."""

    def __init__(self, counts: np.ndarray, y: np.ndarray, holdout: Optional[Holdout]) -> None:
        self.holdout = holdout
        # Tasks are weighed by the spread the kernel has to explain, after the offsets: an
        # extensive target's raw spread is mostly its offsets' (QM9 U0: 10 eV raw, 1.2 eV
        # after), which would make it count for little beside an intensive one.
        if holdout is None:
            self.loo = LeaveOneOut(counts, y)
            self.spread = spread_of(self.loo.residual[self.loo.kept])
        else:
            b = offsets(counts, y)
            self.residual = y - counts @ b
            self.target = holdout.y - holdout.counts @ b
            self.spread = spread_of(self.residual)

    def eigen(
        self, kernel: np.ndarray, cross: Optional[np.ndarray], regs: np.ndarray
    ) -> np.ndarray:
        """Residuals (n_scored, n_regs, n_tasks) of every ``lambda``, via one eigh."""
        values, vectors = (t.numpy() for t in eigh(torch.from_numpy(kernel)))
        if self.holdout is None:
            return eigen_residuals(values, vectors, self.loo, regs)
        inverse = 1.0 / (np.clip(values, 0.0, None)[:, None] + regs[None, :])
        projected = vectors.T @ self.residual
        n, n_regs, n_tasks = len(values), len(regs), projected.shape[1]
        weights = (inverse[:, :, None] * projected[:, None, :]).reshape(n, n_regs * n_tasks)
        predicted = ((cross @ vectors) @ weights).reshape(-1, n_regs, n_tasks)
        return self.target[:, None, :] - predicted

    def one(
        self, kernel: np.ndarray, cross: Optional[np.ndarray], reg: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Residuals (n_scored, n_tasks) of one ``lambda`` and the coefficients, by Cholesky."""
        if self.holdout is None:
            return cholesky_residuals(kernel, self.loo, reg)
        alpha = solve(kernel, reg, self.residual)
        return self.target - cross @ alpha, alpha

    def score(self, residuals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`errors` of ``residuals`` against this scorer's label spread."""
        return errors(residuals, self.spread)


def errors(residuals: np.ndarray, spread: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score, MAE, RMSE) over the leading axis of ``residuals`` (..., n_tasks), NaN left
    out: the score is the mean over tasks of each task's MAE over its ``spread``, so tasks
    in different units count alike (it is the ``score`` column of a search table, which the
    choice minimises; ``mae`` there is the plain mean over tasks)."""
    absolute = np.abs(residuals)
    mae = np.nanmean(absolute, axis=0)
    rmse = np.sqrt(np.nanmean(absolute**2, axis=0))
    return (mae / spread).mean(axis=-1), mae.mean(axis=-1), rmse.mean(axis=-1)


def spread_of(y: np.ndarray) -> np.ndarray:
    """Each task's standard deviation (1 where it is 0 or there are no labels)."""
    spread = y.std(axis=0) if len(y) else np.ones(y.shape[1])
    spread[spread == 0] = 1.0
    return spread
