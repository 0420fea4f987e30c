"""What the audit test files share: the drug-like dataset and two hand-made targets, one
invariant by construction and one that reads raw coordinates."""

from __future__ import annotations

import numpy as np
from conftest import DRUG_LIKE

from dc_invariant import ConformerFeaturizer


def drug_dataset(dc):
    """`DRUG_LIKE` featurized with seed 2, ids = SMILES."""
    X = ConformerFeaturizer(random_seed=2).featurize(DRUG_LIKE)
    return dc.data.NumpyDataset(X, ids=np.array(DRUG_LIKE))


ALL = ("permutation", "translation", "rotation", "reflection")


def spread(r: np.ndarray, x: np.ndarray) -> float:
    """Known-good: sum of squared distances to the centroid, weighted by features."""
    return float((((r - r.mean(axis=0)) ** 2).sum(axis=1) * (1 + x.sum(axis=1))).sum())


def raw_x(r: np.ndarray, x: np.ndarray) -> float:
    """Known-broken: reads raw x coordinates."""
    return float(r[:, 0].sum())
