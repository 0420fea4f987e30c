"""RDKit Mols for the audit's molecules and copies: the chemistry kept whatever the atom order."""

import numpy as np

from dc_invariant.auditing import audit, prepare


class SumOfFeatures:
    """A model of one's own: anything with predict(dataset)."""

    def predict(self, dataset):
        return np.array([np.sum(x) for x in dataset.X])[:, None]


def test_copies_keep_the_chemistry_of_molecules_given_in_their_own_atom_order(dc):
    """An SDF-like Mol (atoms not in SMILES order) is featurized with its charges and bonds."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    from dc_invariant.auditing.rebuild import mols_for
    from dc_invariant.molecules import Molecules

    mol = Chem.AddHs(Chem.MolFromSmiles("CC(=O)Nc1ccc(O)cc1C(=O)[O-]"))
    AllChem.EmbedMolecule(mol, randomSeed=1)
    shuffled = Chem.RenumberAtoms(
        mol, np.random.default_rng(0).permutation(mol.GetNumAtoms()).tolist()
    )
    prepared = prepare([shuffled])
    [rebuilt] = mols_for(Molecules.from_conformers(prepared.molecules))
    assert Chem.MolToSmiles(Chem.RemoveHs(rebuilt)) == Chem.MolToSmiles(Chem.RemoveHs(mol))
    positions = prepared.molecules[0].positions
    assert np.allclose(rebuilt.GetConformer().GetPositions(), positions)
    report = audit(SumOfFeatures(), prepared, featurizer=dc.feat.CircularFingerprint(size=128))
    assert report.skipped.empty and report.geometry_blind is True
