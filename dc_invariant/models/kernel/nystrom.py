r"""The Nyström solve of `KernelModel`: kernel ridge on the kernel columns of landmark molecules.

Past about 20,000 training molecules the exact solve's ``n x n`` kernel no longer fits in
memory. This solve keeps ``m`` seeded random landmark molecules and fits
:math:`f = K_{\cdot m} \alpha` to all ``n`` molecules (the projected-process / subset-of-
regressors form of the same model):

.. math::

    \min_\alpha \lVert K_{nm} \alpha - e \rVert^2 + \lambda\, \alpha^T K_{mm} \alpha

With :math:`K_{mm} + \delta I = L L^T` (``delta`` a jitter of 1e-10 of the kernel's scale) and
:math:`\beta = L^T \alpha`, this is ridge regression on :math:`F = K_{nm} L^{-T}`. ``F`` is
streamed a block of molecules at a time into :math:`G = F^T F` and :math:`F^T e`, so memory
is about ``32 m^2`` bytes (``G``, ``L``, one factorisation) whatever ``n``, and time is
``n`` times ``m`` kernel rows plus ``n m^2`` for the products. Forming ``F`` before ``G``,
not :math:`K_{mn} K_{nm}` and then whitening it, is what keeps the digits: the whitening
multiplies the rounding of :math:`K_{mn} K_{nm}` by :math:`1/\delta`, and with a kernel
this smooth (QM9's atoms lie within a quarter of a width of each other) that noise swamps the
small ``lambda`` the fit needs.

``lambda`` is walked on a validation set: ``fit``'s ``valid`` when given, else 1,000 (at most
a tenth) of the training molecules, seeded, held out of the factorised products until the
choice is made and then added back, so every molecule is fitted on. Predictions cost ``m``
molecules' kernel rows, whatever ``n``.

Inducing *atoms* (sparse GPR as GAP models use it) were measured first and lost: on 2,000
QM9 molecules, 12,000 inducing atoms chosen by farthest-point sampling gave 0.070 eV against
the exact model's 0.047 eV, where landmark molecules keep every landmark atom as a centre
with one weight per molecule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from dc_invariant.models.kernel.kernels import AtomSet, kernel_matrices, select_molecules
from dc_invariant.models.kernel.scoring import Holdout, errors, spread_of
from dc_invariant.models.kernel.search import walk

__all__ = [
    "DEFAULT_LANDMARKS",
    "NystromFit",
    "fit",
    "held_out",
    "landmark_count",
    "molecule_range",
]

#: Landmark molecules by default: ``32 m^2`` bytes is 12 GiB at 20,000.
DEFAULT_LANDMARKS = 20_000
# Jitter on the landmark kernel's diagonal, relative to its mean diagonal; far below the
# smallest lambda QM9 chooses (1e-7).
_JITTER = 1e-10
# Training molecules held out (at most a tenth) to choose lambda when no valid set is given.
_HOLDOUT = 1_000


@dataclass
class NystromFit:
    """What the Nyström solve chose and fitted.

    ``landmarks`` are indices of training molecules, sorted; ``alpha`` (m, n_tasks) their
    coefficients; ``mae`` / ``rmse`` the validation errors of the chosen ``regularization``
    (``y`` units, mean over tasks); ``table`` a row per ``lambda`` tried; ``at_edge`` whether
    the choice is an end of the candidates; ``sets`` the landmarks' atoms per element.
    """

    landmarks: np.ndarray
    alpha: np.ndarray
    regularization: float
    mae: float = np.nan
    rmse: float = np.nan
    table: list[dict[str, Any]] = field(default_factory=list)
    at_edge: bool = False
    sets: list[AtomSet] = field(default_factory=list)


def landmark_count(n: int, given: Optional[int], holding_out: bool) -> int:
    """Landmarks for ``n`` training molecules: ``given`` or `DEFAULT_LANDMARKS`, at most the
    molecules left after the hold-out (when ``holding_out``: ``lambda`` is chosen on
    training molecules)."""
    left = n - (held_out(n) if holding_out else 0)
    return max(1, min(given or DEFAULT_LANDMARKS, left))


def held_out(n: int) -> int:
    """Training molecules held out to choose ``lambda`` (1,000, at most a tenth)."""
    return min(_HOLDOUT, n // 10)


def molecule_range(sets: Sequence[AtomSet], first: int, last: int) -> list[AtomSet]:
    """The atoms of molecules ``first`` to ``last - 1``, renumbered from 0 (atoms are sorted
    by molecule, so each element's are one slice)."""
    out = []
    for atoms in sets:
        lo, hi = np.searchsorted(atoms.molecule, [first, last])
        out.append(atoms.take(slice(lo, hi), atoms.molecule[lo:hi] - first))
    return out


def fit(
    sets: list[AtomSet],
    residual: np.ndarray,
    sigma: float,
    regularizations: np.ndarray,
    relative: bool,
    start: int,
    n_landmarks: int,
    seed: int,
    memory_bytes: int,
    holdout: Optional[Holdout] = None,
    holdout_target: Optional[np.ndarray] = None,
    progress: bool = False,
) -> NystromFit:
    """Landmarks, ``lambda`` (walked from ``regularizations[start]``) and coefficients.

    Parameters
    ----------
    sets : list of AtomSet
        Training atoms per element (projected).
    residual : np.ndarray of shape (n, n_tasks)
        Labels less the offsets.
    sigma : float
    regularizations : np.ndarray
        Candidate ``lambda`` values, ascending; one value means no choice.
    relative : bool
        The candidates are multiples of the landmark kernel's mean diagonal.
    start : int
        Index of the first candidate tried.
    n_landmarks, seed, memory_bytes : int
    holdout : Holdout, optional
        Choose on this validation set (its targets, less the offsets, in
        ``holdout_target``) instead of on held-out training molecules.
    progress : bool, default=False
        A progress bar over the blocks of molecules.
    """
    n, n_tasks = residual.shape
    rng = np.random.default_rng(seed)
    held = np.zeros(n, dtype=bool)
    if holdout is None and len(regularizations) > 1:
        held[rng.choice(n, held_out(n), replace=False)] = True
    landmarks = np.sort(rng.choice(np.flatnonzero(~held), n_landmarks, replace=False))
    chosen = select_molecules(sets, landmarks)
    mm = kernel_matrices(chosen, None, n_landmarks, n_landmarks, [sigma], memory_bytes)[0]
    scale = float(np.mean(np.diag(mm)))
    factor = _factor(torch.from_numpy(mm), scale)
    del mm
    gram = torch.zeros((n_landmarks, n_landmarks), dtype=torch.float64)
    right = torch.zeros((n_landmarks, n_tasks), dtype=torch.float64)
    held_rows: list[torch.Tensor] = []
    rows = max(1, memory_bytes // (8 * n_landmarks))
    for first in tqdm(range(0, n, rows), disable=not progress, desc="Nystrom", unit="block"):
        last = min(n, first + rows)
        block = molecule_range(sets, first, last)
        columns = kernel_matrices(block, chosen, last - first, n_landmarks, [sigma], memory_bytes)
        features = _whiten(torch.from_numpy(columns[0]), factor)
        keep = ~held[first:last]
        kept = features[torch.from_numpy(keep)] if not keep.all() else features
        gram.addmm_(kept.T, kept)
        right.addmm_(kept.T, torch.from_numpy(np.ascontiguousarray(residual[first:last][keep])))
        if not keep.all():
            held_rows.append(features[torch.from_numpy(~keep)])
    held_features = torch.cat(held_rows) if held_rows else None
    if holdout is not None:
        cross = kernel_matrices(
            holdout.sets, chosen, len(holdout.y), n_landmarks, [sigma], memory_bytes
        )[0]
        scored, target = _whiten(torch.from_numpy(cross), factor), holdout_target
    elif held.any():
        scored, target = held_features, residual[held]
    else:
        scored, target = None, None
    candidates = np.asarray(regularizations, dtype=np.float64) * (scale if relative else 1.0)
    result = _walk(gram, right, scored, target, candidates, start)
    if held_features is not None:  # every training molecule in the final fit
        gram.addmm_(held_features.T, held_features)
        right.addmm_(held_features.T, torch.from_numpy(residual[held]))
    beta = _ridge(gram, right, result.regularization)
    if beta is None:
        raise ValueError(
            f"the Nystrom system with regularization={result.regularization:g} is not "
            "positive definite; use a larger regularization"
        )
    alpha = torch.linalg.solve_triangular(factor.T, beta, upper=True)
    result.landmarks, result.alpha, result.sets = landmarks, alpha.numpy(), chosen
    return result


def _factor(mm: torch.Tensor, scale: float) -> torch.Tensor:
    """Cholesky factor of the landmark kernel plus jitter, growing the jitter tenfold while
    the factorisation fails (duplicate landmarks make the kernel singular)."""
    jitter = _JITTER
    while True:
        matrix = mm.clone()
        matrix.diagonal().add_(jitter * scale)
        factor, info = torch.linalg.cholesky_ex(matrix)
        if int(info) == 0:
            return factor
        if jitter >= 1e-4:
            raise ValueError("the landmark molecules' kernel is singular even with jitter")
        jitter *= 10


def _whiten(columns: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``columns @ L^-T``: the kernel columns as features of the whitened ridge problem."""
    return torch.linalg.solve_triangular(factor, columns.T, upper=False).T


def _ridge(
    gram: torch.Tensor, right: torch.Tensor, regularization: float
) -> Optional[torch.Tensor]:
    """``(G + lambda I)^-1 right`` by an in-place Cholesky of one copy; None if it fails."""
    matrix = gram.clone()
    matrix.diagonal().add_(regularization)
    info = torch.empty((), dtype=torch.int32)
    torch.linalg.cholesky_ex(matrix, out=(matrix, info))
    if int(info) != 0:
        return None
    return torch.cholesky_solve(right, matrix)


def _walk(
    gram: torch.Tensor,
    right: torch.Tensor,
    scored: Optional[torch.Tensor],
    target: Optional[np.ndarray],
    candidates: np.ndarray,
    start: int,
) -> NystromFit:
    """The ``lambda`` of least validation error (`search.walk`, one factorisation each);
    without a validation set or a choice, ``candidates[start]``."""
    empty = np.empty(0, dtype=np.int64)
    if scored is None or len(candidates) == 1:
        return NystromFit(empty, np.empty(0), float(candidates[min(start, len(candidates) - 1)]))
    spread = spread_of(target)

    def evaluate(reg: float) -> tuple[float, float, float, None]:
        beta = _ridge(gram, right, reg)
        if beta is None:
            return np.inf, np.nan, np.nan, None
        score, mae, rmse = errors(target - (scored @ beta).numpy(), spread)
        return float(score), float(mae), float(rmse), None

    best, (_, mae, rmse, _), table = walk(candidates, start, evaluate)
    return NystromFit(
        empty, np.empty(0), float(candidates[best]), mae, rmse, table,
        best in (0, len(candidates) - 1),
    )  # fmt: skip
