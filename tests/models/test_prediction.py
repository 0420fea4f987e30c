"""Prediction beyond DeepChem's predict: checked inputs named by molecule, and forces."""

import numpy as np
import pytest
from model_zoo import MODELS, as_dataset, drug_conformers, first_four, labelled, objects

from dc_invariant import Conformer
from dc_invariant.models import RotationInvariantModel
from dc_invariant.symmetry import mixing_permutation, random_rotation, transform


@pytest.fixture(scope="module")
def conformers() -> list[Conformer]:
    return drug_conformers()


@pytest.fixture(scope="module")
def dataset(dc, conformers):
    return labelled(dc, conformers)


@pytest.fixture(scope="module", name="first_four")
def first_four_fixture() -> list[Conformer]:
    return first_four()


def test_bad_datapoints_name_the_molecule(dc, conformers):
    model = RotationInvariantModel()
    good = conformers[0]
    wide = Conformer(good.positions, np.zeros((good.n_atoms, 4)), good.atomic_numbers, "wide")
    broken = Conformer(good.positions.copy(), good.features, good.atomic_numbers, "nan")
    broken.positions[0, 0] = np.nan
    cases = [
        (np.array([]), "molecule 1 .* is ndarray, not a Conformer"),
        (wide, r"molecule 1 .*\('wide'\) has 4 features per atom, the model expects n_features=11"),
        (broken, r"molecule 1 .*\('nan'\) has NaN or infinite coordinates"),
    ]
    for bad, match in cases:
        X = np.empty(3, dtype=object)
        X[0], X[1], X[2] = good, bad, good
        with pytest.raises(ValueError, match=match):
            model.predict(dc.data.NumpyDataset(X))


@pytest.mark.parametrize("name", ["translation", "rotation", "schnet"])
def test_forces_are_the_energy_gradient_and_equivariant(dc, conformers, name):
    model = MODELS[name](dtype="float64", seed=1)
    molecules = conformers[:4]
    forces = model.predict_forces(as_dataset(dc, molecules))
    assert [f.shape for f in forces] == [(c.n_atoms, 3) for c in molecules]
    # Finite differences of the energy on one coordinate of each molecule.
    for c, f in zip(molecules, forces):
        step = 1e-5
        plus, minus = c.positions.copy(), c.positions.copy()
        plus[1, 2] += step
        minus[1, 2] -= step
        energies = model.predict(
            as_dataset(dc, [Conformer(p, c.features, c.atomic_numbers) for p in (plus, minus)])
        )
        assert f[1, 2] == pytest.approx(
            -(energies[0, 0] - energies[1, 0]) / (2 * step), rel=1e-5, abs=1e-8
        )
        np.testing.assert_allclose(f.sum(axis=0), 0.0, atol=1e-9)  # translation invariance
    rng = np.random.default_rng(3)
    rotation = random_rotation(rng)
    turned = model.predict_forces(
        as_dataset(dc, [transform(c, rotation=rotation) for c in molecules])
    )
    for f, g in zip(forces, turned):
        # Forces of a rotation-invariant energy turn with the molecule; the translation
        # network's energy is not rotation invariant, so its forces must not.
        rotates = np.allclose(g, f @ rotation.T, atol=1e-9)
        assert rotates == (name != "translation")
    order = mixing_permutation(molecules[0].atomic_numbers, rng)
    [renumbered] = model.predict_forces(
        as_dataset(dc, [transform(molecules[0], permutation=order)])
    )
    np.testing.assert_allclose(renumbered, forces[0][order], atol=1e-9)


def test_forces_undo_the_label_normalisation(dc, dataset):
    normalise = dc.trans.NormalizationTransformer(transform_y=True, dataset=dataset)
    model = RotationInvariantModel(dtype="float64")
    plain = model.predict_forces(dataset)
    scaled = model.predict_forces(dataset, transformers=[normalise])
    np.testing.assert_allclose(scaled[0], plain[0] * normalise.y_stds[0], rtol=1e-12)
    with pytest.raises(ValueError, match="use a regression model"):
        RotationInvariantModel(mode="classification").predict_forces(dataset)


def test_predict_forces_takes_a_list_or_one_conformer(dc, first_four):
    model = RotationInvariantModel(dtype="float64", seed=2)
    from_dataset = model.predict_forces(dc.data.NumpyDataset(objects(first_four)))
    from_list = model.predict_forces(first_four)
    assert len(from_list) == 4
    for a, b in zip(from_dataset, from_list):
        np.testing.assert_array_equal(a, b)
    (single,) = model.predict_forces(first_four[2])
    np.testing.assert_array_equal(single, from_dataset[2])
    with pytest.raises(TypeError, match="item 1 is a str"):
        model.predict_forces([first_four[0], "CCO"])
