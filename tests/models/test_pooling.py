"""Atoms to molecules in torch: the sum pooling that makes the networks permutation-invariant."""

import torch

from dc_invariant.models.pooling import molecule_of_atoms, sum_over_molecules


def test_molecule_of_atoms_and_sums_per_molecule():
    counts = torch.tensor([2, 1, 3])
    assert molecule_of_atoms(counts).tolist() == [0, 0, 1, 2, 2, 2]
    values = torch.arange(12.0, dtype=torch.float64).reshape(6, 2)
    pooled = sum_over_molecules(values, counts)
    assert pooled.dtype == torch.float64 and pooled.shape == (3, 2)
    assert pooled.tolist() == [[2.0, 4.0], [4.0, 5.0], [24.0, 27.0]]
    # Renumbering atoms within a molecule leaves its sum unchanged.
    order = torch.tensor([1, 0, 2, 5, 3, 4])
    assert torch.equal(sum_over_molecules(values[order], counts), pooled)
