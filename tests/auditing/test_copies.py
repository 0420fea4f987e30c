"""Transformed copies of whole blocks of molecules: what `transform` gives one molecule, seeded,
the same whatever the chunking."""

import numpy as np

from dc_invariant import Conformer
from dc_invariant.symmetry import transform


def test_vectorised_copies_equal_plain_per_molecule_transforms():
    """The audit's batched copies are `transform` applied to each molecule on its own."""
    from dc_invariant.auditing.copies import draw_copies
    from dc_invariant.molecules import Molecules

    rng = np.random.default_rng(3)
    molecules = [
        Conformer(rng.normal(size=(n, 3)), rng.normal(size=(n, 2)), rng.integers(1, 9, n))
        for n in (1, 2, 5, 9)
    ]
    stacked = Molecules.from_conformers(molecules)
    symmetries = ("permutation", "translation", "rotation", "reflection", "identity")
    copies = draw_copies(stacked, 0, symmetries, 3, seed=7)
    assert len(copies.owner) == len(molecules) * len(symmetries) * 3
    starts = copies.molecules.starts
    for k, owner in enumerate(copies.owner):
        n = molecules[owner].n_atoms
        order = copies.order[starts[k] : starts[k] + n]
        expected = transform(
            molecules[owner],
            rotation=copies.rotation[k],
            translation=copies.translation[k],
            permutation=order,
        )
        atoms = slice(starts[k], starts[k] + n)
        np.testing.assert_allclose(
            copies.molecules.positions[atoms], expected.positions, atol=1e-12
        )
        np.testing.assert_array_equal(copies.molecules.features[atoms], expected.features)
        np.testing.assert_array_equal(
            copies.molecules.atomic_numbers[atoms], expected.atomic_numbers
        )
