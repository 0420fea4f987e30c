"""From DeepChem datasets of `Conformer`s to checked batches, and from batches to inputs.

DeepChem hands a model whole datasets; the networks want stacked atom arrays. This module
reads a dataset once, orders it (seeded), cuts it into batches of molecules, checks each
batch (`Molecules.from_conformers` names a bad molecule by index and id) and pairs it with
its labels and weights.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from dc_invariant.molecules import Molecules, split_segments

__all__ = [
    "Batch",
    "check_labels",
    "dataset_batches",
    "describe_molecule",
    "label_weights",
    "transform_scale",
]


@dataclass
class Batch:
    """Network inputs for a batch of molecules, and how to map per-atom arrays back."""

    inputs: list[np.ndarray]
    n_atoms: np.ndarray
    #: position of the coordinate tensor in ``inputs`` (forces differentiate against it)
    positions_input: int = 0
    #: coordinates are padded (B, n_max, 3) rather than all atoms stacked (n_total, 3)
    padded: bool = True

    def split_atoms(self, values: np.ndarray) -> list[np.ndarray]:
        """Per-molecule arrays (n_atoms, ...) from a padded (B, n_max, ...) or flat array."""
        if self.padded:
            return [values[b, :n] for b, n in enumerate(self.n_atoms)]
        return split_segments(values, self.n_atoms)


#: Molecules read and checked at a time when batches are bounded by atoms.
_READ_MOLECULES = 16_384


def dataset_batches(
    dataset: Any,
    *,
    batch_size: int,
    n_features: int,
    n_tasks: int,
    epochs: int = 1,
    rng: Optional[np.random.Generator] = None,
    pad_to: Optional[int] = None,
    n_atoms_limit: Optional[int] = None,
    batch_atoms: Optional[int] = None,
) -> Iterator[tuple[Molecules, np.ndarray, np.ndarray]]:
    """(molecules, y, w) batches of ``dataset``, shuffled by ``rng`` when one is given.

    ``pad_to`` repeats molecules to fill a short last batch, as DeepChem pads training
    batches. ``batch_atoms`` (prediction, in dataset order) bounds each batch by atoms
    instead of ``batch_size`` molecules.
    """
    # Read once: every access to a DiskDataset's X reloads all of its shards.
    X, y, w, ids = dataset.X, dataset.y, dataset.w, dataset.ids
    n = len(X)
    step = batch_size if batch_atoms is None else _READ_MOLECULES
    for _ in range(epochs):
        order = np.arange(n) if rng is None else rng.permutation(n)
        for start in range(0, n, step):
            chosen = order[start : start + step]
            if pad_to and len(chosen) < pad_to:
                chosen = np.resize(chosen, pad_to)
            molecules = Molecules.from_conformers(
                X[chosen],
                n_features=n_features,
                name=lambda k, chosen=chosen: f"{chosen[k]} (id {ids[chosen[k]]!r})",
                n_atoms_limit=n_atoms_limit,
            )
            if batch_atoms is None:
                yield molecules, _rows(y, chosen, n, n_tasks), _rows(w, chosen, n, n_tasks)
                continue
            # A network of fixed input size (n_atoms_limit) pads every molecule to it.
            for first, last in molecules.batch_ranges(batch_atoms, padded_to=n_atoms_limit):
                rows = chosen[first:last]
                part = molecules.range(first, last)
                yield part, _rows(y, rows, n, n_tasks), _rows(w, rows, n, n_tasks)


def _rows(values: Any, chosen: np.ndarray, n: int, n_tasks: int) -> np.ndarray:
    if values is None or len(values) != n:
        return np.zeros((len(chosen), n_tasks))
    return np.asarray(values)[chosen].reshape(len(chosen), -1)


def check_labels(dataset: Any, n_tasks: int, *, every_label: bool = False) -> np.ndarray:
    """The labels of ``dataset`` as a float64 ``(n, n_tasks)`` array, checked for training.

    One rule for every model: a ``ValueError`` naming the first offending molecule (index,
    id, SMILES) for an empty dataset, no labels, the wrong number of tasks, any NaN or
    infinite label (a loss, or a solve, turns it into a model that predicts NaN), or labels
    that are all 0 (DeepChem fills ``y`` with zeros when a dataset is made without labels,
    and training on those reports a loss that looks fine).

    Parameters
    ----------
    dataset : DeepChem Dataset
    n_tasks : int
    every_label : bool, default=False
        Also refuse labels marked missing by weight 0 (DeepChem's convention) and weights
        other than 1, for models that solve all tasks at once and weigh every label the same
        (`KernelModel`). Without it, only NaN, infinite and negative weights are refused.

    Examples
    --------
    >>> from deepchem.data import NumpyDataset
    >>> check_labels(NumpyDataset(np.zeros((2, 1)), [1.0, np.nan], ids=["a", "b"]), 1)
    Traceback (most recent call last):
    ...
    ValueError: molecule 1 (id 'b') has a NaN or infinite label; 1 molecule(s) in all do: ...
    """
    n = len(dataset)
    if n == 0:
        raise ValueError("cannot fit on an empty dataset")
    y = getattr(dataset, "y", None)
    if y is None or np.size(y) == 0:
        raise ValueError(
            "the dataset has no labels (y is empty): pass tasks= to the loader, or y= to "
            "NumpyDataset"
        )
    y = np.asarray(y, dtype=np.float64).reshape(n, -1)
    if y.shape[1] != n_tasks:
        raise ValueError(f"the model has n_tasks={n_tasks} but the dataset's y has shape {y.shape}")
    w = label_weights(dataset, n_tasks)
    problems = [
        (~np.isfinite(y).all(axis=1), "a NaN or infinite label"),
        (~np.isfinite(w).all(axis=1), "a NaN or infinite weight"),
        ((w < 0).any(axis=1), "a negative weight"),
    ]
    if every_label:
        missing = (w == 0).any(axis=1)
        problems.append((missing, "a missing label (weight 0), which this model cannot skip"))
        weighted = ((w != 0) & (w != 1)).any(axis=1)
        problems.append((weighted, "a weight other than 1, which this model cannot apply"))
    for bad, what in problems:
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            who = describe_molecule(getattr(dataset, "X", None), getattr(dataset, "ids", None), k)
            raise ValueError(
                f"{who} has {what}; {int(bad.sum())} molecule(s) in all do: drop or impute them "
                "before fitting"
            )
    if not np.any(y):
        raise ValueError(
            f"every label of the {n}-molecule dataset is 0: DeepChem fills y with zeros when a "
            "dataset is made without labels; pass y= (or tasks= to the loader)"
        )
    return y


def label_weights(dataset: Any, n_tasks: int) -> np.ndarray:
    """DeepChem's weights ``w`` as an (n, n_tasks) array: one weight per molecule (shape (n,)
    or (n, 1)) applies to all its tasks, and a dataset without weights weighs every label 1.
    Weight 0 marks a missing label."""
    n = len(dataset)
    w = getattr(dataset, "w", None)
    if w is None or np.size(w) == 0:
        return np.ones((n, n_tasks))
    w = np.asarray(w, dtype=np.float64).reshape(n, -1)
    if w.shape[1] not in (1, n_tasks):
        raise ValueError(f"the model has n_tasks={n_tasks} but the dataset's w has shape {w.shape}")
    return np.broadcast_to(w, (n, n_tasks))


def describe_molecule(X: Any, ids: Any, k: int) -> str:
    """``"molecule k (id '...', 'SMILES')"`` for messages about molecule ``k`` of a dataset's
    ``X`` (datapoints) and ``ids``."""
    smiles = getattr(X[k], "smiles", None) if X is not None and len(X) > k else None
    who = f"molecule {k}"
    if ids is not None and len(ids) > k:
        who += f" (id {ids[k]!r}" + (f", {smiles!r})" if smiles else ")")
    return who


def transform_scale(transformers: Sequence[Any], n_tasks: int) -> np.ndarray:
    """d(untransformed y)/d(y) per task, for linear y-transformers such as
    ``NormalizationTransformer`` (forces and gradients are scaled by it)."""
    if not transformers:
        return np.ones(n_tasks)
    from dc_invariant._deepchem import import_deepchem

    dc = import_deepchem()
    at = [dc.trans.undo_transforms(np.full((1, n_tasks), v), list(transformers)) for v in (0, 1, 2)]
    step, next_step = (at[1] - at[0]).reshape(-1), (at[2] - at[1]).reshape(-1)
    # One factor per task is the chain rule of a linear undo only: a LogTransformer's would
    # scale every force by its value at y = 0 (1.34x too large, silently).
    if not np.allclose(step, next_step, rtol=1e-9, atol=0.0):
        names = ", ".join(type(t).__name__ for t in transformers)
        raise ValueError(
            f"forces and gradients need transformers whose undo is linear in y (such as "
            f"NormalizationTransformer); {names} is not: undo the transform of the energies "
            "yourself and differentiate that"
        )
    return step
