"""RDKit Mols for the audit's molecules and their copies: chemistry once, geometry per copy.

Featurizers, and the models behind them, read RDKit Mols. Every audited molecule gets one
template Mol: from its SMILES when the SMILES' atoms line up with the conformer's (same
elements in the same order, every bond of a plausible length), else with bonds perceived
from its geometry. Every transformed copy is its molecule's template renumbered like the
copy and given the copy's coordinates. Chemistry is never re-perceived on a moved,
renumbered or distorted copy, so a change in the output is the target's, not RDKit's.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np

from dc_invariant.molecules import Molecules, segment_arange

__all__ = ["Lineage", "mols_for", "own_lineage", "template"]

# A bond is plausible up to this multiple of the two covalent radii (RDKit's own
# connectivity perception uses a similar margin).
_BOND_SLACK = 1.3

# Bond orders are perceived from geometry only up to this size; beyond it RDKit's
# assignment gets slow, and connectivity alone is what geometric featurizers read.
_PERCEIVE_ORDERS_UP_TO = 64


# Set on templates with full chemistry (bond orders, rings), which copies keep sanitized.
_SANITIZED = "_dc_invariant_sanitized"


class Lineage(NamedTuple):
    """Where the molecules of a batch come from.

    ``owner[k]`` is the index, in the same batch, of the molecule that molecule ``k`` is a
    copy of (itself for an original); ``order`` gives, atom by atom, the index of each
    atom in its owner.
    """

    owner: np.ndarray  # (n_molecules,) int
    order: np.ndarray  # (n_atoms,) int


def own_lineage(batch: Molecules) -> Lineage:
    """Every molecule its own original, atoms in their own order."""
    return Lineage(
        np.arange(len(batch)), segment_arange(np.zeros(len(batch), np.int64), batch.counts)
    )


def mols_for(batch: Molecules, lineage: Optional[Lineage] = None) -> list[Any]:
    """One RDKit Mol per molecule of ``batch``, in its atom order and with its coordinates.

    Parameters
    ----------
    batch : Molecules
        Stacked molecules (originals and copies).
    lineage : Lineage, optional
        Which molecule each one is a copy of, and how its atoms map; by default every
        molecule is an original.
    """
    from rdkit import Chem

    lineage = own_lineage(batch) if lineage is None else lineage
    templates: dict[int, Any] = {}
    starts, counts = batch.starts.tolist(), batch.counts.tolist()
    mols = []
    for k, (start, n) in enumerate(zip(starts, counts)):
        owner = int(lineage.owner[k])
        if owner not in templates:
            atoms = slice(starts[owner], starts[owner] + counts[owner])
            templates[owner] = template(
                batch.positions[atoms], batch.atomic_numbers[atoms], batch.smiles[owner]
            )
        order = lineage.order[start : start + n]
        if (order != np.arange(n)).any():
            mol = Chem.RenumberAtoms(templates[owner], order.tolist())
            if templates[owner].HasProp(_SANITIZED):
                # Renumbering drops ring information; a sanitized Mol, as users featurize,
                # has it. Sanitizing again changes nothing else.
                Chem.SanitizeMol(mol)
        else:
            mol = Chem.Mol(templates[owner])
        mol.GetConformer().SetPositions(np.ascontiguousarray(batch.positions[start : start + n]))
        if templates[owner].HasProp(_SANITIZED):
            # Stereo from this copy's own coordinates: a template matched onto a Mol's atoms
            # keeps no chiral tags, and a mirrored copy is the other enantiomer.
            Chem.AssignStereochemistryFrom3D(mol)
        mols.append(mol)
    return mols


def template(positions: np.ndarray, atomic_numbers: np.ndarray, smiles: Optional[str]) -> Any:
    """The molecule's chemistry as an RDKit Mol in the conformer's atom order and geometry.

    Taken from ``smiles`` when one of its readings (as written or canonical, with or without
    hydrogens) has the conformer's elements in the conformer's order and every bond of a
    plausible length; else the SMILES' bond orders and charges are matched onto the
    connectivity perceived from the geometry (atoms in another order: an SDF's, a Mol's);
    else everything is perceived from the geometry (bond orders for small neutral
    molecules, connectivity alone where that fails).
    """
    from rdkit import Chem

    from dc_invariant.embedding import mol_from_geometry

    readings = _smiles_readings(smiles)
    for mol in readings:
        if _lines_up(mol, atomic_numbers, positions):
            mol = Chem.Mol(mol)
            Chem.SanitizeMol(mol)  # AddHs leaves ring information unset
            conformer = Chem.Conformer(mol.GetNumAtoms())
            conformer.SetPositions(np.ascontiguousarray(positions, dtype=np.float64))
            conformer.Set3D(True)
            mol.RemoveAllConformers()
            mol.AddConformer(conformer, assignId=True)
            mol.SetBoolProp(_SANITIZED, True)
            return mol
    mapped = _assign_from_smiles(readings, atomic_numbers, positions) if readings else None
    if mapped is not None:
        return mapped
    if len(atomic_numbers) <= _PERCEIVE_ORDERS_UP_TO:
        try:
            mol = mol_from_geometry(atomic_numbers, positions, bond_orders=True)
            Chem.SanitizeMol(mol)
            mol.SetBoolProp(_SANITIZED, True)
            return mol
        except (ValueError, RuntimeError):
            pass  # charged, radical or unusual: connectivity is all that can be told
    return mol_from_geometry(atomic_numbers, positions)


def _assign_from_smiles(
    readings: list[Any], atomic_numbers: np.ndarray, positions: np.ndarray
) -> Optional[Any]:
    from rdkit import Chem, rdBase
    from rdkit.Chem import AllChem

    from dc_invariant.embedding import mol_from_geometry

    perceived = mol_from_geometry(atomic_numbers, positions)
    blocker = rdBase.BlockLogs()
    try:
        for reading in readings:
            if reading.GetNumAtoms() != len(atomic_numbers):
                continue
            try:
                mol = AllChem.AssignBondOrdersFromTemplate(reading, perceived)
                Chem.SanitizeMol(mol)
            except (ValueError, RuntimeError):
                continue
            mol.SetBoolProp(_SANITIZED, True)
            return mol
    finally:
        del blocker
    return None


def _smiles_readings(smiles: Optional[str]) -> list[Any]:
    """The Mols a `Conformer` built from ``smiles`` may follow in atom order."""
    if not isinstance(smiles, str) or not smiles:
        return []
    from rdkit import Chem, rdBase

    blocker = rdBase.BlockLogs()
    try:
        written = Chem.MolFromSmiles(smiles)
        if written is None:
            return []
        canonical = Chem.MolFromSmiles(Chem.MolToSmiles(written))
        readings = [m for m in (written, canonical) if m is not None]
        return [Chem.AddHs(m) for m in readings] + readings
    finally:
        del blocker


def _lines_up(mol: Any, atomic_numbers: np.ndarray, positions: np.ndarray) -> bool:
    from rdkit import Chem

    if mol.GetNumAtoms() != len(atomic_numbers):
        return False
    z = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    if (z != atomic_numbers).any():
        return False
    if mol.GetNumBonds() == 0:
        return True
    bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()])
    table = Chem.GetPeriodicTable()
    radius = np.array([table.GetRcovalent(int(e)) for e in z])
    length = np.linalg.norm(positions[bonds[:, 0]] - positions[bonds[:, 1]], axis=1)
    return bool((length <= _BOND_SLACK * radius[bonds].sum(axis=1)).all())
