"""`Molecules`: many molecules as one set of stacked atom arrays.

Models, the audit and `pad_batch` all work on batches of molecules of different sizes. They
share this one representation: every molecule's atoms one after another in (n_total, ...)
arrays, with the atom count of each molecule. Everything a batch needs (where a molecule
starts, which molecule an atom belongs to, selecting, joining, centring, padding, checking)
is written once, here. (Over 400 lines: one type and its operations, a third of it
docstrings; splitting it would scatter the one idea again.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from dc_invariant._types import BoolArray, FloatArray, IntArray
from dc_invariant.conformer import Conformer

__all__ = [
    "Molecules",
    "budget_ranges",
    "pad_batch",
    "segment_arange",
    "segment_ids",
    "split_segments",
    "starts_of",
]


def starts_of(counts: IntArray) -> IntArray:
    """Index of each segment's first element, for segments of ``counts`` elements."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.cumsum(counts) - counts


def segment_arange(starts: IntArray, counts: IntArray) -> IntArray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, counts)])`` without a loop."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.repeat(np.asarray(starts, dtype=np.int64) - starts_of(counts), counts) + np.arange(
        counts.sum()
    )


def segment_ids(counts: IntArray) -> IntArray:
    """The segment of every element, for consecutive segments of ``counts`` elements (the
    molecule of each atom, the copy of each copy atom).

    Examples
    --------
    >>> segment_ids([2, 0, 3]).tolist()
    [0, 0, 2, 2, 2]
    """
    counts = np.asarray(counts, dtype=np.int64)
    return np.repeat(np.arange(len(counts)), counts)


def budget_ranges(costs: IntArray, budget: int) -> list[tuple[int, int]]:
    """Consecutive ``(first, last)`` ranges of items whose costs add up to at most ``budget``.

    An item over the budget gets a range of its own. The one rule for bounding memory by
    chunks of molecules: atoms per prediction batch, atoms per representation chunk, atom
    pairs per neighbour search.

    Examples
    --------
    >>> budget_ranges([3, 5, 1], 6), budget_ranges([3, 5, 1], 4)
    ([(0, 1), (1, 3)], [(0, 1), (1, 2), (2, 3)])
    """
    costs = np.asarray(costs, dtype=np.int64)
    ends = np.cumsum(costs)
    ranges = []
    first = 0
    while first < len(costs):
        before = int(ends[first] - costs[first])
        last = max(first + 1, int(np.searchsorted(ends, before + budget, side="right")))
        ranges.append((first, last))
        first = last
    return ranges


def split_segments(values: np.ndarray, counts: IntArray) -> list[np.ndarray]:
    """``values`` cut into consecutive pieces of ``counts`` rows (one per molecule).

    Examples
    --------
    >>> [p.tolist() for p in split_segments(np.arange(5), [2, 3])]
    [[0, 1], [2, 3, 4]]
    """
    return np.split(values, np.cumsum(np.asarray(counts, dtype=np.int64))[:-1])


@dataclass
class Molecules:
    """Molecules with all atoms stacked.

    Attributes
    ----------
    positions : np.ndarray of shape (n_total, 3)
        Coordinates in Å, molecule after molecule.
    features : np.ndarray of shape (n_total, n_features)
    atomic_numbers : np.ndarray of int, shape (n_total,)
    counts : np.ndarray of int, shape (n_molecules,)
        Atoms of each molecule, in the order they are stacked.
    smiles : list of str or None
        One per molecule (None where unknown).

    Examples
    --------
    >>> water = Conformer(np.eye(3), np.ones((3, 1)), [8, 1, 1], smiles="O")
    >>> h2 = Conformer(np.zeros((2, 3)), np.ones((2, 1)), [1, 1])
    >>> batch = Molecules.from_conformers([water, h2])
    >>> batch.counts.tolist(), batch.starts.tolist(), batch.molecule.tolist()
    ([3, 2], [0, 3], [0, 0, 0, 1, 1])
    >>> positions, features, mask = batch.padded()
    >>> positions.shape, mask.sum(axis=1).tolist()
    ((2, 3, 3), [3, 2])
    """

    positions: FloatArray
    features: FloatArray
    atomic_numbers: IntArray
    counts: IntArray
    smiles: list[Optional[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.counts = np.asarray(self.counts, dtype=np.int64)
        if not self.smiles:
            self.smiles = [None] * len(self.counts)

    @classmethod
    def from_conformers(
        cls,
        conformers: Sequence[Any],
        *,
        n_features: Optional[int] = None,
        name: Optional[Callable[[int], str]] = None,
        n_atoms_limit: Optional[int] = None,
    ) -> Molecules:
        """Check a batch of datapoints and stack their atoms.

        Parameters
        ----------
        conformers : sequence of Conformer
        n_features : int, optional
            Feature width every molecule must have; default: the first molecule's.
        name : callable, optional
            ``name(k)`` labels item ``k`` in error messages (default: its index).
        n_atoms_limit : int, optional
            Largest molecule allowed (a dense network's fixed input size).

        Raises
        ------
        ValueError
            Naming the molecule: an empty batch, an item that is not a `Conformer` (DeepChem
            stores an empty array for a failed featurization), the wrong feature width, no
            atoms, too many atoms, NaN or infinite coordinates or features.
        """
        items = list(conformers)
        name = name or str
        if not items:
            raise ValueError("an empty batch: pass at least one Conformer")
        if not all(issubclass(kind, Conformer) for kind in set(map(type, items))):
            k = next(k for k, item in enumerate(items) if not isinstance(item, Conformer))
            raise ValueError(
                f"molecule {name(k)} is {type(items[k]).__name__}, not a Conformer; an empty "
                "array marks a molecule the featurizer could not handle: drop those first"
            )
        # Checked as arrays (a Python test per molecule cost as much as a small network's
        # work); only a failure pays for finding the molecule and the reason.
        positions = [c.positions for c in items]
        features = [c.features for c in items]
        counts = np.fromiter(map(len, positions), np.int64, len(items))
        widths = np.fromiter((f.shape[1] for f in features), np.int64, len(items))
        width = int(widths[0]) if n_features is None else n_features
        limit = np.iinfo(np.int64).max if n_atoms_limit is None else n_atoms_limit
        for k in np.flatnonzero((widths != width) | (counts == 0) | (counts > limit))[:1]:
            label = f"molecule {name(k)} ({items[k].smiles!r})"
            if widths[k] != width:
                expected = (
                    f"the first molecule has {width}"
                    if n_features is None
                    else f"the model expects n_features={n_features}"
                )
                raise ValueError(f"{label} has {widths[k]} features per atom, {expected}")
            if counts[k] == 0:
                raise ValueError(f"{label} has no atoms")
            raise ValueError(
                f"{label} has {counts[k]} atoms, more than n_atoms={n_atoms_limit} (the dense "
                "network's input size is fixed)"
            )
        molecules = cls(
            np.concatenate(positions),
            np.concatenate(features),
            np.concatenate([c.atomic_numbers for c in items]),
            counts,
            [c.smiles for c in items],
        )
        bad = molecules.first_not_finite()
        if bad is not None:
            k, what = bad
            raise ValueError(f"molecule {name(k)} ({items[k].smiles!r}) has NaN or infinite {what}")
        return molecules

    @classmethod
    def from_arrays(
        cls,
        positions: Any,
        features: Any,
        atomic_numbers: Any,
        counts: Any,
        n_features: int,
    ) -> Molecules:
        """Check stacked arrays given by a caller (shapes, counts >= 1, finite values)."""
        counts = np.asarray(counts, dtype=np.int64)
        positions = np.asarray(positions, dtype=np.float64)
        features = np.asarray(features, dtype=np.float64)
        atomic_numbers = np.asarray(atomic_numbers, dtype=np.int64)
        n_total = int(counts.sum())
        if counts.ndim != 1 or (counts < 1).any() or positions.shape != (n_total, 3):
            raise ValueError(
                f"positions must have shape (sum(counts), 3) = ({n_total}, 3) with every count "
                f">= 1, got {positions.shape}"
            )
        if features.shape != (n_total, n_features) or atomic_numbers.shape != (n_total,):
            raise ValueError(
                f"features must have shape ({n_total}, {n_features}) and atomic_numbers "
                f"({n_total},), got {features.shape} and {atomic_numbers.shape}"
            )
        molecules = cls(positions, features, atomic_numbers, counts)
        bad = molecules.first_not_finite()
        if bad is not None:
            raise ValueError(f"molecule {bad[0]} has NaN or infinite {bad[1]}")
        return molecules

    def first_not_finite(self) -> Optional[tuple[int, str]]:
        """(molecule, "coordinates" or "features") of the first NaN or infinity, or None."""
        for what, values in (("coordinates", self.positions), ("features", self.features)):
            if np.isfinite(values).all():
                continue
            atom = np.flatnonzero(~np.isfinite(values).all(axis=1))[0]
            return int(np.searchsorted(self.ends, atom, side="right")), what
        return None

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def n_features(self) -> int:
        """Width of the atom features."""
        return self.features.shape[1]

    @property
    def starts(self) -> IntArray:
        """Index of each molecule's first atom."""
        return starts_of(self.counts)

    @property
    def ends(self) -> IntArray:
        """One past each molecule's last atom."""
        return np.cumsum(self.counts)

    @property
    def molecule(self) -> IntArray:
        """Molecule of every atom, shape (n_total,)."""
        return segment_ids(self.counts)

    def slices(self) -> list[slice]:
        """The atom range of every molecule."""
        return [slice(s, s + n) for s, n in zip(self.starts.tolist(), self.counts.tolist())]

    def split(self, values: np.ndarray) -> list[np.ndarray]:
        """Per-molecule pieces of an (n_total, ...) array."""
        return split_segments(values, self.counts)

    def conformers(self) -> list[Conformer]:
        """One `Conformer` per molecule (for targets that take datapoints)."""
        return [
            Conformer(self.positions[s], self.features[s], self.atomic_numbers[s], smiles=smiles)
            for s, smiles in zip(self.slices(), self.smiles)
        ]

    @classmethod
    def concatenate(cls, parts: Sequence[Molecules]) -> Molecules:
        """All molecules of ``parts``, one after another."""
        return cls(
            np.concatenate([p.positions for p in parts]),
            np.concatenate([p.features for p in parts]),
            np.concatenate([p.atomic_numbers for p in parts]),
            np.concatenate([p.counts for p in parts]),
            [smiles for p in parts for smiles in p.smiles],
        )

    def select(self, index: IntArray) -> Molecules:
        """The molecules ``index`` (in that order)."""
        index = np.asarray(index, dtype=np.int64)
        atoms = segment_arange(self.starts[index], self.counts[index])
        return Molecules(
            self.positions[atoms],
            self.features[atoms],
            self.atomic_numbers[atoms],
            self.counts[index],
            [self.smiles[i] for i in index],
        )

    def range(self, first: int, last: int) -> Molecules:
        """Molecules ``first`` to ``last - 1`` as views (no copy)."""
        lo = int(self.counts[:first].sum())
        hi = lo + int(self.counts[first:last].sum())
        return Molecules(
            self.positions[lo:hi],
            self.features[lo:hi],
            self.atomic_numbers[lo:hi],
            self.counts[first:last],
            self.smiles[first:last],
        )

    def batch_ranges(
        self, max_atoms: int, padded_to: Optional[int] = None
    ) -> list[tuple[int, int]]:
        """Consecutive ``(first, last)`` molecule ranges of at most ``max_atoms`` atoms each.

        A molecule larger than ``max_atoms`` gets a range of its own. With ``padded_to`` (a
        network of fixed input size), every molecule counts as that many atoms: the padded
        arrays are what fills memory.

        Examples
        --------
        >>> three = Molecules(np.zeros((9, 3)), np.ones((9, 1)), np.ones(9, int), [3, 5, 1])
        >>> three.batch_ranges(6), three.batch_ranges(4), three.batch_ranges(10, padded_to=5)
        ([(0, 1), (1, 3)], [(0, 1), (1, 2), (2, 3)], [(0, 2), (2, 3)])
        """
        sizes = self.counts if padded_to is None else np.full(len(self), padded_to)
        return budget_ranges(sizes, max_atoms)

    def batches(self, max_atoms: int, padded_to: Optional[int] = None) -> Iterator[Molecules]:
        """The molecules of each of `batch_ranges`, as views."""
        for first, last in self.batch_ranges(max_atoms, padded_to):
            yield self.range(first, last)

    def centred_positions(self) -> FloatArray:
        """Coordinates with each molecule's centroid at the origin, in float64.

        For networks that see only differences: centring before any cast to float32 keeps
        them exact far from the origin (1,000 Å out, float32 keeps only ~1e-4 Å).
        """
        centres = np.add.reduceat(self.positions, self.starts, axis=0) / self.counts[:, None]
        return self.positions - np.repeat(centres, self.counts, axis=0)

    def padded(
        self, n_max: Optional[int] = None, dtype: np.dtype | type = np.float64
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Zero-padded (B, n_max, 3) positions, (B, n_max, F) features and (B, n_max) mask."""
        largest = int(self.counts.max())
        n_max = largest if n_max is None else n_max
        if largest > n_max:
            k = int(self.counts.argmax())
            raise ValueError(
                f"molecule {k} ({self.smiles[k]!r}) has {largest} atoms, more than n_max={n_max}"
            )
        molecule = self.molecule
        slot = np.arange(len(molecule)) - np.repeat(self.starts, self.counts)
        positions = np.zeros((len(self), n_max, 3), dtype=dtype)
        features = np.zeros((len(self), n_max, self.n_features), dtype=dtype)
        positions[molecule, slot] = self.positions
        features[molecule, slot] = self.features
        mask = np.arange(n_max)[None, :] < self.counts[:, None]
        return positions, features, mask


def pad_batch(
    conformers: Sequence[Conformer],
    n_max: Optional[int] = None,
    dtype: np.dtype | type = np.float64,
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Stack molecules of different sizes into zero-padded batch arrays.

    Parameters
    ----------
    conformers : sequence of Conformer
        The molecules of the batch, all with the same feature width ``F``.
    n_max : int, optional
        Padded atom count; defaults to the largest molecule of the batch.
    dtype : numpy dtype, default=np.float64
        dtype of the returned positions and features.

    Returns
    -------
    positions : np.ndarray of shape (B, n_max, 3)
        Coordinates in Å; padding rows are zero.
    features : np.ndarray of shape (B, n_max, F)
        Per-atom features; padding rows are zero.
    mask : np.ndarray of bool, shape (B, n_max)
        True for real atoms, False for padding.

    Raises
    ------
    ValueError
        As `Molecules.from_conformers` (naming the molecule), or for a molecule larger than
        ``n_max``.

    Examples
    --------
    >>> a = Conformer(np.zeros((1, 3)), np.ones((1, 2)), np.array([6]))
    >>> b = Conformer(np.ones((3, 3)), np.ones((3, 2)), np.array([6, 1, 1]))
    >>> R, X, mask = pad_batch([a, b])
    >>> R.shape, X.shape, mask.sum(axis=1).tolist()
    ((2, 3, 3), (2, 3, 2), [1, 3])
    """
    return Molecules.from_conformers(conformers).padded(n_max, dtype)
