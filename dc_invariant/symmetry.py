"""Seeded group elements (rotations, reflections, translations, renumberings) and their action.

Everything is built in float64: a transform must not add more error than the model it tests.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from dc_invariant._types import FloatArray, IntArray
from dc_invariant.conformer import Conformer
from dc_invariant.molecules import segment_arange, starts_of

__all__ = [
    "haar_rotations",
    "householder_reflections",
    "mixes",
    "mixing_permutation",
    "random_reflection",
    "random_rotation",
    "random_translation",
    "transform",
]


def haar_rotations(normals: FloatArray) -> FloatArray:
    """Haar-uniform rotations (K, 3, 3), det +1, from standard normals of shape (K, 9).

    QR of a Gaussian matrix with the signs of R's diagonal fixed is Haar-distributed on O(3)
    (Mezzadri 2007); flipping one column where det is -1 keeps it uniform on SO(3).

    Examples
    --------
    >>> q = haar_rotations(np.random.default_rng(0).normal(size=(4, 9)))
    >>> np.allclose(q @ q.transpose(0, 2, 1), np.eye(3)), np.allclose(np.linalg.det(q), 1)
    (True, True)
    """
    q, r = np.linalg.qr(np.asarray(normals, dtype=np.float64).reshape(-1, 3, 3))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1.0
    return q


def householder_reflections(normals: FloatArray) -> FloatArray:
    """Reflections ``I - 2 v vᵀ`` (K, 3, 3) across random planes, from normals of shape (K, 3).

    Unlike ``x -> -x`` they mix coordinates, so they test numerical precision as well as
    handedness.
    """
    v = np.asarray(normals, dtype=np.float64).reshape(-1, 3)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    return np.eye(3) - 2.0 * v[:, :, None] * v[:, None, :]


def random_rotation(rng: np.random.Generator) -> FloatArray:
    """A Haar-uniform random rotation matrix (3, 3), det +1 (see `haar_rotations`)."""
    return haar_rotations(rng.normal(size=(1, 9)))[0]


def random_reflection(rng: np.random.Generator) -> FloatArray:
    """A Householder reflection across a random plane (3, 3), det -1."""
    return householder_reflections(rng.normal(size=(1, 3)))[0]


def random_translation(rng: np.random.Generator, scale: float = 10.0) -> FloatArray:
    """A translation vector (3,) of length ``scale`` Å in a uniformly random direction."""
    v = rng.normal(size=3)
    return scale * v / np.linalg.norm(v)


def mixing_permutation(atomic_numbers: IntArray, rng: np.random.Generator) -> IntArray:
    """A random atom order that moves at least one atom onto a position held by another element.

    Swapping two identical atoms leaves the input unchanged and proves nothing, so a
    permutation is redrawn until it `mixes`. Molecules of a single element get any
    non-identity permutation (or the identity for one atom).
    """
    z = np.asarray(atomic_numbers)
    n = len(z)
    if n < 2:
        return np.arange(n)
    while True:
        order = rng.permutation(n)
        if mixes(order, z, [0], [n])[0]:
            return order


def mixes(
    orders: IntArray, atomic_numbers: IntArray, starts: IntArray, counts: IntArray
) -> np.ndarray:
    """For consecutive atom orders, one per molecule: does each prove something?

    ``orders`` holds, molecule after molecule, local atom indices of molecules that start at
    ``starts`` in ``atomic_numbers`` and have ``counts`` atoms. An order proves something when
    it moves an atom onto a position held by another element, and, when the heavy atoms are
    of two elements or more, when it changes their order too: a target that drops hydrogens
    (``CoulombMatrix(remove_hydrogens=True)``) would otherwise see the same molecule when only
    hydrogens trade places with heavy atoms. For a molecule of one element, when it is not the
    identity; a single atom can only stay.
    """
    counts = np.asarray(counts, dtype=np.int64)
    first = starts_of(counts)
    local = segment_arange(np.zeros(len(counts), np.int64), counts)
    atoms = np.repeat(np.asarray(starts, dtype=np.int64), counts)
    z = np.asarray(atomic_numbers)
    moved, original = z[atoms + orders], z[atoms + local]
    changes_element = np.logical_or.reduceat(moved != original, first)
    not_identity = np.logical_or.reduceat(orders != local, first)
    one_element = np.maximum.reduceat(original, first) == np.minimum.reduceat(original, first)
    # The heavy atoms in their new order against the old, molecule by molecule (a molecule
    # has as many heavy atoms either way).
    heavy = original > 1
    segment = np.repeat(np.arange(len(counts)), counts)
    n_heavy = np.bincount(segment[heavy], minlength=len(counts))
    heavy_first = starts_of(n_heavy)
    differs = moved[moved > 1] != original[heavy]
    heavy_moved = np.zeros(len(counts), dtype=bool)
    some = n_heavy > 0
    if differs.size:
        heavy_moved[some] = np.logical_or.reduceat(differs, heavy_first[some])
    lightest = np.full(len(counts), 119)
    heaviest = np.zeros(len(counts), dtype=np.int64)
    np.minimum.at(lightest, segment[heavy], original[heavy])
    np.maximum.at(heaviest, segment[heavy], original[heavy])
    mixed_heavy = some & (lightest < heaviest)
    proves = changes_element & (heavy_moved | ~mixed_heavy)
    return np.where(one_element, not_identity | (counts < 2), proves)


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
