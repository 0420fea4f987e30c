"""Transformed copies of molecules, built for whole blocks of molecules at once.

An audit checks each molecule under a few group elements per symmetry. Drawing and applying
them one molecule at a time costs more than a small model's forward pass, so here every
step is vectorised over stacked atom arrays: rotations come from one batched QR, atom orders
from one global sort, coordinates from one batched matrix product. Everything is float64.

Group elements are drawn per block of `BLOCK` consecutive molecules from the generator
``default_rng([seed, block])``, in a fixed layout (every symmetry's draws are made whether or
not it is audited), so the elements of a molecule do not depend on the chunking of the
audit, on where it resumed, or on which other symmetries were asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dc_invariant._types import FloatArray, IntArray
from dc_invariant.molecules import Molecules, segment_arange, segment_ids, starts_of
from dc_invariant.symmetry import haar_rotations, householder_reflections, mixes

__all__ = [
    "BLOCK",
    "Copies",
    "DISTORTION",
    "TUTORIAL_ROTATION",
    "audit_batch",
]

#: Molecules per random-number block (chunks of an audit are whole blocks).
BLOCK = 64

#: Every symmetry that has draws, in the fixed order of the draw layout.
_DRAWN = ("permutation", "translation", "rotation", "reflection")

#: The positive control: every atom displaced by a seeded Gaussian of this standard
#: deviation per coordinate (Å). Small enough to keep every bond recognisable; large enough
#: that a trained energy model, whose ~75 eV output moves by only a few float32 units in the
#: last place under 0.05 Å (5 epochs of SchNet on QM9), moves clearly beyond its noise.
DISTORTION = 0.1

# The tutorial's own rotation: 60 degrees about x.
TUTORIAL_ROTATION = np.array(
    [[1.0, 0.0, 0.0], [0.0, 0.5, -np.sqrt(3) / 2], [0.0, np.sqrt(3) / 2, 0.5]]
)


@dataclass
class Copies:
    """Transformed copies of a block of molecules, ordered molecule, symmetry, sample.

    Copy ``k`` is ``r -> rotation[k] @ r + translation[k]`` applied to molecule
    ``owner[k]``, whose atoms are renumbered so that its atom ``a`` is the original atom
    ``order[atom_start[k] + a]``.
    """

    molecules: Molecules
    owner: np.ndarray  # (n_copies,)
    rotation: np.ndarray  # (n_copies, 3, 3)
    translation: np.ndarray  # (n_copies, 3)
    order: np.ndarray  # (n_copy_atoms,) local atom index in the original molecule


def audit_batch(
    molecules: Molecules, first_block: int, symmetries: Sequence[str], n_samples: int, seed: int
) -> tuple[Molecules, Copies, Copies]:
    """One batch of a chunk's molecules, then their transformed copies, then their controls.

    Copies: ``n_samples`` elements of each symmetry per molecule. Rotations: the tutorial's
    60° about x first (with two samples or more), then Haar-random. Reflections: a
    Householder mirror and a rotation times -1 in turn (plain x -> -x is exact in floating
    point and would prove nothing about precision). Translations alternate 10 Å and
    1,000 Å, the second to expose float32 cancellation. Renumberings always move an atom
    onto a position held by another element (swapping identical atoms proves nothing);
    molecules of one element get a non-identity order. ``"identity"`` gives unchanged copies.

    Controls: one non-rigidly distorted copy per molecule, the geometry-blindness control. A
    target that reads coordinates must change its output; one whose output stays put
    ignores the geometry, and its rigid-motion verdicts hold trivially. Drawn from its own
    stream, ``default_rng([seed, block, 1])``, so the symmetry draws stay as they were.

    The molecules are numbered in blocks of `BLOCK` from ``first_block``, each drawing from
    its own generators, so a molecule's copies do not depend on the chunking. Every array
    of the batch is built in one pass over the chunk; the returned copies' and controls'
    molecules are views of it.
    """
    n, n_atoms = len(molecules), len(molecules.positions)
    blocks = [(b, min(b + BLOCK, n), first_block + k) for k, b in enumerate(range(0, n, BLOCK))]
    owner, rotation, translation, local = _draw_elements(
        molecules, blocks, symmetries, n_samples, seed
    )
    n_copies = len(owner)
    copy_counts = molecules.counts[owner]
    n_copy_atoms = int(copy_counts.sum())

    positions = np.empty((2 * n_atoms + n_copy_atoms, 3))
    positions[:n_atoms] = molecules.positions
    atom_copy = segment_ids(copy_counts)
    source = np.repeat(molecules.starts[owner], copy_counts) + local
    copied = positions[n_atoms : n_atoms + n_copy_atoms]
    np.einsum("aij,aj->ai", rotation[atom_copy], molecules.positions[source], out=copied)
    copied += translation[atom_copy]
    displacement = np.concatenate(
        [_displacement(molecules.range(lo, hi), block, seed) for lo, hi, block in blocks]
    )
    np.add(molecules.positions, displacement, out=positions[n_atoms + n_copy_atoms :])
    own = np.arange(n_atoms)
    atoms = np.concatenate([own, source, own])
    batch = Molecules(
        positions,
        np.take(molecules.features, atoms, axis=0),
        molecules.atomic_numbers[atoms],
        np.concatenate([molecules.counts, copy_counts, molecules.counts]),
        [*molecules.smiles, *(molecules.smiles[m] for m in owner.tolist()), *molecules.smiles],
    )
    copies = Copies(batch.range(n, n + n_copies), owner, rotation, translation, local)
    control = Copies(
        batch.range(n + n_copies, 2 * n + n_copies),
        np.arange(n),
        np.broadcast_to(np.eye(3), (n, 3, 3)).copy(),
        np.zeros((n, 3)),
        segment_arange(np.zeros(n, np.int64), molecules.counts),
    )
    return batch, copies, control


def _draw_elements(
    molecules: Molecules,
    blocks: Sequence[tuple[int, int, int]],
    symmetries: Sequence[str],
    n_samples: int,
    seed: int,
) -> tuple[IntArray, FloatArray, FloatArray, IntArray]:
    """``(owner, rotation, translation, local order)`` of the copies of ``molecules``, whose
    ``(first, last, block number)`` blocks draw from their own generators (`audit_batch`).

    Only the draws are made block by block; the rotations and the rest are computed on all
    blocks at once, with the same results (each matrix is its own), in a fraction of the
    Python time, which matters where audit chunks run on threads side by side.
    """
    normals, orders = [], []
    for first, last, block in blocks:
        rng = np.random.default_rng([seed, block])
        normals.append(rng.standard_normal((last - first, len(_DRAWN), n_samples, 9)))
        # (molecules, n_samples) flat segments of local atom indices
        orders.append(_mixing_orders(molecules.range(first, last), n_samples, rng))
    normals, orders = np.concatenate(normals), np.concatenate(orders)
    n_mol, n_sym = len(molecules), len(symmetries)

    shape = (n_mol, n_sym, n_samples)
    rotation = np.broadcast_to(np.eye(3), (*shape, 3, 3)).copy()
    translation = np.zeros((*shape, 3))
    samples = np.arange(n_samples)
    even = samples % 2 == 0
    for s, symmetry in enumerate(symmetries):
        if symmetry in ("identity", "permutation"):
            continue
        z = normals[:, _DRAWN.index(symmetry)]  # (n_mol, n_samples, 9)
        if symmetry == "translation":
            direction = z[..., :3] / np.linalg.norm(z[..., :3], axis=-1, keepdims=True)
            translation[:, s] = direction * np.where(even, 10.0, 1e3)[None, :, None]
        elif symmetry == "rotation":
            rotation[:, s] = haar_rotations(z.reshape(-1, 9)).reshape(n_mol, n_samples, 3, 3)
            if n_samples > 1:  # alone, a turn about x would miss what depends on y and z
                rotation[:, s, 0] = TUTORIAL_ROTATION
        else:
            mirrors = householder_reflections(z[..., :3].reshape(-1, 3))
            turned = -haar_rotations(z.reshape(-1, 9))
            pick = np.broadcast_to(even[None, :], (n_mol, n_samples)).reshape(-1)
            rotation[:, s] = np.where(pick[:, None, None], mirrors, turned).reshape(
                n_mol, n_samples, 3, 3
            )

    owner = np.repeat(np.arange(n_mol), n_sym * n_samples)
    copy_counts = molecules.counts[owner]
    # Local atom index of every copy atom; permutation copies take their drawn order.
    local = segment_arange(np.zeros(len(owner), np.int64), copy_counts)
    if "permutation" in symmetries:
        s = list(symmetries).index("permutation")
        copy_index = np.arange(len(owner)).reshape(shape)
        is_perm = np.zeros(len(owner), bool)
        is_perm[copy_index[:, s].reshape(-1)] = True
        local[np.repeat(is_perm, copy_counts)] = orders
    return owner, rotation.reshape(-1, 3, 3), translation.reshape(-1, 3), local


def _displacement(molecules: Molecules, block: int, seed: int) -> FloatArray:
    """The control's seeded Gaussian displacement of every atom of one block."""
    rng = np.random.default_rng([seed, block, 1])
    return rng.normal(scale=DISTORTION, size=molecules.positions.shape)


def _mixing_orders(molecules: Molecules, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """``n_samples`` mixing atom orders per molecule, flat, molecule-major then sample."""
    counts = np.repeat(molecules.counts, n_samples)
    z = molecules.atomic_numbers
    starts = np.repeat(molecules.starts, n_samples)  # first atom of each segment's molecule
    segment = segment_ids(counts)
    keys = rng.random(int(counts.sum()))
    first = starts_of(counts)
    orders = np.lexsort((keys, segment)) - np.repeat(first, counts)
    for k in np.flatnonzero(~mixes(orders, z, starts, counts)):
        n = int(counts[k])
        zk = z[starts[k] : starts[k] + n]
        # Redraws are rare (one element, or an order that only swapped equal atoms) and are
        # made in a fixed order, so they stay deterministic.
        while not mixes(orders[first[k] : first[k] + n], zk, [0], [n])[0]:
            orders[first[k] : first[k] + n] = np.argsort(rng.random(n))
    return orders
