"""RDKit work behind `ConformerFeaturizer`: geometry (own conformer or ETKDGv3) and features.

This module imports RDKit but not DeepChem, so joblib workers that featurize in parallel
start without paying DeepChem's multi-second import.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import rdDistGeom, rdForceFieldHelpers

from dc_invariant.conformer import Conformer
from dc_invariant.featurizer_settings import (
    _HYBRIDIZATION_COLUMN,
    _PERIODIC_TABLE,
    HYBRIDIZATIONS,
    FeaturizerSettings,
)
from dc_invariant.geometry import describe_clash, find_clash, place_fragments

__all__ = [
    "Encoder",
    "FeaturizationError",
    "ShippedMol",
    "conformer_from_arrays",
    "describe_input",
    "featurize_chunk",
    "mol_from_geometry",
    "without_hydrogens",
]


class FeaturizationError(Exception):
    """One input could not be turned into a `Conformer`; the message is the reason."""


def describe_input(item: Any) -> str:
    """Short text for an input in a log line: the SMILES, or a Mol's SMILES/name."""
    if isinstance(item, str):
        text = item
    elif isinstance(item, Chem.Mol):
        try:
            text = Chem.MolToSmiles(item)
        except Exception:  # noqa: BLE001 - a Mol too broken to write still deserves a label
            text = f"<Mol with {item.GetNumAtoms()} atoms>"
    else:
        text = repr(item)
    return text if len(text) <= 80 else text[:77] + "..."


def _unreadable(smiles: str) -> str:
    """Why RDKit gives no Mol for ``smiles``: a syntax error, or chemistry it rejects."""
    raw = Chem.MolFromSmiles(smiles, sanitize=False)
    if raw is None:
        return "RDKit could not parse the SMILES"
    try:
        Chem.SanitizeMol(raw)
    except Exception as err:  # noqa: BLE001 - RDKit's own message is the reason given
        return f"RDKit rejected the SMILES: {err}"
    return "RDKit could not parse the SMILES"


class Encoder:
    """Turns RDKit Mols into `Conformer`s under one `FeaturizerSettings`."""

    def __init__(self, settings: FeaturizerSettings) -> None:
        self.settings = settings
        self.columns = settings.column_of_element()
        self.n_element_columns = len(settings.elements) + int(settings.other_element)
        self.n_features = len(settings.feature_names)

    def to_mol(self, item: Any) -> Chem.Mol:
        if isinstance(item, str):
            mol = Chem.MolFromSmiles(item)
            if mol is None:
                raise FeaturizationError(_unreadable(item))
            if mol.GetNumAtoms() == 0:
                raise FeaturizationError("the molecule has no atoms")
            mol = self.select_fragments(mol)
            if self.settings.canonical_atom_order:
                # Re-reading the canonical SMILES orders atoms *and* bonds canonically; ETKDG
                # depends on both, so only then do 'CCO' and 'OCC' give identical arrays.
                mol = Chem.MolFromSmiles(Chem.MolToSmiles(mol))
            return mol
        if isinstance(item, Chem.Mol):
            return self.select_fragments(with_valences(item))
        if item is None:
            raise FeaturizationError("no molecule (None), e.g. a record RDKit could not read")
        if isinstance(item, float) and item != item:
            raise FeaturizationError("no SMILES (an empty cell, read as NaN)")
        raise FeaturizationError(
            f"expected a SMILES string or an RDKit Mol, got {type(item).__name__}"
        )

    def select_fragments(self, mol: Chem.Mol) -> Chem.Mol:
        """The Mol to featurize under the ``fragments`` setting (a new Mol when one is dropped)."""
        if self.settings.fragments == "all" or mol.GetNumAtoms() < 2:
            return mol
        pieces = Chem.GetMolFrags(mol, asMols=False, sanitizeFrags=False)
        if len(pieces) == 1:
            return mol
        if self.settings.fragments == "error":
            names = [Chem.MolFragmentToSmiles(mol, atomsToUse=list(p)) for p in pieces]
            raise FeaturizationError(
                f"{len(pieces)} disconnected fragments {names} (a salt, hydrate or mixture); "
                "fragments='largest' keeps the largest, fragments='all' keeps every one"
            )
        from rdkit.Chem.MolStandardize import rdMolStandardize

        # RDKit's chooser ranks by atom count, then molecular weight, then SMILES: a total
        # order, so ties are broken the same way every time. It keeps the atoms' coordinates.
        return rdMolStandardize.LargestFragmentChooser(preferOrganic=True).choose(mol)

    def geometry(self, mol: Chem.Mol) -> tuple[Chem.Mol, np.ndarray]:
        """The Mol whose atoms are featurized and its geometries, shape (k, n_atoms, 3)."""
        count = mol.GetNumConformers()
        if count == 0:
            own: list[int] = []
        elif count == 1 or (self.settings.n_conformers == 1 and mol.GetConformer().Is3D()):
            # Iterating GetConformers() costs more than the rest of this path; skip it when
            # the first conformer answers the question.
            own = [mol.GetConformer().GetId()] if mol.GetConformer().Is3D() else []
        else:
            own = [c.GetId() for c in mol.GetConformers() if c.Is3D()]
        if own:
            if self.settings.heavy_atoms_only:
                # A new, sanitized Mol whose conformers keep the heavy atoms' coordinates.
                mol = without_hydrogens(mol)
            elif _implicit_hydrogens(mol) and not _any_hydrogen(mol):
                # A geometry written without hydrogens (an SDF or PDB without H): the model
                # would see a molecule without them, unlike the same one from SMILES. They
                # are placed by RDKit's rules; the given atoms keep their coordinates. A Mol
                # with some H keeps its atoms as given: without bond orders (a PDB without
                # CONECT, an XYZ block) RDKit would add H to atoms that have theirs.
                mol = Chem.Mol(mol)
                mol.UpdatePropertyCache(strict=False)
                # AddHs places hydrogens by hybridization, which a Mol built atom by atom
                # lacks (they landed on their carbon); sanitized Mols have it already.
                Chem.GetSymmSSSR(mol)
                Chem.SetHybridization(mol)
                mol = Chem.AddHs(mol, addCoords=True)
            if not self.settings.heavy_atoms_only and self.settings.atom_properties:
                # Aromaticity and hybridisation are only set by sanitization, which DeepChem's
                # SDFLoader skips by default; sanitize a copy so they are never silently wrong.
                mol = Chem.Mol(mol)
                Chem.SanitizeMol(mol)
            ids = own[: self.settings.n_conformers]
            if len(ids) < self.settings.n_conformers:
                raise FeaturizationError(
                    f"the Mol has {len(ids)} 3D conformer(s) where n_conformers="
                    f"{self.settings.n_conformers}; give a SMILES to embed them all"
                )
            geometries = np.stack([mol.GetConformer(i).GetPositions() for i in ids])
            if not np.isfinite(geometries).all():
                raise FeaturizationError("the Mol's 3D conformer has non-finite coordinates")
            return mol, geometries
        mol = self.embed(mol)
        return mol, np.stack([c.GetPositions() for c in mol.GetConformers()])

    def embed(self, mol: Chem.Mol) -> Chem.Mol:
        s = self.settings
        work = mol
        if s.atom_properties:
            # As for a 3D Mol: a Mol built without sanitization (or kekulized with its
            # aromatic flags cleared) would give every ring atom aromatic = 0.
            work = Chem.Mol(mol)
            Chem.SanitizeMol(work)
        work = Chem.AddHs(work)  # always a copy, so the caller's Mol is never touched
        if "hybridization" in s.atom_properties:
            Chem.SetHybridization(work)  # AddHs leaves new hydrogens UNSPECIFIED; RDKit's is S
        params = rdDistGeom.ETKDGv3()
        # RDKit's seed 0 gives every member of an ensemble the same geometry; shift it.
        params.randomSeed = s.random_seed + 1
        params.maxIterations = s.max_attempts
        fragments = Chem.GetMolFrags(work, asMols=False, sanitizeFrags=False)
        deadline = None if s.embed_timeout is None else time.monotonic() + s.embed_timeout
        problem = self._embed_once(work, params, fragments, deadline)
        if problem is not None:
            # RDKit's advice for molecules that fail from eigenvector starts: random starts.
            params.useRandomCoords = True
            problem = self._embed_once(work, params, fragments, deadline)
            if problem is not None:
                raise FeaturizationError(f"{problem}, also from random starting coordinates")
        return without_hydrogens(work) if s.heavy_atoms_only else work

    def _embed_once(
        self,
        mol: Chem.Mol,
        params: Any,
        fragments: tuple[tuple[int, ...], ...],
        deadline: Optional[float],
    ) -> Optional[str]:
        """Embed, lay out fragments, clean up and check ``mol`` in place; None or the problem.

        Running out of time raises at once instead: retrying could only run out again.
        """
        s = self.settings
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._timed_out()
            params.timeout = math.ceil(left)  # RDKit counts whole seconds
        started = time.monotonic()
        if s.n_conformers == 1:
            ok = rdDistGeom.EmbedMolecule(mol, params) == 0
        else:
            ok = len(rdDistGeom.EmbedMultipleConfs(mol, s.n_conformers, params)) == s.n_conformers
        if not ok:
            if deadline is not None and time.monotonic() - started >= params.timeout - 0.5:
                raise self._timed_out()  # a second attempt would only time out again
            attempts = s.max_attempts or "RDKit's default number of"
            return f"ETKDGv3 embedding failed after {attempts} attempts"
        if len(fragments) > 1:
            for conformer in mol.GetConformers():
                placed = place_fragments(conformer.GetPositions(), fragments)
                for atom, xyz in enumerate(placed):
                    conformer.SetAtomPosition(atom, xyz.tolist())
        self._relax(mol)
        z = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
        for conformer in mol.GetConformers():
            clash = find_clash(z, conformer.GetPositions())
            if clash is not None:
                return f"the embedded geometry has overlapping atoms: {describe_clash(z, clash)}"
        return None

    def _timed_out(self) -> FeaturizationError:
        return FeaturizationError(
            f"embedding took longer than embed_timeout={self.settings.embed_timeout} s; raise "
            "embed_timeout (None: no limit) for very large molecules"
        )

    def _relax(self, mol: Chem.Mol) -> None:
        """The optional force-field clean-up, with forces between fragments switched on."""
        if self.settings.force_field == "MMFF":
            if not rdForceFieldHelpers.MMFFHasAllMoleculeParams(mol):
                raise FeaturizationError(
                    "MMFF94 has no parameters for this molecule; use force_field='UFF' or "
                    "force_field=None"
                )
            rdForceFieldHelpers.MMFFOptimizeMoleculeConfs(
                mol, numThreads=1, ignoreInterfragInteractions=False
            )
        elif self.settings.force_field == "UFF":
            if not rdForceFieldHelpers.UFFHasAllMoleculeParams(mol):
                raise FeaturizationError(
                    "UFF has no parameters for this molecule; use force_field=None"
                )
            rdForceFieldHelpers.UFFOptimizeMoleculeConfs(
                mol, numThreads=1, ignoreInterfragInteractions=False
            )

    def element_block(self, z: np.ndarray) -> np.ndarray:
        """Features with the one-hot element block filled in and room for atom properties."""
        columns = self.columns[z]
        if (columns < 0).any():
            i = int(np.flatnonzero(columns < 0)[0])
            symbol = _PERIODIC_TABLE.GetElementSymbol(int(z[i])) if 0 < z[i] < 119 else str(z[i])
            raise FeaturizationError(
                f"element {symbol} is not in elements {list(self.settings.elements)} and "
                f"other_element is False (atom {i})"
            )
        x = np.zeros((len(z), self.n_features), dtype=np.float64)
        x[np.arange(len(z)), columns] = 1.0
        return x

    def features(self, mol: Chem.Mol) -> tuple[np.ndarray, np.ndarray]:
        n = mol.GetNumAtoms()
        atoms = [mol.GetAtomWithIdx(i) for i in range(n)]
        z = np.fromiter((a.GetAtomicNum() for a in atoms), dtype=np.int64, count=n)
        if not z.all():
            raise FeaturizationError(
                f"atom {int(np.argmin(z))} is a dummy atom (*, atomic number 0), not an element"
            )
        x = self.element_block(z)
        column = self.n_element_columns
        for prop in self.settings.atom_properties:
            if prop == "formal_charge":
                x[:, column] = [a.GetFormalCharge() for a in atoms]
                column += 1
            elif prop == "aromatic":
                x[:, column] = [a.GetIsAromatic() for a in atoms]
                column += 1
            else:
                hybrid = [_HYBRIDIZATION_COLUMN.get(a.GetHybridization(), 4) for a in atoms]
                x[np.arange(n), column + np.asarray(hybrid, dtype=np.int64)] = 1.0
                column += len(HYBRIDIZATIONS)
        return z, x

    def __call__(self, item: Any) -> Conformer:
        mol = self.to_mol(item)
        if mol.GetNumAtoms() == 0:
            raise FeaturizationError("the molecule has no atoms")
        mol, geometries = self.geometry(mol)
        if mol.GetNumAtoms() == 0:
            raise FeaturizationError("the molecule has no heavy atoms (heavy_atoms_only=True)")
        z, x = self.features(mol)
        if isinstance(item, str):
            smiles: Optional[str] = item
            if "." in item and self.settings.fragments == "largest":
                # The molecule featurized, not the salt given: reports show and draw it.
                smiles = Chem.MolToSmiles(Chem.RemoveHs(mol, sanitize=False))
        else:
            smiles = Chem.MolToSmiles(mol) if self.settings.record_smiles else None
        ensemble = geometries if self.settings.n_conformers > 1 else None
        return Conformer(geometries[0], x, z, smiles=smiles, ensemble=ensemble)


def with_valences(mol: Chem.Mol) -> Chem.Mol:
    """``mol``, or a copy with its valences and implicit hydrogen counts computed when they
    never were (an unsanitized Mol): what is decided from them must not depend on the path."""
    if not mol.NeedsUpdatePropertyCache():
        return mol
    mol = Chem.Mol(mol)
    mol.UpdatePropertyCache(strict=False)
    return mol


def _implicit_hydrogens(mol: Chem.Mol) -> bool:
    """Whether some atom of ``mol`` carries hydrogens without atoms (and coordinates)."""
    # One call counting implicit hydrogens too: 0.6 us, against 20 us for a loop over atoms
    # (the 3D Mol path featurizes ~30,000 QM9 molecules a second).
    try:
        return mol.GetNumAtoms(onlyExplicit=False) != mol.GetNumAtoms()
    except RuntimeError:  # implicit counts not yet computed on this Mol
        probe = Chem.Mol(mol)
        probe.UpdatePropertyCache(strict=False)
        return probe.GetNumAtoms(onlyExplicit=False) != probe.GetNumAtoms()


def _any_hydrogen(mol: Chem.Mol) -> bool:
    """Whether ``mol`` has a hydrogen atom."""
    return any(atom.GetAtomicNum() == 1 for atom in mol.GetAtoms())


def without_hydrogens(mol: Chem.Mol) -> Chem.Mol:
    """``mol`` without any hydrogen atom, conformers kept.

    ``Chem.RemoveHs`` keeps some by default: isotopes (``[2H]``), hydrides, H bonded to H
    (``[H][H]``); a heavy-atoms-only model would then see atoms it was told it never sees,
    and the arrays path (which drops every Z = 1) would disagree with the Mol path.
    """
    params = Chem.RemoveHsParameters()
    for name in dir(params):
        if name.startswith("remove") and name != "removeAndTrackIsotopes":
            setattr(params, name, True)
    with rdBase.BlockLogs():  # "not removing hydrogen atom without neighbors": H2's last one
        out = Chem.RemoveHs(mol, params)
    hydrogens = [a.GetIdx() for a in out.GetAtoms() if a.GetAtomicNum() == 1]
    if hydrogens:  # an H that no parameter covers (H2's last atom): dropped by hand
        editable = Chem.RWMol(out)
        for index in reversed(hydrogens):
            editable.RemoveAtom(index)
        out = editable.GetMol()
    return out


def conformer_from_arrays(
    encoder: Encoder, atomic_numbers: Any, positions: Any, smiles: Optional[str]
) -> Conformer:
    """A `Conformer` from a geometry given as arrays, with no RDKit Mol in between."""
    z = np.asarray(atomic_numbers, dtype=np.int64).reshape(-1)
    # A copy: the datapoint must not change when the caller reuses its buffer (MD frames).
    r = np.array(positions, dtype=np.float64)
    if len(z) == 0:
        raise FeaturizationError("the molecule has no atoms")
    if r.shape != (len(z), 3):
        raise FeaturizationError(f"positions must have shape ({len(z)}, 3), got {r.shape}")
    if not np.isfinite(r).all():
        raise FeaturizationError("the geometry has non-finite coordinates")
    if ((z < 1) | (z > 118)).any():
        raise FeaturizationError(f"atomic numbers must lie in 1..118, got {z.min()}..{z.max()}")
    if encoder.settings.n_conformers > 1:  # as a Mol with one 3D conformer would fail
        raise FeaturizationError(
            f"the geometry is 1 conformer where n_conformers={encoder.settings.n_conformers}; "
            "give a SMILES to embed them all"
        )
    if encoder.settings.heavy_atoms_only:
        keep = z > 1
        z, r = z[keep], r[keep]
    return Conformer(r, encoder.element_block(z), z, smiles=smiles)


class ShippedMol:
    """An RDKit Mol on its way to a worker process, its coordinates kept in float64.

    RDKit's pickle writes conformer coordinates as float32 (and drops the Mol's properties):
    given 3D coordinates sent to a worker came back rounded by up to 1e-7 Å, and a parallel
    featurization differed from a serial one.
    """

    __slots__ = ("binary",)

    def __init__(self, mol: Chem.Mol) -> None:
        flags = Chem.PropertyPickleOptions.AllProps | Chem.PropertyPickleOptions.CoordsAsDouble
        # Valences first, as `Encoder.to_mol` computes them: a Mol that never had them
        # (RDKit's XYZ reader) came back from the binary with 0 implicit hydrogens, and a
        # worker then decided about hydrogens and fragments unlike a serial run.
        self.binary = with_valences(mol).ToBinary(flags)

    def mol(self) -> Chem.Mol:
        return Chem.Mol(self.binary)


def featurize_chunk(
    settings: FeaturizerSettings, items: Sequence[Any]
) -> list[tuple[Optional[Conformer], Optional[str]]]:
    """Featurize consecutive inputs; one ``(conformer, None)`` or ``(None, reason)`` each.

    Never raises for a bad input: RDKit errors become the reason text, and RDKit's own log
    output is blocked so that only the caller decides what the user sees.
    """
    encode = Encoder(settings)
    out: list[tuple[Optional[Conformer], Optional[str]]] = []
    blocker = rdBase.BlockLogs()
    try:
        for item in items:
            try:
                out.append((encode(item.mol() if isinstance(item, ShippedMol) else item), None))
            except FeaturizationError as err:
                out.append((None, str(err)))
            except Exception as err:  # noqa: BLE001 - RDKit raises many types; keep the text
                out.append((None, f"{type(err).__name__}: {err}".strip()))
    finally:
        del blocker
    return out


def mol_from_geometry(
    atomic_numbers: np.ndarray, positions: np.ndarray, bond_orders: bool = False
) -> Any:
    """An RDKit Mol with this geometry as its 3D conformer (QM9 records, XYZ files).

    Connectivity is perceived from the geometry; with ``bond_orders`` the bond orders too
    (needed for aromaticity and hybridisation features). Perception raises for the few
    molecules it cannot assign.
    """
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdDetermineBonds

    mol = Chem.RWMol()
    for z in atomic_numbers:
        mol.AddAtom(Chem.Atom(int(z)))
    conformer = Chem.Conformer(len(atomic_numbers))
    conformer.SetPositions(np.ascontiguousarray(positions, dtype=np.float64))
    conformer.Set3D(True)
    mol.AddConformer(conformer, assignId=True)
    blocker = rdBase.BlockLogs()  # failures are reported by the caller, not on stderr
    try:
        if bond_orders:
            rdDetermineBonds.DetermineBonds(mol, charge=0)
        else:
            rdDetermineBonds.DetermineConnectivity(mol)
    finally:
        del blocker
    return mol.GetMol()
