"""Seeded group elements (rotations, reflections, translations, renumberings) and their action.

Everything is built in float64: a transform must not add more error than the model it tests.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from dc_invariant._types import FloatArray, IntArray
from dc_invariant.conformer import Conformer


def random_rotation(rng: np.random.Generator) -> FloatArray:
    """A Haar-uniform random rotation matrix (3, 3), det +1.

    QR of a Gaussian matrix with the signs of R's diagonal fixed is Haar-distributed on O(3)
    (Mezzadri 2007); flipping one column when det is -1 keeps it uniform on SO(3).
    """
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def random_reflection(rng: np.random.Generator) -> FloatArray:
    """A Householder reflection ``I - 2 v vᵀ`` across a random plane (3, 3), det -1.

    Unlike ``x -> -x`` it mixes coordinates, so it tests numerical precision as well as
    handedness.
    """
    v = rng.normal(size=3)
    v /= np.linalg.norm(v)
    return np.eye(3) - 2.0 * np.outer(v, v)


def random_translation(rng: np.random.Generator, scale: float = 10.0) -> FloatArray:
    """A translation vector (3,) of length ``scale`` Å in a uniformly random direction."""
    v = rng.normal(size=3)
    return scale * v / np.linalg.norm(v)


def mixing_permutation(atomic_numbers: IntArray, rng: np.random.Generator) -> IntArray:
    """A random atom order that moves at least one atom onto a position held by another element.

    Swapping two identical atoms leaves the input unchanged and proves nothing, so a
    permutation is redrawn until some atom lands where a different element was. Molecules
    of a single element get any non-identity permutation (or the identity for one atom).
    """
    z = np.asarray(atomic_numbers)
    n = len(z)
    if n < 2:
        return np.arange(n)
    mixed_elements = len(np.unique(z)) > 1
    while True:
        order = rng.permutation(n)
        if mixed_elements and (z[order] != z).any():
            return order
        if not mixed_elements and (order != np.arange(n)).any():
            return order


def transform(
    conformer: Conformer,
    *,
    rotation: Optional[FloatArray] = None,
    translation: Optional[FloatArray] = None,
    permutation: Optional[IntArray] = None,
) -> Conformer:
    """Apply ``r -> rotation @ r + translation`` and renumber atoms as ``permutation``.

    The new atom ``k`` is the old atom ``permutation[k]``. Features and atomic numbers are
    renumbered with the coordinates; the input is not modified.
    """
    positions = conformer.positions
    features, numbers = conformer.features, conformer.atomic_numbers
    if permutation is not None:
        positions, features, numbers = (
            positions[permutation],
            features[permutation],
            numbers[permutation],
        )
    if rotation is not None:
        positions = positions @ np.asarray(rotation, dtype=np.float64).T
    if translation is not None:
        positions = positions + np.asarray(translation, dtype=np.float64)
    return Conformer(positions, features, numbers, smiles=conformer.smiles)
