"""The RDKit work behind the featurizer: bonds perceived from geometry, conformers from arrays,
failures as reasons, inputs described for log lines."""

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from dc_invariant.embedding import (
    Encoder,
    FeaturizationError,
    conformer_from_arrays,
    describe_input,
    featurize_chunk,
    mol_from_geometry,
)
from dc_invariant.featurizer_settings import FeaturizerSettings


def geometry(smiles: str) -> tuple[np.ndarray, np.ndarray]:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(mol, randomSeed=7) == 0
    return np.array([a.GetAtomicNum() for a in mol.GetAtoms()]), mol.GetConformer().GetPositions()


@pytest.mark.parametrize("smiles", ["CC(=O)O", "C#C", "c1ccccc1O"])
def test_bonds_perceived_from_geometry_give_back_the_molecule(smiles):
    z, r = geometry(smiles)
    mol = mol_from_geometry(z, r, bond_orders=True)
    assert Chem.MolToSmiles(Chem.RemoveHs(mol)) == Chem.CanonSmiles(smiles)
    np.testing.assert_array_equal(mol.GetConformer().GetPositions(), r)
    assert mol.GetConformer().Is3D()
    connectivity = mol_from_geometry(z, r)
    assert connectivity.GetNumBonds() == mol.GetNumBonds()
    assert all(b.GetBondType() == Chem.BondType.SINGLE for b in connectivity.GetBonds())


def test_conformer_from_arrays_encodes_elements_and_refuses_bad_geometry():
    encoder = Encoder(FeaturizerSettings(elements=("C", "H", "O")))
    z, r = geometry("CCO")
    conformer = conformer_from_arrays(encoder, z, r, "CCO")
    assert conformer.smiles == "CCO" and conformer.features.shape == (9, 4)  # C H O other
    np.testing.assert_array_equal(conformer.features[:, 2], (z == 8).astype(float))
    bad = [
        ((z, r[:5]), r"positions must have shape \(9, 3\), got \(5, 3\)"),
        ((z, np.full_like(r, np.nan)), "non-finite coordinates"),
        ((np.zeros(0, int), np.zeros((0, 3))), "no atoms"),
        ((np.where(z == 8, 119, z), r), r"atomic numbers must lie in 1\.\.118"),
    ]
    for (numbers, positions), reason in bad:
        with pytest.raises(FeaturizationError, match=reason):
            conformer_from_arrays(encoder, numbers, positions, None)
    heavy = Encoder(FeaturizerSettings(heavy_atoms_only=True))
    assert conformer_from_arrays(heavy, z, r, None).n_atoms == 3


def test_a_chunk_never_raises_for_a_bad_input():
    out = featurize_chunk(FeaturizerSettings(), ["CCO", "C1CC", "C(C)(C)(C)(C)C"])
    assert out[0][1] is None and out[0][0].n_atoms == 9
    assert out[1] == (None, "RDKit could not parse the SMILES")
    assert out[2][0] is None and out[2][1].startswith("RDKit rejected the SMILES")


def test_inputs_are_described_briefly_for_log_lines():
    assert describe_input("CCO") == "CCO"
    assert describe_input(Chem.MolFromSmiles("OCC")) == "CCO"
    long = "C" * 100
    assert describe_input(long) == "C" * 77 + "..." and len(describe_input(long)) == 80
    assert describe_input(42) == "42"


def test_a_3d_mol_with_its_hydrogens_but_no_bond_orders_keeps_its_atoms():
    # An XYZ block has no bonds: RDKit would add two H to O and one to each H.
    water = Chem.MolFromXYZBlock("3\n\nO 0 0 0.1173\nH 0 0.7572 -0.4692\nH 0 -0.7572 -0.4692\n")
    conformer = Encoder(FeaturizerSettings())(water)
    assert conformer.atomic_numbers.tolist() == [8, 1, 1]
    np.testing.assert_array_equal(conformer.positions, water.GetConformer().GetPositions())
    # Without any H (an SDF written without them) they are still added.
    bare = Chem.RemoveHs(water)
    assert Encoder(FeaturizerSettings())(bare).atomic_numbers.tolist() == [8, 1, 1]


def test_an_unsanitized_mol_gets_its_aromatic_flags_before_featurizing():
    encoder = Encoder(FeaturizerSettings(atom_properties=("aromatic",)))
    pyridine = Chem.MolFromSmiles("c1ccncc1", sanitize=False)
    phenol = Chem.MolFromSmiles("c1ccccc1O")
    Chem.Kekulize(phenol, clearAromaticFlags=True)
    for mol in (pyridine, phenol):
        assert encoder(mol).features[:, -1].sum() == 6


def test_a_mol_with_fewer_3d_conformers_than_asked_fails():
    mol = Chem.AddHs(Chem.MolFromSmiles("CCCO"))
    AllChem.EmbedMolecule(mol, randomSeed=1)
    with pytest.raises(FeaturizationError, match=r"1 3D conformer\(s\) where n_conformers=4"):
        Encoder(FeaturizerSettings(n_conformers=4))(mol)


@pytest.mark.parametrize("smiles", ["*CC*", "[*]c1ccccc1", "CC[1*]"])
def test_dummy_atoms_are_a_failure_not_an_element(smiles):
    with pytest.raises(FeaturizationError, match="dummy atom"):
        Encoder(FeaturizerSettings())(smiles)


def test_a_mol_without_valences_is_featurized_alike_here_and_on_workers():
    from dc_invariant.embedding import ShippedMol

    # RDKit's XYZ reader computes no valences; its binary then said "no implicit H", so a
    # worker kept [C, O] where a serial run added hydrogens.
    for block in (
        "2\n\nC 0 0 0\nO 1.43 0 0\n",
        "3\n\nO 0 0 0.12\nH 0 0.76 -0.47\nH 0 -0.76 -0.47\n",
    ):
        mol = Chem.MolFromXYZBlock(block)
        for settings in (FeaturizerSettings(), FeaturizerSettings(fragments="largest")):
            encoder = Encoder(settings)
            here = encoder(mol).atomic_numbers.tolist()
            assert encoder(ShippedMol(mol).mol()).atomic_numbers.tolist() == here
