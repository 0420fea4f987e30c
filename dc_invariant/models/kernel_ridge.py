"""The solves of `KernelModel`: dressed-atom offsets, Cholesky ridge, validation search."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def offsets(counts: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-element contributions ``b`` minimising ``|counts @ b - y|``, shape (n_elements, n_tasks).

    ``counts`` (n_molecules, n_elements) holds each molecule's atoms per element. Element
    counts are often collinear (QM9's H count follows from the others in many molecules);
    ``lstsq`` then returns the minimum-norm solution, which predicts the same.
    """
    return np.linalg.lstsq(counts, y, rcond=None)[0]


def solve(kernel: np.ndarray, regularization: float, residual: np.ndarray) -> np.ndarray:
    """``alpha = (K + regularization I)^-1 residual`` by Cholesky, shape (n, n_tasks).

    Raises ``ValueError`` when ``K + regularization I`` is not numerically positive
    definite, with the fix (a larger regularization).
    """
    # torch's LAPACK, not scipy's: in a process that has run torch's threads, OpenBLAS's
    # threads compete with them and scipy's Cholesky ran 2.5x slower here.
    matrix = torch.from_numpy(kernel).clone()
    matrix.diagonal().add_(regularization)
    factor, info = torch.linalg.cholesky_ex(matrix)
    del matrix
    if int(info) != 0:
        raise ValueError(
            f"the kernel plus regularization={regularization:g} is not positive definite "
            f"(leading minor {int(info)}); use a larger regularization (duplicate molecules "
            "in the training set make the kernel singular)"
        )
    return torch.cholesky_solve(torch.from_numpy(np.ascontiguousarray(residual)), factor).numpy()


def search(
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
