"""Per-element centring and principal axes of FCHL19 vectors, fitted on the training atoms.

Centring on each element's training mean keeps the digits of the GEMM form of the squared
distances (see `kernels`); dropping the axes that hold almost no variance makes every kernel
block cheaper without changing the kernel between training atoms beyond ``tolerance``.

An atom unlike the training atoms can lie far off the kept axes (an element with few training
atoms keeps few axes: one, with one atom). Dropping that part would make it look like the
training atoms, its kernel row too high (1.0 where the true kernel is 0.77). So each atom
gets one more coordinate: how far what the axes leave of it exceeds the most they leave of
any training atom (``floors``). It is 0 for every training atom, so fits are unchanged, and
its square grows smoothly from 0, so energies and forces stay smooth; an atom off the axes
gets its distance to every training atom back to first order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from dc_invariant.models.kernel.kernels import AtomSet
from dc_invariant.models.runtime import eigh

__all__ = ["Projection"]

# Varying columns up to which the covariance is decomposed whole (QM9's five elements: 720).
_DIRECT = 1024
# Atoms at a time whose residual vectors are formed (16,384 x 720 float64: 94 MB).
_ROWS = 16_384


@dataclass
class Projection:
    """Per element: the training mean, the principal axes kept (columns of ``axes``) and
    the longest part of a training atom they leave (``floors``; None for models saved
    before it existed, which project without the extra coordinate, as they were fitted)."""

    means: list[np.ndarray]
    axes: list[np.ndarray]
    floors: Optional[list[float]] = None

    @classmethod
    def fit(cls, vectors: torch.Tensor, index: np.ndarray, n_elements: int, tolerance: float):
        """Axes keeping all but ``tolerance`` of each element's variance around its mean.

        With ``tolerance > 0`` only the columns that vary are decomposed (most FCHL19
        channels of a many-element set are zero for a given element), and through the
        atoms' Gram matrix when there are fewer atoms than such columns: the same axes,
        at a fraction of the cost (10 elements: 2,440 columns, 30 s -> 1 s on FreeSolv).
        """
        means, axes, floors = [], [], []
        for e in range(n_elements):
            mine = vectors[torch.as_tensor(index == e, device=vectors.device)]
            mean = mine.mean(dim=0)
            centred = (mine - mean).cpu()
            if tolerance > 0:
                values, vecs = _varying_axes(centred, tolerance)
            else:
                values, vecs = (t.numpy() for t in eigh(centred.T @ centred))
            values, vecs = values[::-1], vecs[:, ::-1]
            total = values.sum()
            if tolerance > 0 and total > 0:
                left = 1.0 - np.cumsum(values) / total
                keep = int(np.searchsorted(-left, -tolerance, side="left")) + 1
            else:
                keep = len(values)
            means.append(mean.cpu().numpy())
            # A copy, not ascontiguousarray: a single kept axis of the reversed view counts
            # as contiguous to NumPy but keeps its negative stride, which torch refuses.
            axes.append(vecs[:, : max(1, keep)].copy())
            kept = torch.as_tensor(axes[-1])
            floors.append(float(_left_lengths(centred, centred @ kept, kept).max()))
        return cls(means, axes, floors)

    def project(self, vectors: torch.Tensor, e: int) -> torch.Tensor:
        """Vectors of element ``e`` centred and projected, on their device, and (with
        ``floors``) how far what the axes leave of each exceeds the element's floor."""
        axes = torch.as_tensor(self.axes[e], device=vectors.device)
        centred = vectors - torch.as_tensor(self.means[e], device=vectors.device)
        kept = centred @ axes
        if self.floors is None:
            return kept
        # Exactly 0 (and no gradient) up to the floor: what the axes leave of an atom like
        # the training ones is rounding-sized, and its direction noise in the forces.
        beyond = (_left_lengths(centred, kept, axes) - self.floors[e]).clamp_min(0.0)
        return torch.cat([kept, beyond.unsqueeze(1)], dim=1)

    def atom_sets(self, vectors: torch.Tensor, index: np.ndarray, molecule: np.ndarray):
        """One `AtomSet` per element, vectors centred and projected, on their device."""
        out = []
        for e in range(len(self.means)):
            mask = index == e
            mine = vectors[torch.as_tensor(mask, device=vectors.device)]
            out.append(AtomSet(self.project(mine, e), molecule[mask]))
        return out


def _left_lengths(centred: torch.Tensor, kept: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
    """Length of what ``axes`` (orthonormal columns) leave of each row of ``centred``, given
    its coordinates ``kept`` on them: formed as vectors (|c|^2 - |A^T c|^2 cancels to noise),
    a block of rows at a time (the temporary is as wide as the representation)."""
    lengths = []
    for part, on_axes in zip(torch.split(centred, _ROWS), torch.split(kept, _ROWS)):
        left = part - on_axes @ axes.T
        squared = (left * left).sum(dim=1)
        # The floor keeps the gradient finite for an atom exactly on the axes.
        lengths.append(squared.clamp_min(torch.finfo(squared.dtype).tiny).sqrt())
    return torch.cat(lengths) if lengths else centred.new_zeros(0)


def _varying_axes(centred: torch.Tensor, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors (columns, full width) of ``centred``'s
    covariance, over the columns that vary; constant columns add only zero eigenvalues.
    Past `_DIRECT` columns, only the leading axes that hold all but ``tolerance`` of the
    variance (and a margin) are computed."""
    width = centred.shape[1]
    active = torch.nonzero(centred.abs().amax(dim=0) > 0).flatten() if len(centred) else None
    if active is None or len(active) == 0:
        return np.zeros(1), np.eye(width, 1)
    part = centred[:, active]
    if len(part) < part.shape[1]:
        values, left = eigh(part @ part.T)
        values = values.clamp(min=0.0)
        positive = values > 0
        values, left = values[positive], left[:, positive]
        vecs = (part.T @ left) / values.sqrt()
    elif part.shape[1] > _DIRECT:
        values, vecs = _leading_axes(part.T @ part, tolerance)
    else:
        values, vecs = eigh(part.T @ part)
    full = torch.zeros((width, vecs.shape[1]), dtype=vecs.dtype)
    full[active] = vecs
    return values.numpy(), full.numpy()


def _leading_axes(covariance: torch.Tensor, tolerance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenpairs (ascending) of the leading axes holding all but ``tolerance`` of the trace.

    Subspace iteration from a seeded start, then the exact eigenproblem inside the subspace
    (Rayleigh-Ritz); the subspace doubles until the variance outside it is below a tenth of
    ``tolerance``. Four products with the covariance replace its full eigendecomposition:
    on FreeSolv's 2,080 varying hydrogen columns, ~300 axes kept, ~10x faster. The axes
    kept are those a full decomposition keeps, to the iteration's convergence, which the
    steep decay of the spectrum there makes fast.
    """
    width = covariance.shape[0]
    total = float(covariance.diagonal().sum())
    generator = torch.Generator().manual_seed(0)
    size = min(width, 512)
    while True:
        basis = torch.randn(width, size, dtype=covariance.dtype, generator=generator)
        for _ in range(4):
            basis = torch.linalg.qr(covariance @ basis).Q
        values, inner = eigh(basis.T @ covariance @ basis)
        if size == width or total - float(values.sum()) <= 0.1 * tolerance * total:
            return values, basis @ inner
        size = min(width, 2 * size)
