"""The width and regulariser of `KernelModel`: kernels of the candidates, validation search.

The kernels are computed here (each width is a pass over the n_train² atom pairs), the
solves are `solve`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from dc_invariant.models.kernel.kernels import AtomSet, kernel_matrices
from dc_invariant.models.kernel.settings import KernelSettings
from dc_invariant.models.kernel.solve import offsets, solve

__all__ = ["choose", "validation_search"]


def choose(
    sets: list[AtomSet],
    counts: np.ndarray,
    y: np.ndarray,
    settings: KernelSettings,
) -> tuple[np.ndarray, float, float, float, list[dict[str, Any]]]:
    """The training kernel of the chosen width and the choice.

    Parameters
    ----------
    sets : list of AtomSet
        Training atoms, one set per element.
    counts : np.ndarray of shape (n, n_elements)
        Atoms of each element per molecule.
    y : np.ndarray of shape (n, n_tasks)
    settings : KernelSettings
        Given ``sigma`` / ``regularization`` (or None), the candidates ``sigmas`` /
        ``regularizations``, ``search_size``, ``valid_fraction``, ``seed``, ``memory_mb``.

    Returns
    -------
    kernel : np.ndarray of shape (n, n)
    valid_mae, sigma, regularization : float
        The MAE is NaN when nothing was searched (both given, or fewer than 10 molecules).
    table : list of dict
        Every candidate tried, with its validation MAE and the molecules it was tried on.
    """
    s = settings
    sigmas = [s.sigma] if s.sigma else list(s.sigmas)
    regs = [s.regularization] if s.regularization else list(s.regularizations)
    table: list[dict[str, Any]] = []
    if len(sigmas) > 1 and len(y) > s.search_size:
        # Widths are compared on a seeded subset: each width over the full set costs
        # another pass over n_train² atom pairs, and the best width moves little with n.
        rng = np.random.default_rng(s.seed)
        sub = np.sort(rng.choice(len(y), s.search_size, replace=False))
        kernels = kernel_matrices(
            _subset(sets, sub), None, len(sub), len(sub), sigmas, s.memory_bytes
        )
        (_, sigma, _), rows = validation_search(
            kernels, counts[sub], y[sub], sigmas, regs, s.valid_fraction, s.seed
        )
        table += [{**row, "n_train": len(sub)} for row in rows]
        sigmas = [sigma]
    kernels = kernel_matrices(sets, None, len(y), len(y), sigmas, s.memory_bytes)
    score, sigma, reg = np.nan, sigmas[0], regs[0]
    if (len(sigmas) > 1 or len(regs) > 1) and len(y) >= 10:
        (score, sigma, reg), rows = validation_search(
            kernels, counts, y, sigmas, regs, s.valid_fraction, s.seed
        )
        table += [{**row, "n_train": len(y)} for row in rows]
    # A copy, so that the other widths' kernels are freed before the final solve.
    kernel = kernels[sigmas.index(sigma)].copy() if len(kernels) > 1 else kernels[0]
    return kernel, float(score), float(sigma), float(reg), table


def _subset(sets: list[AtomSet], molecules: np.ndarray) -> list[AtomSet]:
    """The atoms of the chosen (sorted) molecules, renumbered 0 .. len(molecules) - 1."""
    out = []
    for atoms in sets:
        keep = np.isin(atoms.molecule, molecules)
        mask = torch.as_tensor(keep, device=atoms.vectors.device)
        out.append(AtomSet(atoms.vectors[mask], np.searchsorted(molecules, atoms.molecule[keep])))
    return out


def validation_search(
    kernels: np.ndarray,
    counts: np.ndarray,
    y: np.ndarray,
    sigmas: Sequence[float],
    regularizations: Sequence[float],
    valid_fraction: float,
    seed: int,
) -> tuple[tuple[float, float, float], list[dict[str, float]]]:
    """Choose ``(sigma, regularization)`` on a seeded validation split of the training set.

    Parameters
    ----------
    kernels : np.ndarray of shape (n_sigmas, n, n)
        Training kernels, one per width in ``sigmas``.
    counts : np.ndarray of shape (n, n_elements)
    y : np.ndarray of shape (n, n_tasks)

    Returns
    -------
    best : (valid MAE, sigma, regularization)
        The MAE is in ``y``'s units, averaged over tasks; the choice minimises the mean of
        each task's MAE divided by its spread, so tasks in different units count alike.
    table : list of dict
        Every candidate with its validation MAE (None when its Cholesky failed).
    """
    n = len(y)
    n_valid = max(1, round(valid_fraction * n))
    order = np.random.default_rng(seed).permutation(n)
    valid, train = np.sort(order[:n_valid]), np.sort(order[n_valid:])
    b = offsets(counts[train], y[train])
    residual = y - counts @ b
    spread = y[train].std(axis=0)
    spread[spread == 0] = 1.0
    table: list[dict[str, float]] = []
    best = (np.inf, np.inf, float(sigmas[0]), float(regularizations[0]))
    for s, sigma in enumerate(sigmas):
        k_train = kernels[s][np.ix_(train, train)]
        k_valid = kernels[s][np.ix_(valid, train)]
        for reg in regularizations:
            try:
                alpha = solve(k_train, reg, residual[train])
            except ValueError:
                table.append({"sigma": float(sigma), "regularization": reg, "valid_mae": None})
                continue
            error = np.abs(k_valid @ alpha - residual[valid])
            mae = float(error.mean())
            score = float((error.mean(axis=0) / spread).mean())
            table.append({"sigma": float(sigma), "regularization": float(reg), "valid_mae": mae})
            if score < best[0]:
                best = (score, mae, float(sigma), float(reg))
    if not np.isfinite(best[0]):
        raise ValueError(
            f"every regularization in {list(regularizations)} left the kernel singular; "
            "try larger values"
        )
    return best[1:], table
