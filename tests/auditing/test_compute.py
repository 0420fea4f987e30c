"""The audit end to end (compute.py): the tutorial's conclusions, controls, known-good and
known-broken targets, output kinds, chunking."""

import numpy as np
import pandas as pd
import pytest
from audit_helpers import ALL, drug_dataset, raw_x, spread
from conftest import DRUG_LIKE

from dc_invariant.auditing import assert_invariant, audit
from dc_invariant.models import (
    DenseModel,
    PermutationInvariantModel,
    RotationInvariantModel,
    TranslationInvariantModel,
)


@pytest.fixture(scope="module")
def dataset(dc):
    return drug_dataset(dc)


@pytest.mark.parametrize(
    ("make", "holding"),
    [
        (lambda: DenseModel(n_atoms=50, dtype="float64"), set()),
        (lambda: PermutationInvariantModel(dtype="float64"), {"permutation"}),
        (lambda: TranslationInvariantModel(dtype="float64"), {"permutation", "translation"}),
        (lambda: RotationInvariantModel(dtype="float64"), set(ALL)),
    ],
)
def test_tutorial_networks_give_the_tutorials_conclusions(dataset, make, holding):
    report = audit(make(), dataset, seed=1)
    assert {s for s in ALL if report.holds(s)} == holding
    assert len(report.molecules) == len(DRUG_LIKE) * 5  # four symmetries and the control
    assert report.geometry_blind is False  # every one of them reads the coordinates
    assert report.n_inputs == len(DRUG_LIKE) and report.skipped.empty


def test_identity_control_gives_zero_deviation(dataset):
    report = audit(RotationInvariantModel(), dataset, symmetries=("identity",))
    rows = report.molecules[report.molecules["symmetry"] == "identity"]
    assert len(rows) == len(dataset) and (rows["abs_deviation"] == 0.0).all()
    assert report.summary["verdict"].tolist() == ["holds"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_checker_on_known_good_and_known_broken_functions(dataset, dtype):
    def good(r, x):
        return np.asarray(spread(r.astype(dtype), x), dtype=dtype)

    def bad(r, x):
        return np.asarray(raw_x(r.astype(dtype), x), dtype=dtype)

    tolerance = {"rtol": 1e-4, "atol": 1e-5} if dtype is np.float32 else {}
    assert all(audit(good, dataset, **tolerance).holds(s) for s in ("permutation", "rotation"))
    broken = audit(bad, dataset, **tolerance)
    assert not broken.holds("translation") and not broken.holds("rotation")
    assert broken.holds("permutation")  # a sum over atoms does not care about order


def test_assert_invariant_raises_with_the_numbers(dataset):
    assert_invariant(spread, dataset, symmetries=("rotation", "translation"))
    with pytest.raises(AssertionError, match=r"broken: translation, rotation[\s\S]*rel dev"):
        assert_invariant(raw_x, dataset, symmetries=("translation", "rotation"))


def test_chunk_size_changes_nothing_but_memory(dataset):
    many = list(dataset.X) * 20  # 200 molecules: several 64-molecule random-number blocks
    whole = audit(spread, many, seed=3, chunk_size=1000)
    pieces = audit(spread, many, seed=3, chunk_size=3)  # rounded up to one block, 64
    pd.testing.assert_frame_equal(whole.molecules, pieces.molecules)
    with pytest.raises(ValueError, match="chunk_size == 0, must be >= 1"):
        audit(spread, dataset, chunk_size=0)


def test_forces_are_audited_as_vectors(dataset):
    molecules = dataset.select(np.arange(4))
    forces = audit(RotationInvariantModel(dtype="float64"), molecules, output="vector")
    assert all(forces.holds(s) for s in ALL)  # F(gx) = R F(x), atoms renumbered with it
    translation = audit(TranslationInvariantModel(dtype="float64"), molecules, output="vector")
    assert translation.holds("translation") and translation.holds("permutation")
    assert not translation.holds("rotation")

    def spread_forces(r, x):
        return -2.0 * (r - r.mean(axis=0))  # minus the gradient of the spread

    assert audit(spread_forces, molecules, output="vector").holds("rotation")
    # Declared invariant, the same vectors must fail: they turn with the molecule.
    assert not audit(spread_forces, molecules, symmetries=("rotation",)).holds("rotation")


def test_per_atom_and_pseudoscalar_outputs():
    smiles = ["CCO", "CC(=O)Nc1ccc(O)cc1", "C[C@@H](C(=O)O)N"]

    def distances(r, x):
        return np.linalg.norm(r - r.mean(axis=0), axis=1)

    assert audit(distances, smiles, output="per_atom").holds("permutation")
    assert not audit(distances, smiles, symmetries=("permutation",)).holds("permutation")

    def handedness(r, x):
        # Signed volume of the first three atoms around the centroid: flips in a mirror.
        c = r - r.mean(axis=0)
        return np.dot(c[0], np.cross(c[1], c[2]))

    symmetries = ("translation", "rotation", "reflection")
    pseudo = audit(handedness, smiles, symmetries=symmetries, output="pseudoscalar")
    assert all(pseudo.holds(s) for s in symmetries)
    assert not audit(handedness, smiles, symmetries=("reflection",)).holds("reflection")
    with pytest.raises(ValueError, match="output must be one of"):
        audit(handedness, smiles, output="tensor")
