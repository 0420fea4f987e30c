"""The tutorial's four networks as DeepChem models: the NumPy reference, sizes, centring."""

import numpy as np
import pytest
from model_zoo import MODELS, as_dataset, drug_conformers, relative_deviation, transformed

from dc_invariant import Conformer
from dc_invariant.models import DenseModel, PermutationInvariantModel
from dc_invariant.reference import NETWORKS, tutorial_case
from dc_invariant.symmetry import random_translation, transform


@pytest.fixture(scope="module")
def conformers() -> list[Conformer]:
    return drug_conformers()


@pytest.mark.parametrize("name", ["dense", "permutation", "translation", "rotation"])
def test_float64_models_reproduce_the_numpy_reference(dc, name):
    case = tutorial_case()
    make = {"dense": lambda **kw: DenseModel(n_atoms=12, **kw)}.get(name, MODELS[name])
    model = make(n_features=2, dtype="float64")
    model.load_reference_weights(case.weights[name])
    molecule = Conformer(case.r, case.x, np.array([6] * 4 + [1] * 8))
    for r in (case.r, case.permuted, case.translated, case.rotated):
        expected = NETWORKS[name](r, case.x, *case.weights[name])
        got = model.predict(as_dataset(dc, [Conformer(r, case.x, molecule.atomic_numbers)]))
        assert got.dtype == np.float64
        assert abs(got[0, 0] - expected) <= 1e-10 * abs(expected)


def test_reference_weights_refuse_a_model_computing_another_function():
    weights = tutorial_case().weights["rotation"]
    for changed in ({"cutoff": 3.0}, {"activation": "relu"}):
        model = MODELS["rotation"](n_features=2, dtype="float64", **changed)
        with pytest.raises(ValueError, match="its outputs would not be the reference's"):
            model.load_reference_weights(weights)  # took them, and was off by 164%


def test_negative_control_a_network_reading_raw_coordinates_fails(dc, conformers):
    # PermutationInvariantModel's first layer reads raw x, y, z: moving or turning the
    # molecule must change its output, or the invariance checks above could not fail.
    model = PermutationInvariantModel(dtype="float64")
    base = model.predict(as_dataset(dc, conformers)).reshape(-1)
    for symmetry in ("translation", "rotation"):
        moved = model.predict(as_dataset(dc, transformed(conformers, symmetry, seed=1))).reshape(-1)
        assert (relative_deviation(base, moved) > 1e-3).mean() > 0.5


@pytest.mark.parametrize("name", ["translation", "rotation", "schnet"])
def test_float32_pair_models_survive_large_translations(dc, conformers, name):
    # Each centres molecules in float64 before the cast; without it float32 keeps ~1e-4 Å
    # of a coordinate 1,000 Å out, and predictions move by ~1e-5 (relative) and more.
    model = MODELS[name](seed=2)
    base = model.predict(as_dataset(dc, conformers)).reshape(-1)
    rng = np.random.default_rng(0)
    far = [transform(c, translation=random_translation(rng, 1e3)) for c in conformers]
    moved = model.predict(as_dataset(dc, far)).reshape(-1)
    assert relative_deviation(base, moved).max() < 1e-6


def test_dense_model_rejects_molecules_above_its_size(dc, conformers):
    model = DenseModel(n_atoms=10)
    with pytest.raises(
        ValueError, match=r"molecule 0 \(id .*\) .* has \d+ atoms, more than .*n_atoms=10"
    ):
        model.predict(as_dataset(dc, [max(conformers, key=lambda c: c.n_atoms)]))
