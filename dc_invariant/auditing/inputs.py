"""The molecules an audit runs over, from whatever the user has: datasets, SMILES, Mols."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from dc_invariant.conformer import Conformer
from dc_invariant.geometry import clashing_molecules

__all__ = ["AuditInput", "prepare"]


@dataclass
class AuditInput:
    """Molecules ready to audit: the conformers, their ids, and the inputs left out.

    Made by `prepare`; pass it to `audit` (repeatedly, for several targets) to featurize
    once. ``clashes`` lists ``(id, description)`` for audited molecules whose geometry has
    overlapping atoms (possible only in a geometry given by the user: embedded ones are
    checked when they are made).
    """

    molecules: list[Conformer]
    ids: list[str]
    skipped: list[tuple[str, str]]
    clashes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n_inputs(self) -> int:
        """Molecules given: audited plus skipped."""
        return len(self.molecules) + len(self.skipped)


def prepare(
    data: Any,
    *,
    ids: Optional[Sequence[str]] = None,
    n_jobs: int = 1,
    scheduler: Any = None,
    featurizer: Any = None,
) -> AuditInput:
    """Turn audit data into conformers, keeping the reason for every input left out.

    Parameters
    ----------
    data : DeepChem dataset of Conformer, list of Conformer, or list of SMILES / RDKit Mols
        A single SMILES string, Mol or `Conformer` is one molecule.
        SMILES and Mols are featurized with a default `ConformerFeaturizer` (on ``n_jobs``
        processes or the Dask ``scheduler``); one that fails is skipped with RDKit's reason.
    ids : sequence of str, optional
        A label per input (default: the dataset's ids, else the SMILES, else the index).
    featurizer : DeepChem featurizer, optional
        The featurizer of a pipeline to audit: molecules it fails on are skipped here, with
        DeepChem's reason, so that several models behind it are not asked about them.

    Examples
    --------
    >>> prepared = prepare(["CCO", "not a smiles"], ids=["ethanol", "typo"])
    >>> prepared.ids, prepared.skipped
    (['ethanol'], [('typo', 'RDKit could not parse the SMILES')])
    """
    if isinstance(data, AuditInput):
        return data
    if _is_one_molecule(data):
        # A string is iterable: without this, 'CCO' would be audited as C, C and O.
        data = [data]
    if hasattr(data, "X") and hasattr(data, "ids"):
        items, labels = list(data.X), [str(i) for i in data.ids]
    else:
        items = list(data)
        labels = [item if isinstance(item, str) else str(i) for i, item in enumerate(items)]
    if ids is not None:
        if len(ids) != len(items):
            raise ValueError(f"ids has {len(ids)} labels for {len(items)} inputs")
        labels = [str(i) for i in ids]
    reasons: dict[int, str] = {}
    # Clashes of the inputs featurized here are the featurizer's finding; only conformers
    # given as such still need the check.
    known_clashes: Optional[dict[int, str]] = None
    if any(not isinstance(item, (Conformer, np.ndarray)) for item in items):
        from dc_invariant.featurizer import ConformerFeaturizer

        embedder = ConformerFeaturizer(n_jobs=n_jobs, scheduler=scheduler)
        items = list(embedder.featurize(items, log_failures=False))
        reasons = {i: why for i, _, why in embedder.failures}
        known_clashes = {i: text for i, _, text in embedder.clashes}
    prepared = AuditInput([], [], [])
    width = next((c.n_features for c in items if isinstance(c, Conformer)), None)
    for i, (item, name) in enumerate(zip(items, labels)):
        if isinstance(item, Conformer):
            why = _unusable(item, width)
            if why is None:
                prepared.molecules.append(item)
                prepared.ids.append(name)
                if known_clashes is not None and i in known_clashes:
                    prepared.clashes.append((name, known_clashes[i]))
                continue
        else:
            why = reasons.get(i, "not featurized (empty datapoint)")
        prepared.skipped.append((name, why))
    if known_clashes is None:
        found = clashing_molecules(
            [c.atomic_numbers for c in prepared.molecules],
            [c.positions for c in prepared.molecules],
        )
        prepared.clashes = [(prepared.ids[i], text) for i, text in found.items()]
    if featurizer is not None:
        prepared = _featurizable(prepared, featurizer)
    return prepared


def _unusable(conformer: Conformer, width: Optional[int]) -> Optional[str]:
    """Why a datapoint cannot be audited (None when it can): one bad molecule is skipped with
    its reason, never the whole audit."""
    if conformer.n_atoms == 0:
        return "the conformer has no atoms"
    if conformer.n_features != width:
        return f"{conformer.n_features} features per atom where the first molecule has {width}"
    for what, values in (("coordinates", conformer.positions), ("features", conformer.features)):
        if not np.isfinite(values).all():
            return f"NaN or infinite {what}"
    return None


def _featurizable(prepared: AuditInput, featurizer: Any) -> AuditInput:
    """``prepared`` without the molecules ``featurizer`` fails on, skipped with its reason."""
    from dc_invariant.auditing.featurizing import featurize
    from dc_invariant.auditing.rebuild import mols_for
    from dc_invariant.molecules import Molecules

    if not prepared.molecules:
        return prepared
    _, failures = featurize(featurizer, mols_for(Molecules.from_conformers(prepared.molecules)))
    kept = AuditInput([], [], list(prepared.skipped))
    for i, (conformer, name) in enumerate(zip(prepared.molecules, prepared.ids)):
        if i in failures:
            kept.skipped.append((name, failures[i]))
        else:
            kept.molecules.append(conformer)
            kept.ids.append(name)
    audited = set(kept.ids)
    kept.clashes = [(name, text) for name, text in prepared.clashes if name in audited]
    return kept


def _is_one_molecule(data: Any) -> bool:
    if isinstance(data, (str, Conformer)):
        return True
    from rdkit import Chem

    return isinstance(data, Chem.Mol)
