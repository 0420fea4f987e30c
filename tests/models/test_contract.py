"""The model contract: a Protocol any model can satisfy, and predict_arrays built on it."""

import numpy as np
import pytest

from dc_invariant.models import RotationInvariantModel, SchNetModel
from dc_invariant.models.contract import MoleculeModel, StackedArrays
from dc_invariant.molecules import Molecules


class CentroidDistance(StackedArrays):
    """A user's own model: mean distance of the atoms to their centroid."""

    n_tasks = 1

    def predict_molecules(self, molecules, *, forces=False, task=0):
        centred = molecules.centred_positions()
        pieces = molecules.split(np.linalg.norm(centred, axis=1))
        return np.array([[piece.mean()] for piece in pieces])


def test_the_package_s_models_and_a_user_s_own_satisfy_the_contract():
    assert isinstance(RotationInvariantModel(), MoleculeModel)
    assert isinstance(SchNetModel(), MoleculeModel)
    assert isinstance(CentroidDistance(), MoleculeModel)
    assert not isinstance(object(), MoleculeModel)


def test_predict_arrays_checks_the_arrays_once_and_hands_over_molecules():
    positions = np.array([[0.0, 0, 0], [2.0, 0, 0], [0.0, 0, 0], [0.0, 3, 0], [0.0, 0, 0]])
    out = CentroidDistance().predict_arrays(positions, np.ones((5, 1)), np.ones(5, int), [2, 3])
    np.testing.assert_allclose(out, [[1.0], [np.mean([1.0, 2.0, 1.0])]])
    positions[3, 1] = np.nan
    with pytest.raises(ValueError, match="molecule 1 has NaN or infinite coordinates"):
        CentroidDistance().predict_arrays(positions, np.ones((5, 1)), np.ones(5, int), [2, 3])
    batch = Molecules.from_arrays(np.zeros((2, 3)), np.ones((2, 1)), [1, 1], [1, 1], 1)
    assert CentroidDistance().predict_molecules(batch).shape == (2, 1)
