"""What the audit can check, behind one interface: stacked molecules in, flat outputs out.

Models, DeepChem featurizers and plain functions take their inputs in different shapes and
fail in different ways; `predictor` hides that, so the rest of the audit sees only `Outputs`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from dc_invariant._deepchem import import_deepchem
from dc_invariant.audit.copies import Molecules
from dc_invariant.conformer import Conformer


class Outputs(NamedTuple):
    """A target's outputs for stacked molecules: flat values, the length of each molecule's
    output, and why the target failed on some (index -> reason; their values are NaN)."""

    values: np.ndarray
    lengths: np.ndarray
    failures: dict[int, str]


def predictor(
    target: Any, output: str = "invariant"
) -> tuple[Callable[[Molecules], Outputs], Optional[str]]:
    """A function mapping stacked molecules to their `Outputs`, and the target's dtype.

    ``target`` is a dc_invariant model (stacked arrays
    go straight to its network via ``predict_arrays``), another DeepChem model (anything with
    ``predict(dataset)`` over `Conformer` datapoints), a DeepChem featurizer (anything with
    ``featurize(mols)``: each molecule is rebuilt as an RDKit Mol with its geometry and atom
    order, then featurized), or a callable ``f(positions, features) -> array``.
    """
    if hasattr(target, "featurize") and not hasattr(target, "predict"):

        def run_featurizer(batch: Molecules) -> Outputs:
            mols = [mol_from_conformer(c) for c in batch.conformers()]
            # DeepChem catches a failing featurization and only logs it; the log is the one
            # place its reason survives. Its other warnings (outputs of differing sizes, as
            # raw coordinates give) are expected here and held back.
            with _deepchem_failures() as failures, np.errstate(divide="ignore", invalid="ignore"):
                features = target.featurize(mols)
            # An empty output (a featurization DeepChem gave up on) becomes NaN: skipped.
            values, lengths, _ = _ragged(
                np.asarray(f, dtype=np.float64).reshape(-1) if np.size(f) else np.array([np.nan])
                for f in features
            )
            return Outputs(values, lengths, failures)

        return run_featurizer, "float64"
    dtype = getattr(target, "dtype", None)
    dtype_name = str(dtype).replace("torch.", "") if dtype is not None else None
    forces = output == "vector"
    if hasattr(target, "predict_arrays"):

        def run_ours(batch: Molecules) -> Outputs:
            values = target.predict_arrays(
                batch.positions, batch.features, batch.atomic_numbers, batch.counts, forces=forces
            )
            lengths = batch.counts * 3 if forces else np.full(len(batch), values.shape[1])
            return Outputs(values.reshape(-1).astype(np.float64), lengths, {})

        return run_ours, dtype_name
    if hasattr(target, "predict"):
        dc = import_deepchem()
        forces = forces and hasattr(target, "predict_forces")

        def run_model(batch: Molecules) -> Outputs:
            X = np.empty(len(batch), dtype=object)
            X[:] = batch.conformers()
            dataset = dc.data.NumpyDataset(X)
            if forces:
                return _ragged(f.reshape(-1) for f in target.predict_forces(dataset))
            return _ragged(np.asarray(target.predict(dataset)).reshape(len(batch), -1))

        return run_model, dtype_name
    if callable(target):

        def run_callable(batch: Molecules) -> Outputs:
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


class _FailureLog(logging.Handler):
    """Collects DeepChem's "Failed to featurize datapoint i" / "Exception message" pairs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.failures: dict[int, str] = {}
        self._index: Optional[int] = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Failed to featurize datapoint") and record.args:
            self._index = int(record.args[0])
            self.failures[self._index] = "DeepChem could not featurize it"
        elif message.startswith("Exception message: ") and self._index is not None:
            text = message[len("Exception message: ") :].strip()
            if text:  # some DeepChem exceptions carry no text
                self.failures[self._index] = f"DeepChem could not featurize it: {text}"


@contextlib.contextmanager
def _deepchem_failures() -> Iterator[dict[int, str]]:
    """Hold back DeepChem's log lines, keeping its featurization failures (index -> reason)."""
    handler = _FailureLog()
    log = logging.getLogger("deepchem")
    saved = log.level, log.propagate
    log.setLevel(logging.WARNING)
    log.propagate = False
    log.addHandler(handler)
    try:
        yield handler.failures
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]


def mol_from_conformer(conformer: Conformer) -> Any:
    """An RDKit Mol with the conformer's atoms, in its order, and its geometry in 3D.

    Connectivity is perceived from the geometry, which is all that geometric featurizers
    (Coulomb matrices, coordinates) read.
    """
    from dc_invariant.datasets import qm9_mol

    return qm9_mol(conformer.atomic_numbers, conformer.positions)
