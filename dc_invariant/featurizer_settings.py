"""`FeaturizerSettings`: what `ConformerFeaturizer` was asked for, checked and frozen.

Shared by the featurizer (DeepChem side) and the RDKit workers (`embedding`), which receive
the settings and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from rdkit import Chem

from dc_invariant.validation import check_bool, check_choice, check_int, check_names, store

__all__ = [
    "ATOM_PROPERTIES",
    "DEFAULT_ELEMENTS",
    "FORCE_FIELDS",
    "FRAGMENT_MODES",
    "FeaturizerSettings",
    "HYBRIDIZATIONS",
]

DEFAULT_ELEMENTS: tuple[str, ...] = ("H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I")
ATOM_PROPERTIES: tuple[str, ...] = ("formal_charge", "aromatic", "hybridization")
FORCE_FIELDS: tuple[Optional[str], ...] = (None, "MMFF", "UFF")
HYBRIDIZATIONS: tuple[str, ...] = ("s", "sp", "sp2", "sp3", "other")
FRAGMENT_MODES: tuple[str, ...] = ("all", "largest", "error")

_HYBRIDIZATION_COLUMN = {
    Chem.HybridizationType.S: 0,
    Chem.HybridizationType.SP: 1,
    Chem.HybridizationType.SP2: 2,
    Chem.HybridizationType.SP3: 3,
}
_PERIODIC_TABLE = Chem.GetPeriodicTable()
_SYMBOL_TO_Z = {_PERIODIC_TABLE.GetElementSymbol(z): z for z in range(1, 119)}


_LIMITS = (("n_conformers", 1, 10_000), ("random_seed", 0, 2**31 - 2), ("max_attempts", 0, 10**6))


@dataclass(frozen=True)
class FeaturizerSettings:
    """Validated settings of `ConformerFeaturizer`; see that class for their meaning.

    Checked by `dc_invariant.validation`: ``TypeError`` for a value of the wrong type,
    ``ValueError`` for one out of range, each naming the setting and what is allowed.
    """

    elements: tuple[str, ...] = DEFAULT_ELEMENTS
    other_element: bool = True
    atom_properties: tuple[str, ...] = ()
    heavy_atoms_only: bool = False
    n_conformers: int = 1
    random_seed: int = 0
    max_attempts: int = 0
    force_field: Optional[str] = None
    record_smiles: bool = True
    canonical_atom_order: bool = True
    fragments: str = "all"
    embed_timeout: Optional[int] = 60

    def __post_init__(self) -> None:
        for name in ("other_element", "heavy_atoms_only", "record_smiles", "canonical_atom_order"):
            store(self, name, check_bool(getattr(self, name), name))
        for name, low, high in _LIMITS:
            store(self, name, check_int(getattr(self, name), name, min_val=low, max_val=high))
        elements = check_names(self.elements, "elements")
        unknown = [e for e in elements if e not in _SYMBOL_TO_Z]
        if unknown:
            raise ValueError(
                f"unknown element symbol(s) {unknown} in elements; use symbols such as 'C', "
                "'Cl', 'Br' (case matters)"
            )
        if len(set(elements)) != len(elements):
            raise ValueError(f"elements lists a symbol twice: {elements}")
        if not elements and not self.other_element:
            raise ValueError(
                "elements is empty and other_element is False: no atom could be encoded"
            )
        properties = check_names(self.atom_properties, "atom_properties")
        bad = [p for p in properties if p not in ATOM_PROPERTIES]
        if bad or len(set(properties)) != len(properties):
            raise ValueError(
                f"atom_properties must be distinct names from {ATOM_PROPERTIES}, got {properties}"
            )
        check_choice(self.force_field, "force_field", FORCE_FIELDS)
        check_choice(self.fragments, "fragments", FRAGMENT_MODES)
        if self.embed_timeout is not None:
            seconds = check_int(self.embed_timeout, "embed_timeout (s)", min_val=1, max_val=86_400)
            store(self, "embed_timeout", seconds)
        store(self, "elements", tuple(elements))
        store(self, "atom_properties", tuple(properties))

    @property
    def feature_names(self) -> list[str]:
        """Name of every column of ``Conformer.features``, in order."""
        names = [f"element={e}" for e in self.elements]
        if self.other_element:
            names.append("element=other")
        for prop in self.atom_properties:
            if prop == "hybridization":
                names.extend(f"hybridization={h}" for h in HYBRIDIZATIONS)
            else:
                names.append(prop)
        return names

    def column_of_element(self) -> np.ndarray:
        """Lookup table ``Z -> one-hot column`` (``-1`` where no column encodes ``Z``)."""
        table = np.full(119, len(self.elements) if self.other_element else -1, dtype=np.int64)
        for column, symbol in enumerate(self.elements):
            table[_SYMBOL_TO_Z[symbol]] = column
        return table
