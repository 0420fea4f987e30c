"""Plausibility of 3D geometries: atom clashes, and laying out the fragments of salts and mixtures.

RDKit's ETKDG embeds each fragment of a multi-fragment molecule (a salt, a hydrate, a mixture)
on its own and copies the fragments back without moving them apart, so their atoms overlap.
A distance-based model fed such a geometry sees nonsense (a Coulomb term at 0.01 Å) without
any error. `place_fragments` lays fragments out so that none touches another, and
`find_clash` is the check every geometry passes before it is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
from scipy.spatial import cKDTree

from dc_invariant._types import BoolArray, FloatArray, IntArray
from dc_invariant.molecules import segment_arange, starts_of

__all__ = [
    "CLASH_FRACTION",
    "FRAGMENT_GAP",
    "clashing_molecules",
    "describe_clash",
    "find_clash",
    "place_fragments",
]

#: Two atoms clash when closer than this fraction of the sum of their covalent radii. The
#: shortest real bond relative to its radii (H-H, 0.74 Å of 0.62 Å) is far above it, while the
#: overlaps of unplaced fragments (e.g. Na 0.68 Å from C: 0.28 of 2.42 Å) are far below.
CLASH_FRACTION = 0.5

#: Closest approach, in Å, of atoms of two fragments laid out by `place_fragments`: a van der
#: Waals contact, so that a force field can pull ion pairs closer but starts from no overlap.
FRAGMENT_GAP = 3.0

# Molecules above this size use a k-d tree instead of all pairs (memory grows as n²).
_DENSE_ATOMS = 256
# `clashing_molecules` stacks molecules up to this size: all pairs of a group of m molecules
# take m n² / 2 distances, which stays small for drug-sized molecules.
_GROUPED_ATOMS = 64
# Values per (m, n, n) array of `_may_clash`: 512 KiB of float64, which stays in cache.
_SCREEN_VALUES = 1 << 16


def _covalent_radii() -> FloatArray:
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    return np.array([0.0] + [table.GetRcovalent(z) for z in range(1, 119)])


_RADII = _covalent_radii()


def find_clash(
    atomic_numbers: IntArray, positions: FloatArray, fraction: float = CLASH_FRACTION
) -> Optional[tuple[int, int, float]]:
    """The worst pair of atoms closer than ``fraction`` of their covalent radii sum, if any.

    Parameters
    ----------
    atomic_numbers : np.ndarray of shape (n_atoms,)
    positions : np.ndarray of shape (n_atoms, 3)
        Coordinates in Å.
    fraction : float, default=CLASH_FRACTION

    Returns
    -------
    (i, j, distance) or None
        Atom indices ``i < j`` and their distance in Å for the pair that is closest relative
        to its threshold; None when no pair clashes.

    Examples
    --------
    >>> import numpy as np
    >>> find_clash(np.array([7, 7]), np.zeros((2, 3)))
    (0, 1, 0.0)
    >>> find_clash(np.array([6, 8]), np.array([[0.0, 0, 0], [1.2, 0, 0]])) is None
    True
    """
    z = np.asarray(atomic_numbers, dtype=np.int64)
    r = _finite(np.asarray(positions, dtype=np.float64))
    if len(z) < 2:
        return None
    if len(z) <= _DENSE_ATOMS:
        i, j = np.triu_indices(len(z), k=1)
    else:
        reach = 2 * fraction * _RADII[z].max()
        pairs = cKDTree(r).query_pairs(reach, output_type="ndarray")
        if len(pairs) == 0:
            return None
        i, j = pairs[:, 0], pairs[:, 1]
    return _worst_pairs(z[None], r[None], i, j, fraction).get(0)


def _finite(positions: FloatArray) -> FloatArray:
    """``positions``, or a ``ValueError`` if any is NaN or infinite: a NaN distance compares
    as no clash and would hide a real one elsewhere in the molecule."""
    if not np.isfinite(positions).all():
        raise ValueError("positions must be finite to look for clashes; some are NaN or infinite")
    return positions


def _worst_pairs(
    z: IntArray, r: FloatArray, i: IntArray, j: IntArray, fraction: float
) -> dict[int, tuple[int, int, float]]:
    """``{row: (a, b, distance)}``: the worst clashing pair among ``(i, j)`` of each molecule
    of ``z`` (m, n) and ``r`` (m, n, 3) that has one."""
    offsets = r[:, i] - r[:, j]
    squared = np.einsum("mpk,mpk->mp", offsets, offsets)
    radii = _RADII[z]
    # Squared ratios: no square root over every pair, only for the pairs reported.
    ratio = squared / (fraction * (radii[:, i] + radii[:, j])) ** 2
    worst = np.argmin(ratio, axis=1)
    out = {}
    for row in np.flatnonzero(ratio[np.arange(len(z)), worst] < 1.0):
        k = worst[row]
        a, b = sorted((int(i[k]), int(j[k])))
        out[int(row)] = (a, b, float(np.sqrt(squared[row, k])))
    return out


def describe_clash(atomic_numbers: IntArray, clash: tuple[int, int, float]) -> str:
    """``"atoms 3 (Na) and 7 (C) are 0.68 Å apart"`` for a pair found by `find_clash`."""
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    i, j, distance = clash
    si = table.GetElementSymbol(int(atomic_numbers[i]))
    sj = table.GetElementSymbol(int(atomic_numbers[j]))
    return f"atoms {i} ({si}) and {j} ({sj}) are {distance:.2f} Å apart"


def _directions(count: int = 64) -> FloatArray:
    """Unit vectors spread evenly over the sphere (a Fibonacci lattice): fixed, so seedless."""
    k = np.arange(count) + 0.5
    polar = np.arccos(1.0 - 2.0 * k / count)
    azimuth = np.pi * (1.0 + 5**0.5) * k
    return np.stack(
        [np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)], axis=1
    )


_DIRECTIONS = _directions()


def _smallest_clear_shift(placed: FloatArray, moving: FloatArray, gap: float) -> FloatArray:
    """Per direction, the smallest shift ``s >= 0`` keeping every atom pair at least ``gap`` apart.

    For one pair with offset ``c`` (placed minus moving atom) and direction ``d``, the shifts
    that violate the gap form the interval where ``|c - s d|² < gap²``; the answer is the
    smallest ``s >= 0`` outside the union of these intervals, found exactly by a sweep.
    """
    offsets = (placed[:, None, :] - moving[None, :, :]).reshape(-1, 3)
    along = offsets @ _DIRECTIONS.T  # (pairs, directions)
    disc = along**2 - (offsets**2).sum(axis=1)[:, None] + gap**2
    root = np.sqrt(np.clip(disc, 0.0, None))
    low = np.where(disc > 0, along - root, np.inf)
    high = np.where(disc > 0, along + root, -np.inf)
    shifts = np.zeros(len(_DIRECTIONS))
    for d in range(len(_DIRECTIONS)):
        hit = high[:, d] > 0  # intervals wholly at negative shifts never matter
        order = np.argsort(low[hit, d])
        for lo, hi in zip(low[hit, d][order], high[hit, d][order]):
            if lo >= shifts[d]:  # open interval: this and every later one start past s
                break
            shifts[d] = max(shifts[d], hi)
    return shifts


def place_fragments(
    positions: FloatArray, fragments: Sequence[Sequence[int]], gap: float = FRAGMENT_GAP
) -> FloatArray:
    """Move whole fragments apart so that atoms of different fragments are ``gap`` Å apart or more.

    The largest fragment stays where it is. Each further fragment, largest first, is centred
    on the atoms placed so far and pushed out along the one of 64 fixed directions that needs
    the shortest push. Fragments are moved rigidly, so each keeps its own geometry; the result
    depends on the input alone (no random numbers), so it is identical in any process.

    Parameters
    ----------
    positions : np.ndarray of shape (n_atoms, 3)
        Coordinates in Å, fragments possibly on top of each other.
    fragments : sequence of sequences of int
        The atom indices of each fragment (RDKit's ``Chem.GetMolFrags``).
    gap : float, default=FRAGMENT_GAP
        Smallest distance in Å between atoms of different fragments afterwards.

    Returns
    -------
    np.ndarray of shape (n_atoms, 3)
        A new array; the input is not modified.

    Examples
    --------
    >>> import numpy as np
    >>> moved = place_fragments(np.zeros((2, 3)), [[0], [1]])
    >>> round(float(np.linalg.norm(moved[0] - moved[1])), 6)
    3.0
    """
    out = np.array(positions, dtype=np.float64)
    groups = sorted((np.asarray(f, dtype=np.int64) for f in fragments), key=lambda f: -len(f))
    placed = groups[0]
    for group in groups[1:]:
        centre = out[placed].mean(axis=0)
        moving = out[group] - out[group].mean(axis=0) + centre
        shifts = _smallest_clear_shift(out[placed], moving, gap)
        best = int(np.argmin(shifts))  # argmin takes the first on ties: deterministic
        out[group] = moving + shifts[best] * _DIRECTIONS[best]
        placed = np.concatenate([placed, group])
    return out


def clashing_molecules(
    atomic_numbers: Sequence[IntArray], positions: Sequence[FloatArray]
) -> dict[int, str]:
    """`find_clash` over many molecules at once: ``{index: description}`` of those that clash.

    Molecules of equal size are screened together on (m, n, n) distance arrays, and only the
    flagged ones are searched for their worst pair, so a whole dataset (all of QM9) takes
    under a second rather than one call per molecule.
    """
    sizes = np.fromiter(map(len, atomic_numbers), np.int64, len(atomic_numbers))
    found: dict[int, str] = {}
    if not len(sizes):
        return found
    # Stacked once and gathered by size: stacking each group from the lists costs as much
    # as checking it.
    all_z, all_r, starts = (
        np.concatenate(atomic_numbers),
        _finite(np.concatenate(positions)),
        starts_of(sizes),
    )
    for n in np.unique(sizes):
        members = np.flatnonzero(sizes == n)
        if n < 2:
            continue
        if n > _GROUPED_ATOMS:  # rare and large: one at a time
            for k in members:
                clash = find_clash(atomic_numbers[k], positions[k])
                if clash is not None:
                    found[int(k)] = describe_clash(atomic_numbers[k], clash)
            continue
        atoms = segment_arange(starts[members], np.full(len(members), n))
        z, r = all_z[atoms].reshape(-1, n), all_r[atoms].reshape(-1, n, 3)
        # Only the few molecules the screen flags pay for finding their worst pair.
        rows = np.flatnonzero(_may_clash(z, r, CLASH_FRACTION))
        i, j = np.triu_indices(n, k=1)
        for row, clash in _worst_pairs(z[rows], r[rows], i, j, CLASH_FRACTION).items():
            found[int(members[rows[row]])] = describe_clash(z[rows[row]], clash)
    return dict(sorted(found.items()))


def _may_clash(z: IntArray, r: FloatArray, fraction: float) -> BoolArray:
    """Which molecules of ``z`` (m, n) and ``r`` (m, n, 3) may hold a clashing pair: every
    molecule `_worst_pairs` reports, and rarely one more.

    Full (n, n) planes per coordinate, in blocks that stay in cache: contiguous element-wise
    passes without a division, 6x faster than gathering the (i, j) pairs of all molecules.
    The margin keeps the flags a superset of `_worst_pairs`' despite a different rounding.
    """
    m, n = z.shape
    half = fraction * _RADII[z]
    off_diagonal = ~np.eye(n, dtype=bool)
    flagged = np.zeros(m, dtype=bool)
    step = max(1, _SCREEN_VALUES // (n * n))
    for k in range(0, m, step):
        block = r[k : k + step]
        squared = np.zeros((len(block), n, n))
        for axis in range(3):
            x = block[:, :, axis]
            difference = x[:, :, None] - x[:, None, :]
            difference *= difference
            squared += difference
        h = half[k : k + step]
        limit = h[:, :, None] + h[:, None, :]
        limit *= limit * (1.0 + 1e-9)
        close = squared < limit
        close &= off_diagonal
        flagged[k : k + step] = close.any(axis=(1, 2))
    return flagged
