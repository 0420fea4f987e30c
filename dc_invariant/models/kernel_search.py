"""The width and regulariser of `KernelModel`: kernels of the candidates, validation search.

The kernels are computed here (each width is a pass over the n_train² atom pairs), the
validation solves are `kernel_ridge.search`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dc_invariant.models import kernel_ridge
from dc_invariant.models.local_kernel import AtomSet, kernel_matrices


def choose(
    sets: list[AtomSet],
    counts: np.ndarray,
    y: np.ndarray,
    settings: dict[str, Any],
    memory_bytes: int,
) -> tuple[np.ndarray, float, float, float, list[dict[str, Any]]]:
    """The training kernel of the chosen width and the choice.

    Parameters
    ----------
    sets : list of AtomSet
        Training atoms, one set per element.
    counts : np.ndarray of shape (n, n_elements)
        Atoms of each element per molecule.
    y : np.ndarray of shape (n, n_tasks)
    settings : dict
        `KernelModel.hyperparameters`: given ``sigma`` / ``regularization`` (or None), the
        candidates ``sigmas`` / ``regularizations``, ``search_size``, ``valid_fraction``, ``seed``.
    memory_bytes : int
        Budget of each kernel work block.

    Returns
    -------
    kernel : np.ndarray of shape (n, n)
    valid_mae, sigma, regularization : float
        The MAE is NaN when nothing was searched (both given, or fewer than 10 molecules).
    table : list of dict
        Every candidate tried, with its validation MAE and the molecules it was tried on.
    """
    h = settings
    sigmas = [h["sigma"]] if h["sigma"] else h["sigmas"]
    regs = [h["regularization"]] if h["regularization"] else h["regularizations"]
    table: list[dict[str, Any]] = []
    if len(sigmas) > 1 and len(y) > h["search_size"]:
        # Widths are compared on a seeded subset: each width over the full set costs
        # another pass over n_train² atom pairs, and the best width moves little with n.
        rng = np.random.default_rng(h["seed"])
        sub = np.sort(rng.choice(len(y), h["search_size"], replace=False))
        kernels = kernel_matrices(
            _subset(sets, sub), None, len(sub), len(sub), sigmas, memory_bytes
        )
        (_, sigma, _), rows = kernel_ridge.search(
            kernels, counts[sub], y[sub], sigmas, regs, h["valid_fraction"], h["seed"]
        )
        table += [{**row, "n_train": len(sub)} for row in rows]
        sigmas = [sigma]
    kernels = kernel_matrices(sets, None, len(y), len(y), sigmas, memory_bytes)
    score, sigma, reg = np.nan, sigmas[0], regs[0]
    if (len(sigmas) > 1 or len(regs) > 1) and len(y) >= 10:
        (score, sigma, reg), rows = kernel_ridge.search(
            kernels, counts, y, sigmas, regs, h["valid_fraction"], h["seed"]
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
