"""A reusable contract check for models, as scikit-learn's ``check_estimator`` or e3nn's
``assert_equivariant``: run it in your own tests on your own model.

`check_model` asks of a model what the audit and the package's tools rely on: the
`MoleculeModel` contract (shapes, finite values, a molecule's prediction independent of its
batch mates, the same numbers again on a second call, ``predict`` agreeing with
``predict_molecules``), forces of the right shape that turn with the molecule, and the
symmetries the model claims, each checked by `assert_invariant`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from dc_invariant.auditing.compute import assert_invariant
from dc_invariant.auditing.featurizing import model_dtype
from dc_invariant.auditing.inputs import prepare
from dc_invariant.auditing.settings import SYMMETRIES
from dc_invariant.models.contract import MoleculeModel
from dc_invariant.molecules import Molecules

__all__ = ["check_model"]

# Agreement asked of two routes to the same numbers, by the model's precision: a batch of
# other sizes may round differently in float32 GEMMs.
_AGREE = {"float32": (1e-5, 1e-6), "float64": (1e-10, 1e-12)}

_DEFAULT_SMILES = ("CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C[C@@H](C(=O)O)N", "O")


def check_model(
    model: Any,
    molecules: Any = None,
    *,
    symmetries: Sequence[str] = SYMMETRIES,
    forces: Optional[bool] = None,
    seed: int = 0,
) -> None:
    """Check ``model`` against the `MoleculeModel` contract; ``AssertionError`` if it fails.

    Parameters
    ----------
    model : MoleculeModel
        Anything with ``n_tasks`` and ``predict_molecules(molecules, *, forces, task)``.
    molecules : audit data, optional
        What `prepare` accepts (SMILES, Conformers, a dataset); default: five small
        molecules embedded with a default `ConformerFeaturizer` (one a single-atom-heavy
        water, one chiral).
    symmetries : sequence of str, default=SYMMETRIES
        The symmetries the model claims (the tutorial's dense baseline claims none).
    forces : bool, optional
        Whether to check forces; default: when the model is a regression model.
    seed : int, default=0
        Seeds the audit's group elements.

    Examples
    --------
    >>> from dc_invariant.models import RotationInvariantModel
    >>> check_model(RotationInvariantModel(dtype="float64"))
    """
    if not isinstance(model, MoleculeModel):
        raise AssertionError(
            f"{type(model).__name__} does not follow the MoleculeModel contract: it needs "
            "n_tasks and predict_molecules(molecules, *, forces=False, task=0)"
        )
    prepared = prepare(list(_DEFAULT_SMILES) if molecules is None else molecules)
    if not prepared.molecules:
        raise ValueError("no molecule to check the model on: all were skipped")
    batch = Molecules.from_conformers(prepared.molecules)
    rtol, atol = _AGREE.get(model_dtype(model) or "float32", _AGREE["float32"])
    name = type(model).__name__

    values = np.asarray(model.predict_molecules(batch))
    if values.ndim != 2 or len(values) != len(batch) or values.shape[1] < model.n_tasks:
        raise AssertionError(
            f"{name}.predict_molecules gave shape {values.shape} for {len(batch)} molecules; "
            f"expected ({len(batch)}, n_outputs >= n_tasks={model.n_tasks})"
        )
    if not np.isfinite(values).all():
        raise AssertionError(f"{name}.predict_molecules gave NaN or infinite values")
    np.testing.assert_array_equal(
        np.asarray(model.predict_molecules(batch)), values, err_msg=f"{name}: a second call"
    )
    for k in range(len(batch)):
        alone = np.asarray(model.predict_molecules(batch.select(np.array([k]))))
        np.testing.assert_allclose(
            alone[0], values[k], rtol=rtol, atol=atol,
            err_msg=f"{name}: molecule {k} alone differs from the same molecule in a batch",
        )  # fmt: skip
    if hasattr(model, "predict"):
        from dc_invariant._deepchem import import_deepchem

        X = np.empty(len(batch), dtype=object)
        X[:] = batch.conformers()
        predicted = np.asarray(model.predict(import_deepchem().data.NumpyDataset(X)))
        np.testing.assert_allclose(
            predicted.reshape(len(batch), -1), values, rtol=rtol, atol=atol,
            err_msg=f"{name}: predict(dataset) differs from predict_molecules",
        )  # fmt: skip

    if forces is None:
        forces = getattr(model, "mode", "regression") == "regression"
    if forces:
        force_values = np.asarray(model.predict_molecules(batch, forces=True))
        n_atoms = int(batch.counts.sum())
        if force_values.shape != (n_atoms, 3) or not np.isfinite(force_values).all():
            raise AssertionError(
                f"{name}.predict_molecules(forces=True) gave shape {force_values.shape} (or "
                f"non-finite values); expected finite forces of shape ({n_atoms}, 3)"
            )
    if symmetries:
        assert_invariant(model, prepared, symmetries=list(symmetries), n_samples=2, seed=seed)
        if forces:
            rigid = [s for s in symmetries if s != "identity"]
            assert_invariant(
                model, prepared, symmetries=rigid, n_samples=2, seed=seed, output="vector"
            )
