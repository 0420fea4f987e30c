"""Inputs of `KernelModel`: checked labels, stacked molecules, elements and their counts.

Every check names the molecule (index, id, SMILES) and says how to fix the input.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from dc_invariant.conformer import Conformer
from dc_invariant.models.batching import describe_molecule
from dc_invariant.molecules import Molecules

__all__ = [
    "element_counts",
    "element_index",
    "resolve_device",
    "stack_dataset",
    "stack_geometries",
]


def stack_dataset(X: Any, ids: Any) -> tuple[Molecules, Callable[[int], str]]:
    """Validated, stacked atoms of a dataset's `Conformer`s, and a namer of molecule k."""
    first = next((c for c in X if isinstance(c, Conformer)), None)
    width = first.n_features if first is not None else 0

    def name(k: int) -> str:
        return f"{k}" + (f" (id {ids[k]!r})" if ids is not None and len(ids) > k else "")

    molecules = Molecules.from_conformers(X, n_features=width, name=name)
    return molecules, lambda k: describe_molecule(X, ids, k)


def stack_geometries(X: Any, ids: Any) -> tuple[Molecules, np.ndarray] | None:
    """Every geometry of every `Conformer` as a molecule of its own (an ensemble's members
    in order) and the input molecule of each; None when no input has an ensemble."""
    if not any(isinstance(c, Conformer) and c.ensemble is not None for c in X):
        return None
    members = [c.split_ensemble() if isinstance(c, Conformer) else [c] for c in X]
    parent = np.repeat(np.arange(len(X)), [len(m) for m in members])
    flat = np.empty(len(parent), dtype=object)
    flat[:] = [c for m in members for c in m]
    geometries, _ = stack_dataset(flat, None if ids is None else np.asarray(ids)[parent])
    return geometries, parent


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


def element_counts(
    index: np.ndarray, molecule: np.ndarray, n_molecules: int, n_elements: int
) -> np.ndarray:
    """Atoms of each element per molecule, (n_molecules, n_elements) float64."""
    flat = np.bincount(molecule * n_elements + index, minlength=n_molecules * n_elements)
    return flat.reshape(n_molecules, n_elements).astype(np.float64)
