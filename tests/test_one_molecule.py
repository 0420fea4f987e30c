"""A single SMILES, Mol or Conformer given where a collection is expected is one molecule."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem

from dc_invariant import ConformerFeaturizer, audit, conformer_sensitivity
from dc_invariant.auditing.inputs import prepare
from dc_invariant.models import RotationInvariantModel


def radius(positions: np.ndarray, features: np.ndarray) -> np.ndarray:
    centred = positions - positions.mean(axis=0)
    return np.array([np.sqrt((centred**2).sum(axis=1).mean())])


@pytest.mark.parametrize("one", ["CCO", Chem.MolFromSmiles("CCO")], ids=["smiles", "mol"])
def test_every_entry_point_reads_one_molecule(one):
    assert len(ConformerFeaturizer().featurize(one)) == 1
    prepared = prepare(one)
    assert len(prepared.molecules) == 1 and prepared.molecules[0].n_atoms == 9
    report = audit(radius, one, n_samples=1)
    assert report.n_inputs == 1 and len(report.molecules["id"].unique()) == 1
    sensitivity = conformer_sensitivity(radius, one, n_conformers=2)
    assert len(sensitivity.molecules) == 1


def test_one_conformer_is_one_molecule_too():
    (conformer,) = ConformerFeaturizer().featurize(["CCO"])
    assert len(prepare(conformer).molecules) == 1
    forces = RotationInvariantModel(dtype="float64").predict_forces(conformer)
    assert len(forces) == 1 and forces[0].shape == (9, 3)


def test_a_string_is_never_iterated_as_characters():
    # 'CCO' as characters would be C, C and O: three molecules with ids 'C', 'C', 'O'.
    report = audit(radius, "CCO", n_samples=1)
    assert set(report.molecules["id"]) == {"CCO"}
