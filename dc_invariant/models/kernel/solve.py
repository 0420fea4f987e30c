"""The solves of `KernelModel`: dressed-atom offsets and the Cholesky ridge solve."""

from __future__ import annotations

import numpy as np
import torch

from dc_invariant.models.elements import takes_constant

__all__ = ["dressed_counts", "offsets", "solve", "with_constant"]


def offsets(counts: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-element contributions ``b`` minimising ``|counts @ b - y|``, shape (n_elements, n_tasks).

    ``counts`` (n_molecules, n_elements) holds each molecule's atoms per element. Element
    counts are often collinear (QM9's H count follows from the others in many molecules);
    ``lstsq`` then returns the minimum-norm solution, which predicts the same.
    """
    return np.linalg.lstsq(counts, y, rcond=None)[0]


def dressed_counts(counts: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The offsets' basis: ``counts``, with a column of ones when a constant per molecule
    takes away most of what per-element offsets leave of ``y`` (`takes_constant`)."""
    with_one = with_constant(counts, counts.shape[1] + 1)
    left = np.sqrt(np.mean((y - counts @ offsets(counts, y)) ** 2, axis=0))
    rest = np.sqrt(np.mean((y - with_one @ offsets(with_one, y)) ** 2, axis=0))
    return with_one if takes_constant(left, rest) else counts


def with_constant(counts: np.ndarray, n_offsets: int) -> np.ndarray:
    """``counts`` as the basis of ``n_offsets`` offsets: with the column of ones of
    `dressed_counts` when there is one more offset than elements."""
    if n_offsets == counts.shape[1]:
        return counts
    return np.column_stack([counts, np.ones(len(counts))])


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
