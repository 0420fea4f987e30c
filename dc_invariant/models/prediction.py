"""Prediction paths of the torch models beyond DeepChem's ``predict``: stacked molecules (the
audit's many copies; the `MoleculeModel` contract) and forces by autograd, both on one
inference thread.

`PredictionMixin` is part of `InvariantModel`; it uses the model's ``make_batch``,
``_prepare_batch`` and ``_batches``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import torch

from dc_invariant.conformer import Conformer
from dc_invariant.models.batching import Batch, transform_scale
from dc_invariant.models.contract import StackedArrays
from dc_invariant.models.runtime import inference_threads
from dc_invariant.molecules import Molecules
from dc_invariant.validation import check_task

__all__ = ["PredictionMixin"]


class PredictionMixin(StackedArrays):
    """`predict_molecules` (the `MoleculeModel` contract), `predict_arrays` and
    `predict_forces` (see `InvariantModel`)."""

    def predict_molecules(
        self,
        molecules: Molecules,
        *,
        forces: bool = False,
        task: int = 0,
        batch_atoms: Optional[int] = None,
    ) -> np.ndarray:
        """Predictions (or forces) for a checked stack of molecules (`MoleculeModel`).

        The same network as ``predict`` / `predict_forces`, without building a `Conformer`
        per molecule or DeepChem's dataset machinery: the path for many generated copies of
        molecules, such as a symmetry audit's. Batches are bounded by atoms, not molecules,
        so memory stays bounded whatever the molecules' sizes. `predict_arrays` takes the
        same molecules as plain stacked arrays.

        Parameters
        ----------
        molecules : Molecules
            With ``n_features`` features per atom.
        forces : bool, default=False
            Return forces ``-dE/dR`` of output ``task`` instead of predictions.
        task : int, default=0
        batch_atoms : int, optional
            Atoms per batch (a larger molecule gets a batch of its own); default: the
            model's ``predict_batch_atoms``.

        Returns
        -------
        np.ndarray
            (n_molecules, n_outputs) predictions (class probabilities flattened per
            molecule in classification mode), or (n_total, 3) forces.

        Examples
        --------
        >>> from dc_invariant.models import RotationInvariantModel
        >>> model = RotationInvariantModel(n_features=1, dtype="float64")
        >>> positions = np.array([[0.0, 0, 0], [1.0, 0, 0], [0.0, 0, 0]])  # H2, then H
        >>> arrays = (positions, np.ones((3, 1)), [1, 1, 1], [2, 1])
        >>> model.predict_arrays(*arrays).shape
        (2, 1)
        >>> forces = model.predict_arrays(*arrays, forces=True)
        >>> forces.shape, bool(abs(forces[:2].sum(axis=0)).max() < 1e-12)  # no net force
        ((3, 3), True)
        """
        batch_atoms = self.predict_batch_atoms if batch_atoms is None else batch_atoms
        if molecules.n_features != self.n_features:
            raise ValueError(
                f"molecules have {molecules.n_features} features per atom, the model expects "
                f"n_features={self.n_features}"
            )
        if forces:
            self._check_forces(task)
        limit = self._n_atoms_limit()
        if limit is not None and molecules.counts.max() > limit:
            raise ValueError(
                f"a molecule has {molecules.counts.max()} atoms, more than n_atoms={limit}"
            )
        # No `_ensure_built`: it creates the optimizer, which prediction never uses and whose
        # first creation imports torch._dynamo (over a second, in every worker process).
        self.model.eval()
        out = []
        for part in molecules.batches(batch_atoms, padded_to=limit):
            batch = self.make_batch(part)
            inputs, _, _ = self._prepare_batch((batch.inputs, None, None))
            if forces:
                out.extend(self._forces(batch, inputs, task))
                continue
            with torch.no_grad(), inference_threads():
                result = self.model(inputs)
            if isinstance(result, list):  # classification: (probabilities, logits)
                result = result[0]
            out.append(result.cpu().numpy().reshape(len(part), -1))
        return np.concatenate(out)

    def predict_forces(
        self, dataset: Any, transformers: Sequence[Any] = (), task: int = 0
    ) -> list[np.ndarray]:
        """Forces ``F = -dE/dR`` on every atom, one (n_atoms, 3) array per molecule.

        Atoms are in each datapoint's own order, without padding. ``transformers`` that were
        applied to ``y`` (e.g. ``NormalizationTransformer``) are undone, so forces are in the
        label's units per Å. Only for regression models. ``dataset`` is a DeepChem dataset, a
        list of `Conformer`s, or one `Conformer` (which gives a list of one array).
        """
        if isinstance(dataset, Conformer):
            dataset = [dataset]
        if not hasattr(dataset, "X"):
            items = list(dataset)
            bad = [i for i, c in enumerate(items) if not isinstance(c, Conformer)]
            if bad:
                raise TypeError(
                    f"predict_forces takes a dataset or Conformers; item {bad[0]} is a "
                    f"{type(items[bad[0]]).__name__} (featurize it with ConformerFeaturizer)"
                )
            objects = np.empty(len(items), dtype=object)
            objects[:] = items
            from dc_invariant._deepchem import import_deepchem

            dataset = import_deepchem().data.NumpyDataset(objects)
        self._check_forces(task)
        scale = transform_scale(transformers, self.n_tasks)[task]
        self.model.eval()  # no optimizer needed (see `predict_molecules`)
        forces: list[np.ndarray] = []
        for batch, _, _ in self._batches(dataset, 1, shuffle=False, pad_to=None):
            inputs, _, _ = self._prepare_batch((batch.inputs, None, None))
            forces.extend(self._forces(batch, inputs, task, scale))
        return forces

    def _check_forces(self, task: int) -> None:
        if self.mode != "regression":
            raise ValueError("forces are the gradient of an energy: use a regression model")
        check_task(task, self.n_tasks)

    def _forces(
        self, batch: Batch, inputs: list[torch.Tensor], task: int, scale: float = 1.0
    ) -> list[np.ndarray]:
        """``-scale * dE_task/dR`` for one prepared batch, one (n_atoms, 3) array a molecule."""
        positions = inputs[batch.positions_input].requires_grad_(True)
        # On the inference threads too: SchNet's gradient sums depend on torch's thread
        # count at the last bit, and forces should not depend on the machine's load.
        with inference_threads():
            energies = self.model(inputs)[:, task]
            (gradient,) = torch.autograd.grad(energies.sum(), positions)
        forces = batch.split_atoms(-scale * gradient.detach().cpu().numpy())
        # A molecule predicted as NaN (an element the model cannot take) has no forces
        # either; its gradient through the NaN fill would read as zero force.
        for k in np.flatnonzero(torch.isnan(energies).cpu().numpy()):
            forces[k] = np.full_like(forces[k], np.nan)
        return forces
