"""The tutorial's four one-hidden-layer networks, in plain NumPy, exactly.

Every function maps one molecule — coordinates ``r`` (n_atoms, 3) and features ``x``
(n_atoms, F) — to a scalar energy with weights ``w1, w2, b1, b2`` and a tanh hidden layer.
They differ only in what the hidden layer sees, and that alone decides their symmetries:

========================== ============================== =================================
function                   hidden layer input             unchanged under
========================== ============================== =================================
`dense`                    all atoms' ``[r_i, x_i]``      nothing (fixed atom count only)
                           flattened into one vector
`permutation_invariant`    each atom's ``[r_i, x_i]``,    renumbering atoms
                           then a sum over atoms
`translation_invariant`    each pair's ``[r_j - r_i,      renumbering, shifting
                           x_j]``, summed over pairs
`rotation_invariant`       each pair's ``[|r_j - r_i|²,   renumbering, shifting, rotating
                           x_j]``, summed over pairs      and mirroring (all of E(3))
========================== ============================== =================================

Why: a sum does not depend on the order of its terms, so summing per-atom (or per-pair)
activations forgets the numbering. A difference ``r_j - r_i`` does not change when both atoms
move by the same vector, so it forgets the position. A squared length ``|r_j - r_i|²`` does
not change under any orthogonal map (rotation or reflection) applied to both atoms, so it
forgets orientation *and handedness*: squared distances keep no directional information at
all, which is exactly why this network is rotation invariant — and why it gives mirror-image
molecules (enantiomers) the same energy.

The ``tutorial_*`` helpers replay the tutorial's random draws (``np.random.seed(42)``) so the
numbers it prints can be checked; ``init_*`` are seeded initialisers for new weights.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dc_invariant._types import FloatArray

__all__ = [
    "NETWORKS",
    "TUTORIAL_TABLES",
    "TutorialCase",
    "Weights",
    "dense",
    "init_weights",
    "n_inputs",
    "permutation_invariant",
    "rotation_invariant",
    "translation_invariant",
    "tutorial_case",
    "tutorial_tables",
]


class Weights(NamedTuple):
    """Weights of one network, in the tutorial's argument order ``(w1, w2, b1, b2)``.

    Shapes: ``w1`` (n_inputs, hidden), ``w2`` (hidden,), ``b1`` (hidden,), ``b2`` scalar.
    """

    w1: FloatArray
    w2: FloatArray
    b1: FloatArray
    b2: float


def _pairs(values: FloatArray, x: FloatArray) -> FloatArray:
    """Concatenate per-pair ``values`` (n, n, k) with ``x_j`` broadcast to every pair (n, n, F)."""
    features = np.broadcast_to(x, values.shape[:-1] + x.shape[-1:])
    return np.concatenate((values, features), axis=-1)


def dense(
    r: FloatArray, x: FloatArray, w1: FloatArray, w2: FloatArray, b1: FloatArray, b2: float
) -> float:
    """Dense baseline: one vector of all coordinates and features; no invariance.

    Parameters
    ----------
    r : np.ndarray of shape (n_atoms, 3)
        Coordinates.
    x : np.ndarray of shape (n_atoms, F)
        Atom features.
    w1 : np.ndarray of shape (n_atoms * (3 + F), hidden)
    w2 : np.ndarray of shape (hidden,)
    b1 : np.ndarray of shape (hidden,)
    b2 : float

    Returns
    -------
    float
        The predicted energy.
    """
    inputs = np.concatenate((r, x), axis=1).reshape(-1)
    return np.tanh(inputs @ w1 + b1) @ w2 + b2


def permutation_invariant(
    r: FloatArray, x: FloatArray, w1: FloatArray, w2: FloatArray, b1: FloatArray, b2: float
) -> float:
    """Per-atom hidden layer summed over atoms: invariant to renumbering the atoms.

    ``w1`` has shape (3 + F, hidden); the other arguments are as in `dense`.
    """
    hidden = np.tanh(np.concatenate((r, x), axis=1) @ w1 + b1)
    return hidden.sum(axis=0) @ w2 + b2


def translation_invariant(
    r: FloatArray, x: FloatArray, w1: FloatArray, w2: FloatArray, b1: FloatArray, b2: float
) -> float:
    """Per-pair hidden layer on difference vectors ``r_j - r_i``, summed over all pairs.

    Invariant to renumbering and to translations; difference vectors still turn with the
    molecule, so not to rotations. ``w1`` has shape (3 + F, hidden).
    """
    differences = r[np.newaxis, :, :] - r[:, np.newaxis, :]
    hidden = np.tanh(_pairs(differences, x) @ w1 + b1)
    return hidden.sum(axis=(0, 1)) @ w2 + b2


def rotation_invariant(
    r: FloatArray, x: FloatArray, w1: FloatArray, w2: FloatArray, b1: FloatArray, b2: float
) -> float:
    """Per-pair hidden layer on squared distances ``|r_j - r_i|²``, summed over all pairs.

    Invariant to renumbering, translations, rotations and reflections. ``w1`` has shape
    (1 + F, hidden).
    """
    differences = r[np.newaxis, :, :] - r[:, np.newaxis, :]
    squared = np.sum(differences**2, axis=-1, keepdims=True)
    hidden = np.tanh(_pairs(squared, x) @ w1 + b1)
    return hidden.sum(axis=(0, 1)) @ w2 + b2


NETWORKS = {
    "dense": dense,
    "permutation": permutation_invariant,
    "translation": translation_invariant,
    "rotation": rotation_invariant,
}


def n_inputs(network: str, n_features: int, n_atoms: int | None = None) -> int:
    """Rows of ``w1`` for ``network`` (the dense one also needs ``n_atoms``)."""
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {sorted(NETWORKS)}, got {network!r}")
    if network == "dense":
        if n_atoms is None:
            raise ValueError("the dense network needs n_atoms: its input is flattened")
        return n_atoms * (3 + n_features)
    return (1 if network == "rotation" else 3) + n_features


def init_weights(
    network: str, n_features: int, *, n_atoms: int | None = None, hidden: int = 16, seed: int = 0
) -> Weights:
    """Seeded standard-normal weights for ``network``, as the tutorial draws them.

    Examples
    --------
    >>> w = init_weights("rotation", n_features=2, seed=1)
    >>> w.w1.shape, w.w2.shape, w.b1.shape
    ((3, 16), (16,), (16,))
    """
    rng = np.random.default_rng(seed)
    rows = n_inputs(network, n_features, n_atoms)
    return Weights(
        rng.normal(size=(rows, hidden)),
        rng.normal(size=(hidden,)),
        rng.normal(size=(hidden,)),
        float(rng.normal()),
    )


class TutorialCase(NamedTuple):
    """The tutorial's molecule, its three transformations, and its weights in draw order."""

    r: FloatArray
    x: FloatArray
    permuted: FloatArray
    translated: FloatArray
    rotated: FloatArray
    weights: dict[str, Weights]


def tutorial_case() -> TutorialCase:
    """Replay the tutorial's random draws exactly (legacy ``np.random.seed(42)`` stream).

    Its molecule is 12 random points: 4 "carbons" then 8 "hydrogens", one-hot ``[1, 0]`` /
    ``[0, 1]``. Weights are drawn in the tutorial's order: dense, then permutation (which the
    tutorial reuses for the translation network), then rotation. Its permutation swaps atoms
    0 and 1 — both carbons — and its rotation is 60° about x.
    """
    from scipy.spatial.transform import Rotation

    state = np.random.RandomState(42)
    r = state.rand(12, 3)
    x = np.zeros((12, 2))
    x[:4, 0] = 1
    x[4:, 1] = 1

    def draw(rows: int) -> Weights:
        # The tutorial draws w1, b1, w2, b2 in that order (not the argument order).
        w1 = state.normal(size=(rows, 16))
        b1 = state.normal(size=(16,))
        w2 = state.normal(size=(16,))
        return Weights(w1, w2, b1, float(state.normal()))

    weights = {"dense": draw(12 * 5)}
    weights["permutation"] = weights["translation"] = draw(5)
    weights["rotation"] = draw(3)
    permuted = r.copy()
    permuted[[0, 1]] = r[[1, 0]]
    rotated = Rotation.from_euler("x", 60, degrees=True).apply(r)
    return TutorialCase(r, x, permuted, r + 3.0, rotated, weights)


#: The tutorial's printed outputs: without change, after permutation, after translation,
#: after rotation.
TUTORIAL_TABLES: dict[str, tuple[float, float, float, float]] = {
    "dense": (4.0914311641808805, 2.2352187612800325, -0.15670614466272514, 0.5155425905215244),
    "permutation": (63.42865014451651, 63.42865014451651, 100.6256277697755, 66.30189546860116),
    "translation": (238.78854708962047, 238.78854708962035, 238.78854708962035, 262.5920439748346),
    "rotation": (654.3040623148685, 654.3040623148685, 654.3040623148685, 654.3040623148685),
}


def tutorial_tables() -> dict[str, tuple[float, float, float, float]]:
    """Recompute the tutorial's four tables with the functions of this module."""
    case = tutorial_case()
    tables = {}
    for name, network in NETWORKS.items():
        w = case.weights[name]
        tables[name] = tuple(
            float(network(r, case.x, *w))
            for r in (case.r, case.permuted, case.translated, case.rotated)
        )
    return tables
