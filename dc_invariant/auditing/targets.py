"""What the audit can check, behind one interface: stacked molecules in, flat outputs out.

Models, DeepChem featurizers and plain functions take their inputs in different shapes and
fail in different ways; `predictor` hides that, so the rest of the audit sees only `Outputs`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Optional

import numpy as np

from dc_invariant._deepchem import import_deepchem
from dc_invariant.auditing.featurizing import (
    as_numbers,
    describe,
    featurize,
    model_dtype,
    predict,
)
from dc_invariant.auditing.rebuild import Lineage, mols_for, own_lineage
from dc_invariant.models.contract import MoleculeModel
from dc_invariant.molecules import Molecules, segment_arange, split_segments

__all__ = [
    "Outputs",
    "PipelineMismatch",
    "TargetFailed",
    "check_target",
    "predictor",
    "run_isolating",
    "target_dtype",
]


class Outputs(NamedTuple):
    """A target's outputs for stacked molecules: flat values, the length of each molecule's
    output, and why the target failed on some (index -> reason; their values are NaN).

    ``same_input`` (pipelines only) tells, per molecule, whether the model was given exactly
    the features of the molecule it is a copy of: then any change of its output is the
    model's rounding (DeepChem predicts in batches, and a row's rounding depends on where
    it falls), not a reading of the geometry.
    """

    values: np.ndarray
    lengths: np.ndarray
    failures: dict[int, str]
    same_input: Optional[np.ndarray] = None


class TargetFailed(RuntimeError):
    """The target raised an error on every molecule it was given: a broken target or a bug,
    not a molecule to skip. The target's own error is the ``__cause__``; ``reasons`` holds
    each molecule's (batch index -> "Type: message")."""

    def __init__(self, message: str, reasons: Optional[dict[int, str]] = None) -> None:
        super().__init__(message)
        self.reasons = reasons or {}


class PipelineMismatch(ValueError):
    """The model of a featurizer + model pipeline cannot read that featurizer's output."""


def check_target(target: Any, output: str = "invariant", featurizer: Any = None) -> None:
    """A ``TypeError`` or ``ValueError`` unless the audit can run ``target`` (with
    ``featurizer``) and compare its outputs as ``output`` says."""
    if featurizer is not None:
        if not hasattr(featurizer, "featurize"):
            raise TypeError(
                f"featurizer must have featurize(mols), got {type(featurizer).__name__}"
            )
        if not hasattr(target, "predict") or isinstance(target, MoleculeModel):
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
    elif not any(hasattr(target, m) for m in ("featurize", "predict", "predict_molecules")) and (
        not callable(target)
    ):
        raise TypeError(
            f"target must be a model with predict(), a featurizer with featurize() or a "
            f"callable f(positions, features), got {type(target).__name__}"
        )


def target_dtype(target: Any, featurizer: Any = None) -> str:
    """The precision of the target's outputs: its own when it can be told, else float64 for
    featurizers and functions and float32 for models."""
    if featurizer is None and hasattr(target, "featurize") and not hasattr(target, "predict"):
        return "float64"
    if featurizer is None and not hasattr(target, "predict"):
        return model_dtype(target) or "float64"  # a function computes in float64
    # DeepChem's torch models are float32 unless converted.
    return model_dtype(target) or "float32"


def predictor(
    target: Any, output: str = "invariant", featurizer: Any = None
) -> Callable[..., Outputs]:
    """A function mapping stacked molecules to their `Outputs`.

    ``target`` is a `MoleculeModel` (every dc_invariant model, and any model with
    ``predict_molecules``: the stacked molecules go to it as they are), another DeepChem
    model (anything with ``predict(dataset)`` over `Conformer` datapoints), a DeepChem
    featurizer (anything with
    ``featurize(mols)``: each molecule is rebuilt as an RDKit Mol with its geometry and atom
    order, then featurized), or a callable ``f(positions, features) -> array``. With a
    ``featurizer``, ``target`` is a model reading that featurizer's output: each rebuilt
    Mol is featurized and the model predicts on a ``NumpyDataset`` of the features.

    The function takes the stacked molecules and, optionally, their `Lineage` (which
    molecule each is a copy of), which lets Mols be rebuilt from one template per molecule.
    """
    check_target(target, output, featurizer)
    if featurizer is not None:

        def run_pipeline(batch: Molecules, lineage: Optional[Lineage] = None) -> Outputs:
            features, failures = featurize(featurizer, mols_for(batch, lineage))
            predicted, errors = _predict_each(target, features)
            featurized = sum(f is not None for f in features)
            if errors and len(errors) == featurized:
                first = errors[min(errors)]
                shapes = sorted({np.shape(f) for f in features if f is not None}, key=str)
                raise PipelineMismatch(
                    f"{describe(target, featurizer)}: the model cannot read the featurizer's "
                    f"output (features of shape {', '.join(map(str, shapes))} per molecule): "
                    f"{type(first).__name__}: {first}"
                ) from first
            failures.update(
                {
                    k: f"the model failed on its features: {type(e).__name__}: {e}"
                    for k, e in errors.items()
                }
            )
            same = _same_features(features, lineage or own_lineage(batch))
            return _ragged(predicted)._replace(failures=failures, same_input=same)

        return run_pipeline
    if hasattr(target, "featurize") and not hasattr(target, "predict"):

        def run_featurizer(batch: Molecules, lineage: Optional[Lineage] = None) -> Outputs:
            features, failures = featurize(target, mols_for(batch, lineage))
            # A featurization DeepChem gave up on becomes NaN: skipped.
            return _ragged(
                np.array([np.nan]) if f is None else as_numbers(f) for f in features
            )._replace(failures=failures)

        return run_featurizer
    forces = output == "vector"
    if isinstance(target, MoleculeModel):

        def run_ours(batch: Molecules, lineage: Optional[Lineage] = None) -> Outputs:
            # The checked batch goes to the model as it is (the `MoleculeModel` contract).
            values = target.predict_molecules(batch, forces=forces)
            lengths = batch.counts * 3 if forces else np.full(len(batch), values.shape[1])
            return Outputs(values.reshape(-1).astype(np.float64), lengths, {})

        return run_ours
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

        return run_model

    def run_callable(batch: Molecules, lineage: Optional[Lineage] = None) -> Outputs:
        return _ragged(
            np.asarray(target(batch.positions[s], batch.features[s])).reshape(-1)
            for s in batch.slices()
        )

    return run_callable


def _predict_each(target: Any, features: list[Any]) -> tuple[list[np.ndarray], dict[int, Any]]:
    """``predict`` over every molecule's features in one call; when the model raises, the
    molecules are halved (features are not computed again) until each error is pinned to its
    molecule. Returns the outputs (NaN where none) and the errors by molecule."""
    out = [np.array([np.nan]) for _ in features]
    errors: dict[int, Any] = {}

    def attempt(rows: list[int]) -> None:
        try:
            predicted = predict(target, [features[k] for k in rows])
        except MemoryError:
            raise
        except Exception as err:  # noqa: BLE001 - pinned to a molecule, or raised by the caller
            if len(rows) == 1:
                errors[rows[0]] = err
                return
            attempt(rows[: len(rows) // 2])
            attempt(rows[len(rows) // 2 :])
            return
        for k, y in zip(rows, predicted):
            out[k] = y

    rows = [k for k, f in enumerate(features) if f is not None]
    if rows:
        attempt(rows)
    return out, errors


def _same_features(features: list[Any], lineage: Lineage) -> np.ndarray:
    """Whether each molecule's features equal, exactly, those of its original."""
    flat = [None if f is None else _flat(f) for f in features]
    same = np.zeros(len(flat), dtype=bool)
    for k, (mine, owner) in enumerate(zip(flat, lineage.owner)):
        theirs = flat[owner]
        same[k] = mine is not None and theirs is not None and np.array_equal(mine, theirs)
    return same


def _flat(features: Any) -> Optional[np.ndarray]:
    try:
        return as_numbers(features)
    except ValueError:  # a datapoint object without numeric arrays: cannot be compared
        return None


def run_isolating(
    run: Callable[..., Outputs],
    batch: Molecules,
    lineage: Lineage,
    excluded: Optional[dict[int, str]] = None,
    name: str = "the target",
) -> Outputs:
    """``run(batch, lineage)``, with molecules the target fails on isolated and left out.

    The batch holds original molecules ``0 .. n-1`` and copies of them (``lineage.owner``).
    Molecules in ``excluded`` (index -> reason) and all their copies are not run. When the
    target raises, the molecules are halved until each error is pinned to one molecule,
    whose rows then fail with the error as their reason; the others' outputs are kept. When
    the molecule itself runs alone, the error belongs to some of its copies: each copy is
    run beside the molecule and only the copies that raise fail (a target that fails on a
    turned copy breaks the symmetry; it must not just lose the molecule).

    Raises
    ------
    PipelineMismatch, TargetFailed
        When the target raised on every molecule it was given.
    """
    excluded = excluded or {}
    owner = lineage.owner
    wanted = np.array([m for m in np.unique(owner) if int(m) not in excluded], dtype=np.int64)
    pieces: list[tuple[np.ndarray, Outputs]] = []
    errors: dict[int, BaseException] = {}

    copy_errors: dict[int, BaseException] = {}

    def run_rows(rows: np.ndarray) -> Outputs:
        if len(rows) == len(batch):
            return run(batch, lineage)
        atoms = segment_arange(batch.starts[rows], batch.counts[rows])
        part_lineage = Lineage(np.searchsorted(rows, owner[rows]), lineage.order[atoms])
        return run(batch.select(rows), part_lineage)

    def attempt(molecules: np.ndarray) -> None:
        rows = np.flatnonzero(np.isin(owner, molecules))
        try:
            pieces.append((rows, run_rows(rows)))
        except (MemoryError, PipelineMismatch):
            raise  # a mismatch was already pinned down molecule by molecule: every one failed
        except Exception as err:  # noqa: BLE001 - pinned to a molecule, or re-raised below
            if len(molecules) == 1:
                pin_copies(int(molecules[0]), rows, err)
                return
            half = len(molecules) // 2
            attempt(molecules[:half])
            attempt(molecules[half:])

    def pin_copies(molecule: int, rows: np.ndarray, err: BaseException) -> None:
        try:
            pieces.append((np.array([molecule]), run_rows(np.array([molecule]))))
        except (MemoryError, PipelineMismatch):
            raise
        except Exception:  # noqa: BLE001 - the molecule's own failure
            errors[molecule] = err
            return
        for row in rows[rows != molecule]:
            try:
                pair = run_rows(np.array([molecule, row]))
            except (MemoryError, PipelineMismatch):
                raise
            except Exception as copy_err:  # noqa: BLE001 - this copy's failure
                copy_errors[int(row)] = copy_err
                continue
            pieces.append((np.array([row]), _take(pair, 1)))

    if len(wanted):
        attempt(wanted)
    if errors and len(errors) == len(wanted):
        first = errors[int(wanted[0])]
        if isinstance(first, PipelineMismatch):
            raise first
        reasons = {m: f"{type(e).__name__}: {e}" for m, e in errors.items()}
        raise TargetFailed(
            f"{name} raised an error on every molecule ({len(wanted)}), e.g. "
            f"{type(first).__name__}: {first}",
            {**reasons, **excluded},
        ) from first
    if len(pieces) == 1 and len(pieces[0][0]) == len(batch):
        return pieces[0][1]  # the usual case: one call, nothing failed or left out
    out = _assemble(len(batch), owner, pieces, errors, excluded)
    out.failures.update({row: f"{type(e).__name__}: {e}" for row, e in copy_errors.items()})
    return out


def _take(outputs: Outputs, row: int) -> Outputs:
    """The `Outputs` of one row of ``outputs``."""
    values = split_segments(outputs.values, outputs.lengths)[row]
    same = None if outputs.same_input is None else outputs.same_input[row : row + 1]
    failures = {0: outputs.failures[row]} if row in outputs.failures else {}
    return Outputs(values, outputs.lengths[row : row + 1], failures, same)


def _assemble(
    n_rows: int,
    owner: np.ndarray,
    pieces: list[tuple[np.ndarray, Outputs]],
    errors: dict[int, BaseException],
    excluded: dict[int, str],
) -> Outputs:
    """One `Outputs` for all rows from the pieces that ran; the rest NaN with a reason."""
    values: list[np.ndarray] = [np.array([np.nan])] * n_rows
    failures: dict[int, str] = {}
    same_input = np.zeros(n_rows, dtype=bool)
    for rows, out in pieces:
        for row, value in zip(rows, split_segments(out.values, out.lengths)):
            values[row] = value
        failures.update({int(rows[k]): why for k, why in out.failures.items()})
        if out.same_input is not None:
            same_input[rows] = out.same_input
    reasons = {m: f"{type(e).__name__}: {e}" for m, e in errors.items()}
    reasons.update(excluded)
    for row in np.flatnonzero(np.isin(owner, list(reasons))):
        failures[int(row)] = reasons[int(owner[row])]
    known = any(out.same_input is not None for _, out in pieces)
    return _ragged(values)._replace(failures=failures, same_input=same_input if known else None)


def _ragged(arrays: Iterable[np.ndarray]) -> Outputs:
    arrays = [np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays]
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    return Outputs(np.concatenate(arrays) if arrays else np.empty(0), lengths, {})
