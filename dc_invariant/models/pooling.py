"""Atoms to molecules in torch: which molecule each stacked atom belongs to, and sums over
each molecule's atoms (the sum pooling that makes the networks permutation-invariant).

The NumPy counterparts are `dc_invariant.molecules.segment_ids` and `Molecules.split`.
"""

from __future__ import annotations

import torch

__all__ = ["molecule_of_atoms", "sum_over_molecules"]


def molecule_of_atoms(counts: torch.Tensor) -> torch.Tensor:
    """The molecule of every stacked atom, for molecules of ``counts`` atoms."""
    return torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)


def sum_over_molecules(values: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Rows of ``values`` (one per stacked atom) summed per molecule: (n_atoms, H) ->
    (n_molecules, H)."""
    pooled = torch.zeros(len(counts), values.shape[1], dtype=values.dtype, device=values.device)
    return pooled.index_add_(0, molecule_of_atoms(counts), values)
