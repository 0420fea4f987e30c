"""How far each copy's output is from what the symmetry says, and the verdict's tolerance."""

import numpy as np
import pytest
from audit_helpers import drug_dataset

from dc_invariant import Conformer
from dc_invariant.auditing import audit
from dc_invariant.auditing.copies import audit_batch
from dc_invariant.auditing.deviation import compare, segment_reduce
from dc_invariant.molecules import Molecules


@pytest.fixture(scope="module")
def dataset(dc):
    return drug_dataset(dc)


def test_verdict_turns_exactly_at_the_tolerance(dataset):
    """A target broken by a known deviation passes just above it and fails just below."""

    def nudged(r: np.ndarray, x: np.ndarray) -> float:
        return 1.0 + 1e-7 * float(r[:, 0].sum())

    loose = audit(nudged, dataset, symmetries=("translation",), seed=2, rtol=0.0, atol=1.0)
    worst = float(loose.molecules["abs_deviation"].max())
    assert worst > 0 and loose.holds("translation")
    above = audit(
        nudged, dataset, symmetries=("translation",), seed=2, rtol=0.0, atol=worst * 1.001
    )
    below = audit(
        nudged, dataset, symmetries=("translation",), seed=2, rtol=0.0, atol=worst * 0.999
    )
    assert above.holds("translation") and not below.holds("translation")
    failed = below.molecules[
        (below.molecules["symmetry"] == "translation") & ~below.molecules["passed"]
    ]
    assert (failed["abs_deviation"] > worst * 0.999).all() and len(failed) >= 1


def small_molecules() -> Molecules:
    """Three molecules of 1, 3 and 4 atoms of mixed elements, away from the origin."""
    rng = np.random.default_rng(4)
    return Molecules.from_conformers(
        [
            Conformer(rng.normal(size=(n, 3)) + 5.0, rng.normal(size=(n, 2)), z)
            for n, z in ((1, [6]), (3, [8, 1, 1]), (4, [6, 1, 1, 7]))
        ]
    )


def centred(molecules: Molecules) -> list[np.ndarray]:
    """A per-atom vector output that turns and renumbers with the molecule: r - centroid."""
    return [piece - piece.mean(axis=0) for piece in molecules.split(molecules.positions)]


def ragged(pieces: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([p.reshape(-1) for p in pieces]), np.array([p.size for p in pieces])


def test_segment_reduce_fills_empty_segments_and_reduces_the_others():
    values = np.array([3.0, 1.0, 5.0, 2.0, 4.0])
    np.testing.assert_array_equal(
        segment_reduce(np.maximum, values, np.array([2, 0, 3, 0]), -1.0), [3.0, -1.0, 5.0, -1.0]
    )
    ok = segment_reduce(np.logical_and, values > 1.5, np.array([1, 0, 4]), True)
    assert ok.tolist() == [True, True, False]


def test_compare_invariant_outputs_by_hand():
    molecules = small_molecules()
    copies = audit_batch(molecules, 0, ("translation", "rotation"), 2, 0)[1]
    base = np.array([1.0, -2.0, 4.0])
    moved = base[copies.owner].copy()
    moved[5] += 0.5  # copy 5: molecule 1, translation, sample 1
    values, lengths = ragged([*base[:, None], *moved[:, None]])
    absolute, relative, passed, finite = compare(
        "invariant", values, lengths, 3, copies, molecules.counts, rtol=0.0, atol=0.1
    )
    expected = np.zeros(len(copies.owner))
    expected[5] = 0.5
    np.testing.assert_allclose(absolute, expected)
    np.testing.assert_allclose(relative[5], 0.5 / 2.0)
    assert passed.tolist() == [k != 5 for k in range(len(copies.owner))]
    assert finite.all()
    # Within rtol of |expected| it passes: 0.5 <= 0.3 * 2.0.
    assert compare("invariant", values, lengths, 3, copies, molecules.counts, 0.3, 0.1)[2].all()
    # atol=0 with outputs that are exactly 0: an exact match is relative 0, not 0/0.
    zeros = np.zeros_like(values)
    zeros[3 + 5] = 0.5
    relative = compare("invariant", zeros, lengths, 3, copies, molecules.counts, 0.1, 0.0)[1]
    assert relative[5] == np.inf and (np.delete(relative, 5) == 0).all()


def test_compare_vector_outputs_must_turn_and_renumber_with_the_molecule():
    molecules = small_molecules()
    copies = audit_batch(molecules, 0, ("permutation", "rotation", "reflection"), 2, 3)[1]
    values, lengths = ragged(centred(molecules) + centred(copies.molecules))
    absolute, _, passed, _ = compare(
        "vector", values, lengths, 3, copies, molecules.counts, rtol=1e-9, atol=1e-12
    )
    assert passed.all() and absolute.max() < 1e-9
    # Vectors that renumber with the atoms but never turn: only the renumbered copies pass.
    frozen = [
        piece[copies.order[copies.molecules.slices()[k]]]
        for k, piece in enumerate(centred(molecules)[m] for m in copies.owner)
    ]
    values, lengths = ragged(centred(molecules) + frozen)
    _, _, passed, _ = compare("vector", values, lengths, 3, copies, molecules.counts, 1e-9, 1e-12)
    turned = ~np.all(np.isclose(copies.rotation, np.eye(3)), axis=(1, 2))
    assert turned.sum() == 2 * 3 * 2  # two turning symmetries, two samples, three molecules
    # A single atom at its own centroid has the zero vector, which every rotation keeps.
    single = copies.owner == 0
    assert (passed == (~turned | single)).all()


def test_compare_fails_a_changed_size_and_refuses_outputs_that_are_not_per_atom():
    molecules = small_molecules()
    copies = audit_batch(molecules, 0, ("translation",), 1, 0)[1]
    pieces = [np.ones(1), np.ones(1), np.ones(1), np.ones(1), np.ones(2), np.ones(1)]
    values, lengths = ragged(pieces)
    absolute, relative, passed, _ = compare(
        "invariant", values, lengths, 3, copies, molecules.counts, 0.0, 1.0
    )
    assert (
        np.isinf(absolute[1]) and np.isinf(relative[1]) and passed.tolist() == [True, False, True]
    )
    with pytest.raises(ValueError, match=r"needs 3 values \(a vector\) per atom, but molecule 1"):
        compare("vector", *ragged(pieces), 3, copies, molecules.counts, 0.0, 1.0)
    values[2] = np.nan
    finite = compare("invariant", values, lengths, 3, copies, molecules.counts, 0.0, 1.0)[3]
    assert finite.tolist() == [True, True, False, True, True, True]


def test_a_vector_s_tolerance_scales_with_the_whole_vector_not_each_component():
    def forces(r, x):
        # Exact -grad of harmonic pair springs in float32: rounding follows each force's
        # size, so a turned force's near-zero component carries ~eps32 * |F| of it.
        r = (r - r.mean(axis=0)).astype(np.float32)
        d = r[:, None] - r[None]
        dist = np.sqrt((d**2).sum(-1) + np.eye(len(r), dtype=np.float32))
        g = np.float32(200.0) * (dist - np.float32(1.5)) / dist * (dist < 2.0)
        np.fill_diagonal(g, 0)
        return -(g[:, :, None] * d).sum(1)

    forces.dtype = "float32"
    molecules = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"]
    report = audit(forces, molecules, output="vector", symmetries=["rotation", "reflection"])
    assert report.holds("rotation") and report.holds("reflection")
    # Still broken where the vectors do not turn.
    frozen = audit(lambda r, x: r * 0 + [1.0, 0.0, 0.0], ["CCO"], output="vector")
    assert not frozen.holds("rotation")


@pytest.mark.parametrize("output", ["per_atom", "vector"])
def test_a_molecule_a_per_atom_target_fails_on_is_skipped_not_a_shape_error(output):
    def target(r, x):
        if len(r) > 10:
            raise ValueError("too big for this model")
        return r - r.mean(axis=0)  # three values per atom: a vector, or per-atom values

    report = audit(target, ["CCO", "c1ccccc1O"], output=output, symmetries=["translation"])
    assert report.skipped.values.tolist() == [["c1ccccc1O", "ValueError: too big for this model"]]
    assert report.holds("translation")
