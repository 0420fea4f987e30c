"""Neighbour lists: the atom pairs closer than a cutoff, without an n_atoms² tensor."""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.spatial import cKDTree

from dc_invariant._types import FloatArray, IntArray
from dc_invariant.molecules import budget_ranges, segment_ids, starts_of

__all__ = ["neighbor_pairs", "stacked_neighbor_pairs"]

# Below this size the full distance matrix is cheaper than building a k-d tree.
_BRUTE_FORCE_ATOMS = 64


def neighbor_pairs(positions: FloatArray, cutoff: float, *, directed: bool = True) -> IntArray:
    """Pairs ``(i, j)``, ``i != j``, with ``|r_i - r_j| < cutoff``.

    Parameters
    ----------
    positions : np.ndarray of shape (n_atoms, 3)
        Coordinates (Å).
    cutoff : float
        Neighbour radius (Å).
    directed : bool, default=True
        Both ``(i, j)`` and ``(j, i)`` for every pair; with False only ``i < j``.

    Returns
    -------
    np.ndarray of int64, shape (2, n_pairs)
        Row 0 holds ``i``, row 1 ``j``, sorted by ``(i, j)``, so the result does not depend
        on the method used to find them.

    Examples
    --------
    >>> neighbor_pairs(np.array([[0.0, 0, 0], [1.0, 0, 0], [5.0, 0, 0]]), cutoff=2.0).tolist()
    [[0, 1], [1, 0]]
    """
    positions = np.asarray(positions, dtype=np.float64)
    n = len(positions)
    if n <= _BRUTE_FORCE_ATOMS:
        squared = ((positions[:, None, :] - positions[None, :, :]) ** 2).sum(axis=-1)
        close = squared < cutoff**2
        close &= ~np.eye(n, dtype=bool) if directed else np.triu(np.ones((n, n), dtype=bool), 1)
        i, j = np.nonzero(close)
        return np.stack([i, j]).astype(np.int64)
    pairs = cKDTree(positions).query_pairs(cutoff, output_type="ndarray")
    # query_pairs keeps pairs with distance <= cutoff; match the strict bound used above.
    distance = np.linalg.norm(positions[pairs[:, 0]] - positions[pairs[:, 1]], axis=1)
    pairs = pairs[distance < cutoff]
    if directed:
        i = np.concatenate([pairs[:, 0], pairs[:, 1]])
        j = np.concatenate([pairs[:, 1], pairs[:, 0]])
    else:
        i, j = pairs[:, 0], pairs[:, 1]
    order = np.lexsort((j, i))
    return np.stack([i[order], j[order]]).astype(np.int64)


def stacked_neighbor_pairs(
    positions: FloatArray,
    counts: IntArray,
    cutoff: float,
    *,
    directed: bool = True,
    molecules: Optional[IntArray] = None,
) -> IntArray:
    """`neighbor_pairs` of each molecule of a batch whose atoms are stacked.

    Parameters
    ----------
    positions : np.ndarray of shape (n_total, 3)
        Every molecule's coordinates (Å), molecule after molecule.
    counts : np.ndarray of int, shape (n_molecules,)
        Atoms per molecule.
    cutoff : float
        Neighbour radius (Å).
    directed : bool, default=True
        As in `neighbor_pairs`.
    molecules : np.ndarray of int, optional
        Only these molecules (default: all).

    Returns
    -------
    np.ndarray of int64, shape (2, n_pairs)
        Stacked atom indices; pairs never cross molecules.

    Examples
    --------
    >>> two = np.array([[0.0, 0, 0], [1.0, 0, 0], [1.5, 0, 0], [2.5, 0, 0]])
    >>> stacked_neighbor_pairs(two, [2, 2], cutoff=1.2, directed=False).tolist()
    [[0, 2], [1, 3]]
    """
    counts = np.asarray(counts, dtype=np.int64)
    starts = starts_of(counts)
    chosen = np.arange(len(counts)) if molecules is None else np.asarray(molecules, np.int64)
    small = counts[chosen] <= _BRUTE_FORCE_ATOMS
    # Small molecules all at once (a loop over them cost more than the network using the
    # pairs: an audit builds lists for 13 copies of every molecule); large ones by k-d tree.
    blocks = [
        _small_molecule_pairs(
            positions, starts[chosen[small]], counts[chosen[small]], cutoff, directed
        )
    ]
    ranks = [np.repeat(np.flatnonzero(small), blocks[0][2])]
    blocks[0] = blocks[0][:2]
    for rank in np.flatnonzero(~small):
        start, n = int(starts[chosen[rank]]), int(counts[chosen[rank]])
        pairs = neighbor_pairs(positions[start : start + n], cutoff, directed=directed) + start
        blocks.append((pairs[0], pairs[1]))
        ranks.append(np.full(pairs.shape[1], rank))
    i = np.concatenate([b[0] for b in blocks])
    j = np.concatenate([b[1] for b in blocks])
    if (~small).any():
        order = np.argsort(np.concatenate(ranks), kind="stable")
        i, j = i[order], j[order]
    return np.stack([i, j]).astype(np.int64)


def _small_molecule_pairs(
    positions: FloatArray, starts: IntArray, counts: IntArray, cutoff: float, directed: bool
) -> tuple[IntArray, IntArray, IntArray]:
    """Close pairs ``(i, j)`` of every listed molecule by brute force, and pairs per molecule.

    The same test as `neighbor_pairs`' brute force (squared differences summed over x, y, z,
    against ``cutoff²``), so the lists are identical; molecules are taken in slices of about
    a million candidate pairs, which bounds the memory.
    """
    positions = np.asarray(positions, dtype=np.float64)
    out_i, out_j, per_molecule = [], [], []
    for first, last in budget_ranges(np.asarray(counts) ** 2, 1 << 20):
        sizes = counts[first:last]
        pairs = sizes**2
        size = np.repeat(sizes, pairs)
        k = np.arange(pairs.sum()) - np.repeat(starts_of(pairs), pairs)
        local_i, local_j = k // size, k % size
        keep = local_i != local_j if directed else local_i < local_j
        base = np.repeat(starts[first:last], pairs)
        i, j = (base + local_i)[keep], (base + local_j)[keep]
        close = ((positions[i] - positions[j]) ** 2).sum(axis=-1) < cutoff**2
        owner = segment_ids(pairs)[keep][close]
        out_i.append(i[close])
        out_j.append(j[close])
        per_molecule.append(np.bincount(owner, minlength=last - first))
    if not out_i:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(per_molecule)
