"""DeepChem featurizers as audit targets: their verdicts, and their failures as skips with
DeepChem's reason."""

import numpy as np
from audit_helpers import ALL
from conftest import DRUG_LIKE

from dc_invariant.auditing import audit


def test_deepchem_coulomb_featurizers_get_the_verdicts_their_definitions_imply(dc, capfd):
    smiles = DRUG_LIKE[:5]
    # Coulomb matrix: Z_i Z_j / |r_i - r_j| in atom order. Distances ignore rigid motions
    # and mirrors, but renumbering atoms permutes its rows and columns.
    matrix = audit(dc.feat.CoulombMatrix(max_atoms=60), smiles, n_samples=2)
    assert not matrix.holds("permutation")
    assert all(matrix.holds(s) for s in ("translation", "rotation", "reflection"))
    # Its sorted eigenvalues forget the numbering too.
    eigen = audit(dc.feat.CoulombMatrixEig(max_atoms=60), smiles, n_samples=2)
    assert all(eigen.holds(s) for s in ALL)
    # Raw coordinates change under every one of them.
    coordinates = audit(dc.feat.AtomicCoordinates(), smiles, n_samples=2)
    assert not any(coordinates.holds(s) for s in ALL)
    assert "Exception message" not in capfd.readouterr().err


def test_deepchem_featurizer_failures_keep_deepchem_s_reason(dc):
    class Picky(dc.feat.MolecularFeaturizer):
        """Fails on molecules over 5 atoms, and on any whose first atom is a hydrogen."""

        def _featurize(self, datapoint, **kwargs):
            if datapoint.GetNumAtoms() > 5:
                raise ValueError(f"{datapoint.GetNumAtoms()} atoms is too many")
            if datapoint.GetAtomWithIdx(0).GetAtomicNum() == 1:
                raise ValueError("hydrogen first")
            return np.array([datapoint.GetNumAtoms()], dtype=float)

    report = audit(Picky(), ["C", "CCO"], symmetries=("permutation",), n_samples=3)
    reasons = dict(zip(report.skipped["id"], report.skipped["reason"]))
    assert reasons == {"CCO": "DeepChem could not featurize it: 9 atoms is too many"}
    # Methane featurizes as numbered, and fails once a hydrogen is numbered first: the
    # failure is the featurizer's dependence on the numbering, a broken permutation.
    rows = report.molecules
    [row] = rows[rows["symmetry"] == "permutation"].to_dict("records")
    assert row["id"] == "C"
    assert not row["passed"] and row["abs_deviation"] == np.inf
    assert not report.holds("permutation")


def test_a_torch_module_audited_as_a_function_gets_its_own_precision():
    import torch

    from dc_invariant.auditing.featurizing import model_dtype

    assert model_dtype(torch.nn.Linear(3, 1)) == "float32"
    assert model_dtype(torch.nn.Linear(3, 1).double()) == "float64"


def test_every_renumbering_reorders_the_heavy_atoms_for_a_target_that_drops_hydrogens(dc):
    # An order that only traded hydrogens with heavy atoms kept C before O: with hydrogens
    # removed the Coulomb matrix was the same, and permutation "held" on 2 seeds of 12.
    featurizer = dc.feat.CoulombMatrix(max_atoms=6, remove_hydrogens=True)
    for seed in range(12):
        report = audit(featurizer, ["CO"], n_samples=1, seed=seed, symmetries=["permutation"])
        assert not report.holds("permutation"), seed


def test_a_stereo_reading_featurizer_sees_each_copy_s_own_stereo(dc):
    from rdkit import Chem
    from rdkit.Chem import AllChem

    from dc_invariant.auditing.inputs import prepare
    from dc_invariant.auditing.rebuild import mols_for
    from dc_invariant.molecules import Molecules

    chiral = dc.feat.CircularFingerprint(chiral=True)
    # A mirrored copy is the other enantiomer: its tags must follow its coordinates.
    report = audit(chiral, ["C[C@H](N)C(=O)O"], n_samples=2, symmetries=["reflection"])
    assert not report.holds("reflection")
    # A 3D Mol whose atoms are not in its SMILES' order kept no chiral tags: (R) and (S)
    # alanine were featurized as one molecule.
    for smiles in ("C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O"):
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        AllChem.EmbedMolecule(mol, randomSeed=1)
        shuffled = Chem.RenumberAtoms(mol, list(range(mol.GetNumAtoms()))[::-1])
        rebuilt = mols_for(Molecules.from_conformers(prepare([shuffled]).molecules))[0]
        assert Chem.MolToSmiles(Chem.RemoveHs(rebuilt)) == smiles
