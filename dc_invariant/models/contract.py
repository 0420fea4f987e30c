"""The model contract: what the audit (and any tool of this package) needs of a model.

A model takes a checked stack of molecules (`Molecules`) and returns one row of outputs per
molecule, or forces on every atom. Declaring it once, as a `typing.Protocol`, lets the audit
hand its batches to any model as they are, without unpacking them into arrays for the model
to rebuild and check again. `dc_invariant.auditing.check_model` tests a model against it.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, runtime_checkable

import numpy as np

from dc_invariant.molecules import Molecules

__all__ = ["MoleculeModel", "StackedArrays"]


@runtime_checkable
class MoleculeModel(Protocol):
    """A model that predicts from stacked molecules.

    ``predict_molecules(molecules)`` returns an array of shape ``(len(molecules),
    n_outputs)``; with ``forces=True``, the forces ``-dE_task/dR`` on every atom, shape
    ``(molecules.counts.sum(), 3)``. A molecule's row must not depend on the other molecules
    of the batch. Every dc_invariant model satisfies it; so can a user's own.

    Examples
    --------
    >>> from dc_invariant.models import RotationInvariantModel
    >>> model = RotationInvariantModel(n_features=1, dtype="float64")
    >>> isinstance(model, MoleculeModel)
    True
    >>> water = Molecules(np.eye(3), np.ones((3, 1)), np.array([8, 1, 1]), [3])
    >>> model.predict_molecules(water).shape, model.predict_molecules(water, forces=True).shape
    ((1, 1), (3, 3))
    """

    n_tasks: int

    def predict_molecules(
        self, molecules: Molecules, *, forces: bool = False, task: int = 0
    ) -> np.ndarray:
        """Predictions (or forces) for a stack of molecules."""
        ...


class StackedArrays:
    """``predict_arrays`` for a `MoleculeModel`: molecules given as plain stacked arrays.

    The arrays are checked once (`Molecules.from_arrays`: shapes, counts, finite values)
    and handed to ``predict_molecules``.
    """

    def predict_arrays(
        self,
        positions: np.ndarray,
        features: np.ndarray,
        atomic_numbers: np.ndarray,
        counts: np.ndarray,
        *,
        forces: bool = False,
        task: int = 0,
        **options: Any,
    ) -> np.ndarray:
        """Predictions (or forces) for molecules given as stacked atom arrays.

        Parameters
        ----------
        positions : np.ndarray of shape (n_total, 3)
            Every molecule's coordinates (Å), molecule after molecule.
        features : np.ndarray of shape (n_total, n_features)
        atomic_numbers : np.ndarray of shape (n_total,)
        counts : np.ndarray of int, shape (n_molecules,)
            Atoms per molecule, in the order they are stacked.
        forces : bool, default=False
            Return forces ``-dE/dR`` of output ``task`` instead of predictions.
        task : int, default=0
        **options
            Passed to ``predict_molecules`` (e.g. ``batch_atoms``).

        Returns
        -------
        np.ndarray
            (n_molecules, n_outputs) predictions, or (n_total, 3) forces.
        """
        width: Optional[int] = getattr(self, "n_features", None)
        molecules = Molecules.from_arrays(
            positions, features, atomic_numbers, counts, width or np.shape(features)[-1]
        )
        return self.predict_molecules(  # type: ignore[attr-defined]
            molecules, forces=forces, task=task, **options
        )
