"""Hyperparameters of the torch models, checked once (models/settings.py)."""

import numpy as np
import pytest

from dc_invariant.models import DenseModel, RotationInvariantModel, SchNetModel


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: RotationInvariantModel(mode="ranking"), ValueError, "mode must be one of"),
        (lambda: RotationInvariantModel(dtype="float16"), ValueError, "dtype must be one of"),
        (
            lambda: RotationInvariantModel(activation="gelu"),
            ValueError,
            "activation must be one of",
        ),
        (lambda: RotationInvariantModel(n_tasks=0), ValueError, "n_tasks == 0, must be >= 1"),
        (lambda: RotationInvariantModel(n_features=2.5), TypeError, "n_features must be an inst"),
        (lambda: RotationInvariantModel(hidden=0), ValueError, "hidden == 0, must be >= 1"),
        (lambda: RotationInvariantModel(seed=-1), ValueError, "seed == -1, must be >= 0"),
        (lambda: RotationInvariantModel(seed=True), TypeError, "seed must be an int"),
        (lambda: RotationInvariantModel(cutoff=float("nan")), ValueError, "finite"),
        (
            lambda: RotationInvariantModel(mode="classification", n_classes=1),
            ValueError,
            "n_classes == 1, must be >= 2",
        ),
        (lambda: DenseModel(n_atoms=0), ValueError, "n_atoms == 0, must be >= 1"),
        (lambda: SchNetModel(pooling="max"), ValueError, "pooling must be one of"),
        (lambda: SchNetModel(cutoff=-1.0), ValueError, r"cutoff \(Å\) == -1.0, must be > 0"),
        (lambda: SchNetModel(n_interactions=0), ValueError, "n_interactions == 0, must be >= 1"),
        (lambda: SchNetModel(n_rbf=np.int64(1)), ValueError, "n_rbf == 1, must be >= 2"),
        (lambda: SchNetModel(standardize="no"), TypeError, "standardize must be True or False"),
    ],
)
def test_bad_hyperparameters(make, error, match):
    with pytest.raises(error, match=match):
        make()
