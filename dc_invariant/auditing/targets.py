"""What the audit can check, behind one interface: stacked molecules in, flat outputs out.

Models, DeepChem featurizers and plain functions take their inputs in different shapes and
fail in different ways; `predictor` hides that, so the rest of the audit sees only `Outputs`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Optional

import numpy as np

from dc_invariant._deepchem import import_deepchem
from dc_invariant.auditing.featurizing import as_numbers, featurize, model_dtype, predict
from dc_invariant.auditing.rebuild import Lineage, mols_for
from dc_invariant.molecules import Molecules


class Outputs(NamedTuple):
    """A target's outputs for stacked molecules: flat values, the length of each molecule's
    output, and why the target failed on some (index -> reason; their values are NaN)."""

    values: np.ndarray
    lengths: np.ndarray
    failures: dict[int, str]


def predictor(
    target: Any, output: str = "invariant", featurizer: Any = None
) -> tuple[Callable[..., Outputs], Optional[str]]:
    """A function mapping stacked molecules to their `Outputs`, and the target's dtype.

    ``target`` is a dc_invariant model (stacked arrays
    go straight to its network via ``predict_arrays``), another DeepChem model (anything with
    ``predict(dataset)`` over `Conformer` datapoints), a DeepChem featurizer (anything with
    ``featurize(mols)``: each molecule is rebuilt as an RDKit Mol with its geometry and atom
    order, then featurized), or a callable ``f(positions, features) -> array``. With a
    ``featurizer``, ``target`` is a model reading that featurizer's output: each rebuilt
    Mol is featurized and the model predicts on a ``NumpyDataset`` of the features.

    The function takes the stacked molecules and, optionally, their `Lineage` (which
    molecule each is a copy of), which lets Mols be rebuilt from one template per molecule.
    """
    if featurizer is not None:
        if not hasattr(featurizer, "featurize"):
            raise TypeError(
                f"featurizer must have featurize(mols), got {type(featurizer).__name__}"
            )
        if not hasattr(target, "predict") or hasattr(target, "predict_arrays"):
            raise TypeError(
                "with a featurizer, target must be a model with predict(dataset) that reads "
                f"the featurizer's output (dc_invariant models read Conformers), got "
                f"{type(target).__name__}"
            )
        if output == "vector":
            raise ValueError(
                "output='vector' audits forces, which a featurizer + model pipeline does not "
                "give; use output='invariant'"
            )

        def run_pipeline(batch: Molecules, lineage: Optional[Lineage] = None) -> Outputs:
            features, failures = featurize(featurizer, mols_for(batch, lineage))
            return _ragged(predict(target, features))._replace(failures=failures)

        return run_pipeline, model_dtype(target)
    if hasattr(target, "featurize") and not hasattr(target, "predict"):

        def run_featurizer(batch: Molecules, lineage: Optional[Lineage] = None) -> Outputs:
            features, failures = featurize(target, mols_for(batch, lineage))
            # A featurization DeepChem gave up on becomes NaN: skipped.
            return _ragged(
                np.array([np.nan]) if f is None else as_numbers(f) for f in features
            )._replace(failures=failures)

        return run_featurizer, "float64"
    dtype_name = model_dtype(target)
    forces = output == "vector"
    if hasattr(target, "predict_arrays"):

        def run_ours(batch: Molecules, lineage: Optional[Lineage] = None) -> Outputs:
            values = target.predict_arrays(
                batch.positions, batch.features, batch.atomic_numbers, batch.counts, forces=forces
            )
            lengths = batch.counts * 3 if forces else np.full(len(batch), values.shape[1])
            return Outputs(values.reshape(-1).astype(np.float64), lengths, {})

        return run_ours, dtype_name
    if hasattr(target, "predict"):
        dc = import_deepchem()
        forces = forces and hasattr(target, "predict_forces")

        def run_model(batch: Molecules, lineage: Optional[Lineage] = None) -> Outputs:
            X = np.empty(len(batch), dtype=object)
            X[:] = batch.conformers()
            dataset = dc.data.NumpyDataset(X)
            if forces:
                return _ragged(f.reshape(-1) for f in target.predict_forces(dataset))
            return _ragged(np.asarray(target.predict(dataset)).reshape(len(batch), -1))

        return run_model, dtype_name
    if callable(target):

        def run_callable(batch: Molecules, lineage: Optional[Lineage] = None) -> Outputs:
            return _ragged(
                np.asarray(target(batch.positions[s], batch.features[s])).reshape(-1)
                for s in batch.slices()
            )

        return run_callable, None
    raise TypeError(
        f"target must be a model with predict(), a featurizer with featurize() or a callable "
        f"f(positions, features), got {type(target).__name__}"
    )


def _ragged(arrays: Iterable[np.ndarray]) -> Outputs:
    arrays = [np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays]
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    return Outputs(np.concatenate(arrays) if arrays else np.empty(0), lengths, {})
