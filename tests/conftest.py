"""Shared fixtures: real molecules, and DeepChem imported once without its import noise; the
sixteen drugs of the DeepChem loader tests (featurizer, datasets, conformer, molecules) and
how those tests compare what comes back."""

from __future__ import annotations

import os

import numpy as np
import pytest

from dc_invariant import Conformer, ConformerFeaturizer

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


# Sixteen well-known drugs; together they cover H C N O F S Cl, rings and acyclic molecules,
# and several share a scaffold (benzene, xanthine), which the scaffold splitter must respect.
DRUGS = [
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
    "Cn1c(=O)c2c(ncn2C)n(C)c1=O",  # caffeine
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",  # ibuprofen
    "CC(=O)Nc1ccc(O)cc1",  # paracetamol
    "COc1ccc2cc(ccc2c1)C(C)C(=O)O",  # naproxen
    "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21",  # diazepam
    "CN1CCCC1c1cccnc1",  # nicotine
    "CN(C)C(=N)N=C(N)N",  # metformin
    "CNCCC(Oc1ccc(cc1)C(F)(F)F)c1ccccc1",  # fluoxetine
    "CCN(CC)CC(=O)Nc1c(C)cccc1C",  # lidocaine
    "CCOC(=O)c1ccc(N)cc1",  # benzocaine
    "O=C1NC(=O)C(N1)(c1ccccc1)c1ccccc1",  # phenytoin
    "CC(C)(C)NCC(O)c1ccc(O)c(CO)c1",  # salbutamol
    "Nc1ccc(cc1)S(N)(=O)=O",  # sulfanilamide
    "Cn1c2nc[nH]c2c(=O)n(C)c1=O",  # theophylline
    "CN(C)CCCN1c2ccccc2Sc2ccc(Cl)cc21",  # chlorpromazine
]


# An unclosed ring and a five-valent carbon: RDKit parses neither.
INVALID = ["C1CC", "C(C)(C)(C)(C)C"]


def row_label(row: int) -> float:
    """Label of CSV row ``row``: distinct per row, so any misalignment shows."""
    return 0.25 + 1.5 * row


def rows_with_invalid() -> list[str]:
    """DRUGS with the invalid SMILES slipped in at rows 3 and 10."""
    rows = list(DRUGS)
    rows.insert(3, INVALID[0])
    rows.insert(10, INVALID[1])
    return rows


def assert_same_conformer(got: Conformer, expected: Conformer) -> None:
    """Bit-identical arrays (values and dtypes) and the same SMILES."""
    assert isinstance(got, Conformer)
    assert got.smiles == expected.smiles
    for name in ("positions", "features", "atomic_numbers"):
        a, b = getattr(got, name), getattr(expected, name)
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    if expected.ensemble is None:
        assert got.ensemble is None
    else:
        assert got.ensemble.dtype == expected.ensemble.dtype
        np.testing.assert_array_equal(got.ensemble, expected.ensemble)


def assert_attached(dataset) -> None:
    """Every datapoint is a Conformer and sits next to its own id."""
    assert dataset.X.dtype == object
    assert len(dataset.X) == len(dataset.ids)
    for conformer, smiles in zip(dataset.X, dataset.ids):
        assert isinstance(conformer, Conformer)
        assert conformer.smiles == smiles


@pytest.fixture(scope="session")
def drug_reference() -> dict[str, Conformer]:
    """Each drug featurized directly (outside DeepChem) with the default settings."""
    conformers = ConformerFeaturizer().featurize(DRUGS)
    assert all(isinstance(c, Conformer) for c in conformers)
    return dict(zip(DRUGS, conformers))


@pytest.fixture(scope="session")
def drug_dataset(dc, drug_reference):
    """NumpyDataset of the drugs' Conformers, ids = SMILES, y = a known function of the row."""
    X = np.empty(len(DRUGS), dtype=object)
    X[:] = [drug_reference[s] for s in DRUGS]
    y = np.array([[row_label(i)] for i in range(len(DRUGS))])
    return dc.data.NumpyDataset(X, y, ids=np.array(DRUGS, dtype=object))
