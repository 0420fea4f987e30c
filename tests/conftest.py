"""Shared fixtures: real molecules, and DeepChem imported once without its import noise."""

from __future__ import annotations

import os

import pytest

# Well-known molecules covering the default element vocabulary (H C N O F P S Cl Br I).
DRUG_LIKE = [
    "CCO",
    "c1ccccc1",
    "CC(=O)Nc1ccc(O)cc1",
    "CC(=O)Oc1ccccc1C(=O)O",
    "Cn1c(=O)c2c(ncn2C)n(C)c1=O",
    "CNCCC(c1ccccc1)Oc1ccc(cc1)C(F)(F)F",
    "CCN(CC)CCCC(C)Nc1ccnc2cc(Cl)ccc12",
    "COP(=S)(OC)Oc1ccc(cc1)[N+](=O)[O-]",
    "Brc1ccc(I)cc1",
    "C[C@@H](C(=O)O)N",
]


@pytest.fixture(scope="session")
def dc():
    from dc_invariant._deepchem import import_deepchem

    return import_deepchem()


@pytest.fixture(scope="session")
def nci_smiles() -> list[str]:
    """The first 60 parseable SMILES of RDKit's bundled NCI set (real screening compounds)."""
    from rdkit import Chem, RDConfig

    path = os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")
    out = []
    with open(path) as handle:
        for line in handle:
            smiles = line.split()[0]
            if Chem.MolFromSmiles(smiles) is not None:
                out.append(smiles)
            if len(out) == 60:
                break
    return out
