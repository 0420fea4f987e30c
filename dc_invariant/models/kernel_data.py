"""Inputs of `KernelModel`: checked labels and molecules, and their atoms' kernel vectors.

Every check names the molecule (index, id, SMILES) and says how to fix the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from dc_invariant.conformer import Conformer
from dc_invariant.models.fchl import FCHL19
from dc_invariant.models.local_kernel import AtomSet
from dc_invariant.molecules import Molecules

# Molecules are featurized in chunks of about this many atoms (bounded triplet arrays).
_CHUNK_ATOMS = 4096


def _describe(X: Any, ids: Any, k: int) -> str:
    smiles = getattr(X[k], "smiles", None) if X is not None else None
    who = f"molecule {k}"
    if ids is not None and len(ids) > k:
        who += f" (id {ids[k]!r}"
        who += f", {smiles!r})" if smiles else ")"
    return who


def check_labels(X: Any, y: Any, w: Any, ids: Any, n_tasks: int) -> np.ndarray:
    """Labels as a float64 (n, n_tasks) array, or a ``ValueError`` naming the molecule."""
    n = len(X)
    if n == 0:
        raise ValueError("the dataset is empty: KernelModel.fit needs at least one molecule")
    if y is None or np.size(y) == 0:
        raise ValueError("the dataset has no labels (y): KernelModel.fit needs one per task")
    y = np.asarray(y, dtype=np.float64).reshape(n, -1)
    if y.shape[1] != n_tasks:
        raise ValueError(f"labels have {y.shape[1]} tasks, the model has n_tasks={n_tasks}")
    bad = ~np.isfinite(y).all(axis=1)
    if w is not None and np.size(w) == np.size(y):
        # DeepChem marks a missing label with weight 0 (NumpyDataset(X) has all weights 0).
        bad |= (np.asarray(w).reshape(n, -1) == 0).any(axis=1)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{_describe(X, ids, k)} has a missing label (NaN, infinite or weight 0) and "
            f"{int(bad.sum())} molecule(s) in all do: drop them or impute before fitting "
            "(kernel ridge solves all tasks at once, so every molecule needs every label)"
        )
    return y


def stack_dataset(X: Any, ids: Any) -> tuple[Molecules, Callable[[int], str]]:
    """Validated, stacked atoms of a dataset's `Conformer`s, and a namer of molecule k."""
    first = next((c for c in X if isinstance(c, Conformer)), None)
    width = first.n_features if first is not None else 0

    def name(k: int) -> str:
        return f"{k}" + (f" (id {ids[k]!r})" if ids is not None and len(ids) > k else "")

    molecules = Molecules.from_conformers(X, n_features=width, name=name)
    return molecules, lambda k: _describe(X, ids, k)


def element_index(
    atomic_numbers: np.ndarray, counts: np.ndarray, elements: np.ndarray, name: Callable[[int], str]
) -> np.ndarray:
    """Each atom's position in ``elements``; an element the model never saw is an error."""
    index = np.searchsorted(elements, atomic_numbers)
    index = np.minimum(index, len(elements) - 1)
    unknown = elements[index] != atomic_numbers
    if unknown.any():
        atom = int(np.flatnonzero(unknown)[0])
        k = int(np.searchsorted(np.cumsum(counts), atom, side="right"))
        raise ValueError(
            f"{name(k)} has element Z={int(atomic_numbers[atom])}, which is not in the "
            f"training set (elements {elements.tolist()}): a kernel model cannot predict it; "
            "train with molecules containing it or drop this molecule"
        )
    return index


def resolve_device(device: Any) -> torch.device:
    """``device`` as a usable `torch.device`; None picks CUDA when available, else the CPU.

    Raises ``ValueError`` for a name torch does not know or a device this machine lacks.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
        torch.zeros(1, device=device)  # a device this build or machine lacks fails here
    except (RuntimeError, TypeError, AssertionError) as error:
        raise ValueError(
            f"device {device!r} is not usable here ({error}); use 'cpu', or 'cuda' on a "
            "machine with a GPU and a CUDA build of torch"
        ) from None
    return device


def representation(
    rep: FCHL19,
    positions: np.ndarray,
    index: np.ndarray,
    counts: np.ndarray,
    n_elements: int,
    device: torch.device,
) -> torch.Tensor:
    """FCHL19 vectors of stacked molecules, (n_total, size) on ``device``, in bounded chunks."""
    ends = np.cumsum(counts)
    out = []
    first = 0
    with torch.no_grad():
        while first < len(counts):
            before = int(ends[first] - counts[first])
            last = max(first + 1, int(np.searchsorted(ends, before + _CHUNK_ATOMS, "right")))
            lo, hi = before, int(ends[last - 1])
            coords = torch.as_tensor(positions[lo:hi], dtype=torch.float64, device=device)
            out.append(rep(coords, index[lo:hi], counts[first:last], n_elements))
            first = last
    return torch.cat(out)


@dataclass
class Projection:
    """Per element: the training mean and the principal axes kept (columns of ``axes``)."""

    means: list[np.ndarray]
    axes: list[np.ndarray]

    @classmethod
    def fit(cls, vectors: torch.Tensor, index: np.ndarray, n_elements: int, tolerance: float):
        """Axes keeping all but ``tolerance`` of each element's variance around its mean."""
        means, axes = [], []
        for e in range(n_elements):
            mine = vectors[torch.as_tensor(index == e, device=vectors.device)]
            mean = mine.mean(dim=0)
            centred = mine - mean
            values, vecs = np.linalg.eigh((centred.T @ centred).cpu().numpy())
            values, vecs = values[::-1], vecs[:, ::-1]
            total = values.sum()
            if tolerance > 0 and total > 0:
                left = 1.0 - np.cumsum(values) / total
                keep = int(np.searchsorted(-left, -tolerance, side="left")) + 1
            else:
                keep = len(values)
            means.append(mean.cpu().numpy())
            axes.append(np.ascontiguousarray(vecs[:, : max(1, keep)]))
        return cls(means, axes)

    def project(self, vectors: torch.Tensor, e: int) -> torch.Tensor:
        """Vectors of element ``e`` centred and projected, on their device."""
        mean = torch.as_tensor(self.means[e], device=vectors.device)
        return (vectors - mean) @ torch.as_tensor(self.axes[e], device=vectors.device)

    def atom_sets(self, vectors: torch.Tensor, index: np.ndarray, molecule: np.ndarray):
        """One `AtomSet` per element, vectors centred and projected, on their device."""
        out = []
        for e in range(len(self.means)):
            mask = index == e
            mine = vectors[torch.as_tensor(mask, device=vectors.device)]
            out.append(AtomSet(self.project(mine, e), molecule[mask]))
        return out
