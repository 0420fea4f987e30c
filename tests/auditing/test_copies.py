"""Transformed copies of whole blocks of molecules: what `transform` gives one molecule, seeded,
the same whatever the chunking."""

import numpy as np

from dc_invariant import Conformer
from dc_invariant.auditing.copies import (
    BLOCK,
    DISTORTION,
    TUTORIAL_ROTATION,
    audit_batch,
)
from dc_invariant.molecules import Molecules
from dc_invariant.symmetry import transform

ALL = ("permutation", "translation", "rotation", "reflection")


def stacked(n_molecules: int, seed: int = 0) -> Molecules:
    """Random molecules of 1 to 9 atoms with mixed elements."""
    rng = np.random.default_rng(seed)
    return Molecules.from_conformers(
        [
            Conformer(rng.normal(size=(n, 3)), rng.normal(size=(n, 2)), rng.integers(1, 9, n))
            for n in rng.integers(1, 10, n_molecules)
        ]
    )


def draw_copies(molecules, block, symmetries, n_samples, seed):
    """The copies of one block (at most `BLOCK` molecules) numbered ``block``."""
    return audit_batch(molecules, block, symmetries, n_samples, seed)[1]


def draw_control(molecules, block, seed):
    """The controls of one block numbered ``block``."""
    return audit_batch(molecules, block, ALL, 1, seed)[2]


def same(a, b) -> bool:
    return all(
        np.array_equal(x, y)
        for x, y in (
            (a.rotation, b.rotation),
            (a.translation, b.translation),
            (a.order, b.order),
            (a.owner, b.owner),
            (a.molecules.positions, b.molecules.positions),
        )
    )


def test_vectorised_copies_equal_plain_per_molecule_transforms():
    """The audit's batched copies are `transform` applied to each molecule on its own."""
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


def test_same_seed_and_block_same_copies_and_either_changed_other_copies():
    molecules = stacked(10)
    first = draw_copies(molecules, 3, ALL, 2, seed=7)
    assert same(first, draw_copies(molecules, 3, ALL, 2, seed=7))
    assert not same(first, draw_copies(molecules, 3, ALL, 2, seed=8))
    assert not same(first, draw_copies(molecules, 4, ALL, 2, seed=7))


def test_an_audit_batch_is_its_blocks_copies_and_controls_whatever_the_chunking():
    """One batch per chunk holds exactly the per-block draws, and a chunk that starts at a
    later block gets that block's copies, as in the whole."""
    molecules = stacked(2 * BLOCK + 5, seed=1)
    bounds = [(0, BLOCK), (BLOCK, 2 * BLOCK), (2 * BLOCK, len(molecules))]
    parts = [molecules.range(lo, hi) for lo, hi in bounds]
    batch, copies, control = audit_batch(molecules, 0, ALL, 2, seed=5)
    n, n_copies = len(molecules), len(copies.owner)
    assert len(batch) == 2 * n + n_copies
    np.testing.assert_array_equal(batch.range(0, n).positions, molecules.positions)
    np.testing.assert_array_equal(batch.range(0, n).features, molecules.features)
    assert batch.smiles[n : n + n_copies] == [molecules.smiles[m] for m in copies.owner]
    drawn = [draw_copies(part, k, ALL, 2, seed=5) for k, part in enumerate(parts)]
    for field in ("positions", "features", "atomic_numbers", "counts"):
        expected = np.concatenate([getattr(d.molecules, field) for d in drawn])
        np.testing.assert_array_equal(getattr(copies.molecules, field), expected)
    np.testing.assert_array_equal(
        copies.owner, np.concatenate([d.owner + lo for d, (lo, _) in zip(drawn, bounds)])
    )
    np.testing.assert_array_equal(copies.rotation, np.concatenate([d.rotation for d in drawn]))
    np.testing.assert_array_equal(copies.order, np.concatenate([d.order for d in drawn]))
    distorted = np.concatenate(
        [draw_control(part, k, seed=5).molecules.positions for k, part in enumerate(parts)]
    )
    np.testing.assert_array_equal(control.molecules.positions, distorted)
    np.testing.assert_array_equal(control.molecules.features, molecules.features)

    _, later_copies, _ = audit_batch(molecules.range(BLOCK, n), 1, ALL, 2, seed=5)
    tail = copies.owner >= BLOCK
    np.testing.assert_array_equal(later_copies.owner + BLOCK, copies.owner[tail])
    np.testing.assert_array_equal(later_copies.rotation, copies.rotation[tail])
    np.testing.assert_array_equal(later_copies.translation, copies.translation[tail])
    atoms = np.repeat(tail, copies.molecules.counts)
    np.testing.assert_array_equal(
        later_copies.molecules.positions, copies.molecules.positions[atoms]
    )
    np.testing.assert_array_equal(later_copies.order, copies.order[atoms])


def test_each_symmetry_s_draws_do_not_depend_on_the_others_asked_for():
    molecules = stacked(12, seed=2)
    every = draw_copies(molecules, 0, ALL, 3, seed=9)
    per_molecule = np.arange(len(every.owner)).reshape(len(molecules), len(ALL), 3)
    for s, symmetry in enumerate(ALL):
        alone = draw_copies(molecules, 0, (symmetry,), 3, seed=9)
        k = per_molecule[:, s].reshape(-1)
        np.testing.assert_array_equal(alone.rotation, every.rotation[k])
        np.testing.assert_array_equal(alone.translation, every.translation[k])
        atoms = np.isin(np.repeat(np.arange(len(every.owner)), every.molecules.counts), k)
        np.testing.assert_array_equal(alone.molecules.positions, every.molecules.positions[atoms])


def test_group_elements_are_the_ones_the_docstring_promises():
    molecules = stacked(20, seed=3)
    copies = draw_copies(molecules, 0, ALL, 4, seed=0)
    kind = np.tile(np.repeat(np.arange(len(ALL)), 4), len(molecules))
    sample = np.tile(np.arange(4), len(molecules) * len(ALL))
    determinant = np.linalg.det(copies.rotation)
    np.testing.assert_allclose(determinant[kind == 2], 1.0)  # rotations
    np.testing.assert_allclose(determinant[kind == 3], -1.0)  # reflections
    np.testing.assert_array_equal(
        copies.rotation[(kind == 2) & (sample == 0)][0], TUTORIAL_ROTATION
    )
    distance = np.linalg.norm(copies.translation[kind == 1], axis=1)
    np.testing.assert_allclose(distance, np.tile([10.0, 1e3, 10.0, 1e3], len(molecules)))
    # Renumberings move some atom onto a place held by another element, where there is one.
    z = molecules.atomic_numbers
    for k in np.flatnonzero(kind == 0):
        atoms = copies.molecules.slices()[k]
        mine = z[molecules.slices()[copies.owner[k]]]
        if len(set(mine.tolist())) > 1:
            assert (copies.molecules.atomic_numbers[atoms] != mine).any()


def test_control_is_a_seeded_distortion_of_the_given_size():
    molecules = stacked(BLOCK, seed=4)
    control = draw_control(molecules, 2, seed=1)
    again = draw_control(molecules, 2, seed=1)
    np.testing.assert_array_equal(control.molecules.positions, again.molecules.positions)
    shift = control.molecules.positions - molecules.positions
    assert abs(shift.std() - DISTORTION) < 0.1 * DISTORTION
    np.testing.assert_array_equal(control.molecules.features, molecules.features)
    assert not np.array_equal(
        draw_control(molecules, 3, seed=1).molecules.positions, control.molecules.positions
    )


def test_one_sample_of_rotation_is_a_random_turn_not_the_turn_about_x():
    from dc_invariant.auditing import audit

    def about_x(r, x):  # unchanged by any turn about x, changed by most others
        return float(((r[:, 0] - r[:, 0].mean()) ** 2).sum())

    report = audit(about_x, ["CCO", "c1ccccc1O"], n_samples=1, symmetries=["rotation"])
    assert not report.holds("rotation")
