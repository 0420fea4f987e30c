"""What the model test files share: the model zoo, what each model holds by construction, and
helpers that move molecules or stack them for `predict_arrays`.

Each test file makes its own ``conformers`` / ``dataset`` fixtures from `drug_conformers` and
`labelled`, so that a file runs alone as it runs in the whole suite.
"""

from __future__ import annotations

import numpy as np
from conftest import DRUG_LIKE

from dc_invariant import Conformer, ConformerFeaturizer
from dc_invariant.models import (
    DenseModel,
    PermutationInvariantModel,
    RotationInvariantModel,
    SchNetModel,
    TranslationInvariantModel,
)
from dc_invariant.symmetry import (
    mixing_permutation,
    random_reflection,
    random_rotation,
    random_translation,
    transform,
)


def drug_conformers() -> list[Conformer]:
    """`DRUG_LIKE` featurized with seed 1 (a fresh list each call)."""
    return list(ConformerFeaturizer(random_seed=1).featurize(DRUG_LIKE))


def first_four() -> list[Conformer]:
    """The first four of `DRUG_LIKE` featurized alone with seed 1 (a fresh list each call)."""
    return list(ConformerFeaturizer(random_seed=1).featurize(DRUG_LIKE[:4]))


def labelled(dc, conformers):
    """The conformers as a NumpyDataset with a label that follows size and oxygen count."""
    y = np.array([[0.3 * c.n_atoms + float((c.atomic_numbers == 8).sum())] for c in conformers])
    return dc.data.NumpyDataset(np.array(conformers, dtype=object), y, ids=np.array(DRUG_LIKE))


SMALL_SCHNET = {"n_atom_basis": 16, "n_filters": 16, "n_interactions": 2, "n_rbf": 12}


MODELS = {
    "dense": lambda **kw: DenseModel(n_atoms=50, **kw),
    "permutation": PermutationInvariantModel,
    "translation": TranslationInvariantModel,
    "rotation": RotationInvariantModel,
    "schnet": lambda **kw: SchNetModel(**SMALL_SCHNET, **kw),
}


# What each model is invariant to, by construction.
HOLDS = {
    "dense": set(),
    "permutation": {"permutation"},
    "translation": {"permutation", "translation"},
    "rotation": {"permutation", "translation", "rotation", "reflection"},
    "schnet": {"permutation", "translation", "rotation", "reflection"},
}


TOLERANCE = {"float64": 1e-9, "float32": 1e-4}


def as_dataset(dc, items):
    return dc.data.NumpyDataset(np.array(items, dtype=object))


def stacked(conformers):
    """The arguments of `predict_arrays` for these molecules."""
    return (
        np.concatenate([c.positions for c in conformers]),
        np.concatenate([c.features for c in conformers]),
        np.concatenate([c.atomic_numbers for c in conformers]),
        [c.n_atoms for c in conformers],
    )


def transformed(conformers, symmetry: str, seed: int):
    rng = np.random.default_rng(seed)
    out = []
    for c in conformers:
        if symmetry == "permutation":
            out.append(transform(c, permutation=mixing_permutation(c.atomic_numbers, rng)))
        elif symmetry == "translation":
            out.append(transform(c, translation=random_translation(rng, 10.0)))
        elif symmetry == "rotation":
            out.append(transform(c, rotation=random_rotation(rng)))
        else:
            out.append(transform(c, rotation=random_reflection(rng)))
    return out


def relative_deviation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) / np.maximum(np.abs(a), 1e-12)


ATOM_ARRAYS = ("positions", "features", "atomic_numbers")


def objects(items):
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out
