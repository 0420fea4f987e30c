"""DeepChem featurizers as audit targets: alone, or feeding a model the way its users run it.

A DeepChem user's model reads its own featurizer's output: a ``MultitaskRegressor`` on a
Coulomb matrix, a ``MATModel`` on ``MATFeaturizer``, a forest on fingerprints. The audit
rebuilds every molecule and copy as an RDKit Mol (`rebuild`), featurizes it, and predicts
with ``model.predict(NumpyDataset(features))``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Optional

import numpy as np

from dc_invariant._deepchem import import_deepchem

__all__ = ["as_numbers", "describe", "featurize", "model_dtype", "predict"]


# DeepChem's failure log names the molecule but not always the reason.
_NO_TEXT = "DeepChem could not featurize it"


def featurize(featurizer: Any, mols: Sequence[Any]) -> tuple[list[Any], dict[int, str]]:
    """Each Mol's features (None where DeepChem failed) and DeepChem's reason per failure."""
    # DeepChem catches a failing featurization and only logs it; the log is the one place
    # its reason survives. Its other warnings (outputs of differing sizes, as raw
    # coordinates give) are expected here and held back.
    from rdkit import rdBase

    # RDKit's own log lines (e.g. deprecation notices, once per molecule) are held back too.
    blocker = rdBase.BlockLogs()
    try:
        with _deepchem_failures() as failures, np.errstate(divide="ignore", invalid="ignore"):
            features = featurizer.featurize(list(mols))
    finally:
        del blocker
    out = [None if isinstance(f, np.ndarray) and f.size == 0 else f for f in features]
    for i, f in enumerate(out):
        if f is None and failures.get(i, _NO_TEXT) == _NO_TEXT:
            failures[i] = _too_large(featurizer, mols[i]) or _NO_TEXT
    return out, failures


def _too_large(featurizer: Any, mol: Any) -> Optional[str]:
    """The reason DeepChem does not give when a molecule exceeds a featurizer's max_atoms."""
    limit = getattr(featurizer, "max_atoms", None)
    n_atoms = mol.GetNumAtoms() if hasattr(mol, "GetNumAtoms") else None
    if isinstance(limit, int) and n_atoms is not None and n_atoms > limit:
        return (
            f"{_NO_TEXT}: the molecule has {n_atoms} atoms (hydrogens included), more than "
            f"{type(featurizer).__name__}'s max_atoms={limit}"
        )
    return None


def as_numbers(features: Any) -> np.ndarray:
    """One molecule's features as a flat float64 array, for auditing a featurizer alone.

    Arrays are flattened; a featurizer's datapoint object (``MATEncoding``, ``WeaveMol``,
    ``GraphData``) gives its numeric array attributes, in name order, one after another.
    """
    array = np.asarray(features)
    if array.dtype.kind in "fiub":
        return array.astype(np.float64).reshape(-1)
    parts = [
        np.asarray(value, dtype=np.float64).reshape(-1)
        for _, value in sorted(vars(features).items() if hasattr(features, "__dict__") else [])
        if isinstance(value, np.ndarray) and value.dtype.kind in "fiub"
    ]
    if not parts:
        raise ValueError(
            f"the featurizer returns {type(features).__name__}, which holds no numeric arrays "
            "to compare; audit it with the model that reads it (featurizer=..., --target)"
        )
    return np.concatenate(parts)


def predict(model: Any, features: Sequence[Any]) -> list[np.ndarray]:
    """``model.predict`` over the features that exist, as one flat array per molecule.

    Molecules without features get a single NaN, which the audit reports as a skip.
    """
    dc = import_deepchem()
    good = [i for i, f in enumerate(features) if f is not None]
    out = [np.array([np.nan]) for _ in features]
    if not good:
        return out
    X = _stack([features[i] for i in good])
    with warnings.catch_warnings():
        # DeepChem's graph models re-wrap tensors on every batch; torch warns each time.
        warnings.filterwarnings("ignore", message="To copy construct from a tensor")
        predicted = np.asarray(model.predict(dc.data.NumpyDataset(X)), dtype=np.float64)
    for i, y in zip(good, predicted.reshape(len(good), -1)):
        out[i] = y
    return out


def _stack(features: list[Any]) -> np.ndarray:
    """Numeric features of one shape as one array; anything else (graph objects) as objects."""
    arrays = [np.asarray(f) for f in features]
    if len({a.shape for a in arrays}) == 1 and all(a.dtype.kind in "fiub" for a in arrays):
        return np.stack(arrays)
    X = np.empty(len(features), dtype=object)
    X[:] = features
    return X


def model_dtype(model: Any) -> Optional[str]:
    """The precision of a model's arithmetic, when it can be told.

    dc_invariant models say so; a DeepChem ``TorchModel`` by its parameters (float32 unless
    converted); a DeepChem ``SklearnModel`` computes in float64.
    """
    dtype = getattr(model, "dtype", None)
    if dtype is not None:
        return precision_name(dtype)
    # A DeepChem TorchModel holds its network in .model; a torch module audited as a
    # function is the network itself.
    network = getattr(model, "model", model)
    if hasattr(network, "parameters"):
        parameters = next(iter(network.parameters()), None)
        return precision_name(parameters.dtype) if parameters is not None else None
    if network is not None and hasattr(network, "predict") and hasattr(network, "fit"):
        return "float64"
    return None


def precision_name(dtype: Any) -> str:
    """``"float64"`` for ``np.float64`` (the class, whose ``str`` is ``"<class ...>"``),
    ``np.dtype("float64")``, ``"float64"`` and ``torch.float64`` alike."""
    try:
        return np.dtype(dtype).name
    except TypeError:  # a torch dtype, or something NumPy does not know
        return str(dtype).replace("torch.", "")


def describe(target: Any, featurizer: Any = None) -> str:
    """A short name for a target, e.g. ``"CircularFingerprint -> MultitaskRegressor"``."""
    name = type(target).__name__
    return name if featurizer is None else f"{type(featurizer).__name__} -> {name}"


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
            self.failures[self._index] = _NO_TEXT
        elif message.startswith("Exception message: ") and self._index is not None:
            text = message[len("Exception message: ") :].strip()
            if text:  # some DeepChem exceptions carry no text
                self.failures[self._index] = f"{_NO_TEXT}: {text}"
            # Only the message right after a failure is its reason; a later one (stacking
            # outputs of differing sizes) belongs to no molecule.
            self._index = None


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
