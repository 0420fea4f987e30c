r"""Exact leave-one-out residuals of `KernelModel`'s fit, in closed form.

The fit has two stages: per-element offsets by least squares on the element counts
:math:`C` (:math:`b = C^+ y`, hat matrix :math:`P = C C^+`), then kernel ridge on what they
leave, :math:`e = (I - P) y`, with :math:`G = (K + \lambda I)^{-1}`. Leaving molecule
:math:`i` out refits both stages. The offsets refit in closed form (the deletion formula of
least squares): the other molecules' targets become :math:`e + P_{:,i} d_i` with
:math:`d_i = e_i / (1 - P_{ii})`, molecule :math:`i`'s own least-squares leave-one-out
residual. Kernel ridge's leave-one-out residual of any target vector :math:`t` is
:math:`(G t)_i / G_{ii}`; with that target it gives, exactly,

.. math::

    r_i = \frac{(G e)_i + (G P)_{ii}\, d_i}{G_{ii}}

(with :math:`P = 0`, no offsets, the classical :math:`(G y)_i / G_{ii}`). One eigendecomposition
:math:`K = U \operatorname{diag}(s) U^T` gives :math:`G` for every :math:`\lambda`, so
`eigen_residuals` costs one ``n x n x n_regularizations`` product after it; `cholesky_residuals`
gives one :math:`\lambda` from a Cholesky factor and its inverse. A molecule whose counts no
other molecule spans (an element found in it alone: :math:`P_{ii} = 1`) has no leave-one-out
prediction; its residual is NaN and the scores leave it out.

Exact for the offsets and the kernel ridge given the atoms' vectors. The vectors' principal
axes (`projection`) are fitted once on all training atoms, not refitted without each
molecule: with the default ``pca_tolerance=1e-6`` that moves the leave-one-out MAE by about
0.1% (a test refits 16 FreeSolv molecules); with ``pca_tolerance=0`` every axis is kept, no
distance depends on the fit, and the closed form equals refitting without each molecule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["LeaveOneOut", "cholesky_residuals", "eigen_residuals"]

# A leverage within this of 1 means the molecule's counts are spanned by no other molecule.
_ALONE = 1e-8


class LeaveOneOut:
    """The offsets' part of the leave-one-out residuals, shared by every kernel and ``lambda``.

    Parameters
    ----------
    counts : np.ndarray of shape (n, n_elements)
        Atoms of each element per molecule.
    y : np.ndarray of shape (n, n_tasks)
    """

    def __init__(self, counts: np.ndarray, y: np.ndarray) -> None:
        left, values, _ = np.linalg.svd(counts, full_matrices=False)
        rank = int((values > values[0] * max(counts.shape) * np.finfo(float).eps).sum())
        #: Orthonormal basis of the counts' columns, (n, rank): P = basis basis^T.
        self.basis = left[:, :rank]
        leverage = (self.basis**2).sum(axis=1)
        #: Molecules with a leave-one-out prediction (their counts are spanned by others).
        self.kept = leverage < 1.0 - _ALONE
        #: What the offsets leave, (I - P) y, and its least-squares leave-one-out version.
        self.residual = y - self.basis @ (self.basis.T @ y)
        self.deleted = np.where(
            self.kept[:, None], self.residual / np.maximum(1.0 - leverage, _ALONE)[:, None], 0.0
        )

    def combine(self, g_e: np.ndarray, g_diag: np.ndarray, gp_diag: np.ndarray) -> np.ndarray:
        """Residuals from ``G e`` (n, ..., T), ``G_ii`` and ``(G P)_ii`` (n, ...); NaN where
        a molecule has no leave-one-out prediction."""
        out = g_e + gp_diag[..., None] * self.deleted.reshape(len(g_e), *[1] * (g_e.ndim - 2), -1)
        out /= g_diag[..., None]
        out[~self.kept] = np.nan
        return out


def eigen_residuals(
    values: np.ndarray,
    vectors: np.ndarray,
    loo: LeaveOneOut,
    regularizations: Sequence[float],
) -> np.ndarray:
    """Leave-one-out residuals for every ``lambda`` from one eigendecomposition of ``K``.

    Parameters
    ----------
    values : np.ndarray of shape (n,)
        Eigenvalues of the kernel (rounding can leave the smallest slightly negative; they are
        clipped to 0, a positive semi-definite kernel's floor).
    vectors : np.ndarray of shape (n, n)
        Its eigenvectors, as columns.
    loo : LeaveOneOut
    regularizations : sequence of float

    Returns
    -------
    np.ndarray of shape (n, n_regularizations, n_tasks)
    """
    inverse = 1.0 / (np.clip(values, 0.0, None)[:, None] + np.asarray(regularizations)[None, :])
    g_diag = (vectors * vectors) @ inverse
    gp_diag = (vectors * (loo.basis @ (loo.basis.T @ vectors))) @ inverse
    projected = vectors.T @ loo.residual  # (n, T)
    n, n_regs, n_tasks = len(values), inverse.shape[1], projected.shape[1]
    scaled = inverse[:, :, None] * projected[:, None, :]
    g_e = (vectors @ scaled.reshape(n, n_regs * n_tasks)).reshape(n, n_regs, n_tasks)
    return loo.combine(g_e, g_diag, gp_diag)


def cholesky_residuals(
    kernel: np.ndarray, loo: LeaveOneOut, regularization: float
) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out residuals for one ``lambda`` (n, n_tasks), and the fit's coefficients.

    Costs a Cholesky factorisation and its inverse (about three factorisations): cheaper
    than an eigendecomposition for a few ``lambda`` on a large kernel. Raises ``ValueError``
    when ``K + lambda I`` is not numerically positive definite.

    Returns
    -------
    residuals : np.ndarray of shape (n, n_tasks)
    alpha : np.ndarray of shape (n, n_tasks)
        ``(K + lambda I)^-1 (I - P) y``, the fit's kernel coefficients at this ``lambda``.
    """
    matrix = torch.from_numpy(kernel).clone()
    matrix.diagonal().add_(regularization)
    factor, info = torch.linalg.cholesky_ex(matrix)
    if int(info) != 0:
        raise ValueError(
            f"the kernel plus regularization={regularization:g} is not positive definite "
            f"(leading minor {int(info)}); use a larger regularization"
        )
    inverse = torch.cholesky_inverse(factor, out=matrix).numpy()
    del factor
    alpha = inverse @ loo.residual
    gp_diag = ((inverse @ loo.basis) * loo.basis).sum(axis=1)
    return loo.combine(alpha, np.diag(inverse).copy(), gp_diag), alpha
