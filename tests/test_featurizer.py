import logging
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import (
    DRUG_LIKE,
    DRUGS,
    INVALID,
    assert_attached,
    assert_same_conformer,
    row_label,
    rows_with_invalid,
)
from rdkit import Chem
from rdkit.Chem import AllChem, rdDistGeom

from dc_invariant import Conformer, ConformerFeaturizer
from dc_invariant._deepchem import import_deepchem
from dc_invariant.featurizer_settings import DEFAULT_ELEMENTS

dc = import_deepchem()


def embedded(smiles: str, seed: int = 42) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(mol, randomSeed=seed) == 0
    return mol


def one(featurizer: ConformerFeaturizer, item) -> Conformer:
    out = featurizer.featurize([item])[0]
    assert isinstance(out, Conformer), featurizer.failures
    return out


def test_is_a_deepchem_molecular_featurizer(dc):
    assert isinstance(ConformerFeaturizer(), dc.feat.MolecularFeaturizer)


def test_smiles_give_coordinates_features_and_atomic_numbers():
    c = one(ConformerFeaturizer(), "CCO")
    assert c.positions.shape == (9, 3) and c.positions.dtype == np.float64
    assert c.features.shape == (9, 11)
    assert sorted(c.atomic_numbers.tolist()) == [1] * 6 + [6, 6, 8]
    assert c.smiles == "CCO"
    # Each row of the default encoding is one-hot and matches the atom's element.
    columns = [
        DEFAULT_ELEMENTS.index(Chem.GetPeriodicTable().GetElementSymbol(int(z)))
        for z in c.atomic_numbers
    ]
    np.testing.assert_array_equal(c.features.argmax(axis=1), columns)
    np.testing.assert_array_equal(c.features.sum(axis=1), 1.0)
    # A real geometry: C-H bonds near 1.09 Å, nothing overlapping.
    d = np.linalg.norm(c.positions[:, None] - c.positions[None], axis=-1)
    assert d[np.triu_indices(9, 1)].min() > 0.9


def test_tutorial_encoding_is_expressible():
    featurizer = ConformerFeaturizer(elements=("C", "H"), other_element=False)
    c = one(featurizer, "C")
    assert featurizer.feature_names == ["element=C", "element=H"]
    expected = [[1.0, 0.0] if z == 6 else [0.0, 1.0] for z in c.atomic_numbers]
    assert c.features.tolist() == expected


def test_other_element_column_catches_elements_outside_the_vocabulary():
    featurizer = ConformerFeaturizer(elements=("C", "H"))
    c = one(featurizer, "C[Si](C)(C)C")
    silicon = c.atomic_numbers == 14
    assert featurizer.feature_names[-1] == "element=other"
    assert c.features[silicon, -1].tolist() == [1.0] and c.features[~silicon, -1].sum() == 0


def test_atom_properties_follow_the_one_hot_block_in_the_order_given():
    featurizer = ConformerFeaturizer(
        elements=("H", "C", "N"), atom_properties=("hybridization", "aromatic", "formal_charge")
    )
    names = featurizer.feature_names
    assert names[:4] == ["element=H", "element=C", "element=N", "element=other"]
    assert names[4:] == [
        "hybridization=s",
        "hybridization=sp",
        "hybridization=sp2",
        "hybridization=sp3",
        "hybridization=other",
        "aromatic",
        "formal_charge",
    ]
    col = {name: k for k, name in enumerate(names)}
    ammonium = one(featurizer, "[NH4+]")
    nitrogen = ammonium.atomic_numbers == 7
    assert ammonium.features[nitrogen, col["formal_charge"]].tolist() == [1.0]
    assert ammonium.features[nitrogen, col["hybridization=sp3"]].tolist() == [1.0]
    assert (ammonium.features[~nitrogen, col["hybridization=s"]] == 1.0).all()
    benzene = one(featurizer, "c1ccccc1")
    carbon = benzene.atomic_numbers == 6
    assert (benzene.features[carbon, col["aromatic"]] == 1.0).all()
    assert (benzene.features[carbon, col["hybridization=sp2"]] == 1.0).all()
    assert (benzene.features[~carbon, col["aromatic"]] == 0.0).all()


def test_a_mols_own_3d_conformer_is_kept_exactly_and_the_mol_is_untouched():
    mol = embedded("CC(=O)Nc1ccc(O)cc1")
    before = mol.ToBinary()
    original = mol.GetConformer().GetPositions().copy()
    c = one(ConformerFeaturizer(random_seed=7), mol)
    np.testing.assert_array_equal(c.positions, original)
    assert [a.GetAtomicNum() for a in mol.GetAtoms()] == c.atomic_numbers.tolist()
    assert mol.ToBinary() == before


def test_smiles_embedding_does_not_modify_an_input_mol_without_conformer():
    mol = Chem.MolFromSmiles("CCN")
    before = mol.ToBinary()
    c = one(ConformerFeaturizer(), mol)
    assert c.n_atoms == 10  # hydrogens were added to a copy
    assert mol.ToBinary() == before and mol.GetNumConformers() == 0


def test_a_2d_conformer_is_not_taken_for_3d():
    mol = Chem.MolFromSmiles("CCCO")
    AllChem.Compute2DCoords(mol)
    assert not mol.GetConformer().Is3D()
    c = one(ConformerFeaturizer(), mol)
    assert np.ptp(c.positions[:, 2]) > 0.1  # embedded in 3D, not the flat drawing
    assert c.n_atoms == 12  # C3H8O


def test_heavy_atoms_only_for_smiles_and_for_3d_mols():
    featurizer = ConformerFeaturizer(heavy_atoms_only=True)
    assert (one(featurizer, "CC(=O)O").atomic_numbers > 1).all()
    mol = embedded("CCOC")
    c = one(featurizer, mol)
    heavy = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() > 1]
    np.testing.assert_array_equal(c.positions, mol.GetConformer().GetPositions()[heavy])
    assert mol.GetNumAtoms() == 12  # the caller's Mol keeps its hydrogens
    # RDKit's RemoveHs keeps deuterium and H bonded to H; heavy atoms only means no Z = 1.
    assert one(featurizer, "[2H]C([2H])([2H])[2H]").atomic_numbers.tolist() == [6]
    deuterated = embedded("[2H]OC")
    assert one(featurizer, deuterated).atomic_numbers.tolist() == [8, 6]
    assert featurizer.featurize(["[H][H]"])[0].size == 0
    assert "no heavy atoms" in featurizer.failures[0][2]


def test_a_geometry_written_without_hydrogens_gets_them_placed():
    given = embedded("CC(=O)O")
    block = Chem.MolToMolBlock(Chem.RemoveHs(given))  # an SDF record without hydrogens
    for sanitize in (True, False):  # DeepChem's SDFLoader reads unsanitized
        mol = Chem.MolFromMolBlock(block, sanitize=sanitize, removeHs=False)
        c = one(ConformerFeaturizer(), mol)
        # All 8 atoms, as from SMILES (it was the 4 heavy ones), heavy atoms where given.
        assert c.atomic_numbers.tolist() == [6, 6, 8, 8, 1, 1, 1, 1]
        np.testing.assert_allclose(c.positions[:4], mol.GetConformer().GetPositions(), atol=1e-4)
        bonded = np.linalg.norm(c.positions[4:] - c.positions[[0, 0, 0, 3]], axis=1)
        assert (bonded > 0.9).all() and (bonded < 1.2).all()
    # A Mol built atom by atom has no hybridization, by which RDKit places hydrogens.
    built = Chem.RWMol()
    for z in (6, 8):
        built.AddAtom(Chem.Atom(z))
    built.AddBond(0, 1, Chem.BondType.SINGLE)
    frame = Chem.Conformer(2)
    frame.SetAtomPosition(1, (1.43, 0.0, 0.0))
    frame.Set3D(True)
    built.AddConformer(frame)
    c = one(ConformerFeaturizer(), built.GetMol())
    assert c.atomic_numbers.tolist() == [6, 8, 1, 1, 1, 1]
    bonded = np.linalg.norm(c.positions[2:] - c.positions[[0, 0, 0, 1]], axis=1)
    assert (bonded > 0.9).all() and (bonded < 1.2).all()  # they landed on their carbon


def test_same_seed_same_arrays_and_a_new_seed_new_geometry():
    a = one(ConformerFeaturizer(random_seed=3), "CC(C)Cc1ccc(cc1)C(C)C(=O)O")
    b = one(ConformerFeaturizer(random_seed=3), "CC(C)Cc1ccc(cc1)C(C)C(=O)O")
    c = one(ConformerFeaturizer(random_seed=4), "CC(C)Cc1ccc(cc1)C(C)C(=O)O")
    np.testing.assert_array_equal(a.positions, b.positions)
    assert not np.allclose(a.positions, c.positions)


def test_canonical_atom_order_makes_equivalent_smiles_identical():
    a = one(ConformerFeaturizer(), "OCC")
    b = one(ConformerFeaturizer(), "CCO")
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.atomic_numbers, b.atomic_numbers)
    kept = one(ConformerFeaturizer(use_original_atoms_order=True), "OCC")
    assert kept.atomic_numbers[0] == 8  # the SMILES' own first atom


@pytest.mark.slow
def test_arrays_are_identical_in_a_fresh_process():
    code = (
        "import sys, numpy as np\n"
        "from dc_invariant import ConformerFeaturizer\n"
        "c = ConformerFeaturizer(random_seed=11).featurize(['CC(=O)Oc1ccccc1C(=O)O'])[0]\n"
        "sys.stdout.buffer.write(c.positions.tobytes())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    here = one(ConformerFeaturizer(random_seed=11), "CC(=O)Oc1ccccc1C(=O)O")
    np.testing.assert_array_equal(
        np.frombuffer(out, dtype=np.float64).reshape(-1, 3), here.positions
    )


def test_force_field_clean_up_moves_atoms_and_is_deterministic():
    plain = one(ConformerFeaturizer(), "CCCCO")
    for name in ("MMFF", "UFF"):
        first = one(ConformerFeaturizer(force_field=name), "CCCCO")
        again = one(ConformerFeaturizer(force_field=name), "CCCCO")
        np.testing.assert_array_equal(first.positions, again.positions)
        assert np.abs(first.positions - plain.positions).max() > 1e-3


def test_several_conformers_come_out_as_an_ensemble():
    c = one(ConformerFeaturizer(n_conformers=4), "CCCCCCO")
    assert c.n_conformers == 4 and c.ensemble.shape == (4, c.n_atoms, 3)
    np.testing.assert_array_equal(c.ensemble[0], c.positions)
    assert not np.allclose(c.ensemble[0], c.ensemble[1])
    assert [p.n_conformers for p in c.split_ensemble()] == [1, 1, 1, 1]


def test_mixed_inputs_and_input_types():
    featurizer = ConformerFeaturizer()
    out = featurizer.featurize(pd.Series(["CCO", "c1ccccc1"]))
    assert out.shape == (2,) and all(isinstance(c, Conformer) for c in out)
    mixed = featurizer.featurize(["CCO", embedded("CCN"), Chem.MolFromSmiles("CS")])
    assert [c.n_atoms for c in mixed] == [9, 10, 6]
    assert mixed[1].smiles == "[H]N([H])C([H])([H])C([H])([H])[H]"  # canonical, from the Mol
    assert featurizer.featurize("CCO").shape == (1,)


def test_record_smiles_off_skips_smiles_for_mols_only():
    featurizer = ConformerFeaturizer(record_smiles=False)
    out = featurizer.featurize([embedded("CCN"), "CCO"])
    assert out[0].smiles is None and out[1].smiles == "CCO"


BAD_INPUTS = [
    ("not_a_smiles", "RDKit could not parse the SMILES"),
    ("C1#CC1", "ETKDGv3 embedding failed after RDKit's default number of attempts"),
    ("", "the molecule has no atoms"),
    (Chem.Mol(), "the molecule has no atoms"),
    (42, "expected a SMILES string or an RDKit Mol, got int"),
    (None, r"no molecule \(None\)"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_INPUTS)
def test_each_failure_is_isolated_logged_once_and_recorded(bad, reason, caplog):
    featurizer = ConformerFeaturizer()
    with caplog.at_level(logging.WARNING, logger="dc_invariant"):
        out = featurizer.featurize(["CCO", bad, "c1ccccc1"])
    assert isinstance(out[0], Conformer) and isinstance(out[2], Conformer)
    assert isinstance(out[1], np.ndarray) and out[1].size == 0
    assert out[2].smiles == "c1ccccc1"
    [(index, item, why)] = featurizer.failures
    assert index == 1 and item is bad
    assert pytest.importorskip("re").search(reason, why)
    [record] = [r for r in caplog.records if r.name.startswith("dc_invariant")]
    message = record.getMessage()
    assert "input 1" in message and why in message and "\n" not in message


def test_element_outside_vocabulary_without_other_slot_is_a_failure():
    featurizer = ConformerFeaturizer(elements=("C", "H"), other_element=False)
    out = featurizer.featurize(["CC", "CCl"])
    assert isinstance(out[0], Conformer)
    [(index, _, why)] = featurizer.failures
    assert index == 1
    assert "element Cl is not in elements ['C', 'H'] and other_element is False" in why


def test_mmff_without_parameters_is_a_failure_with_advice():
    featurizer = ConformerFeaturizer(force_field="MMFF")
    featurizer.featurize(["OB(O)c1ccccc1"])
    assert "MMFF94 has no parameters" in featurizer.failures[0][2]
    assert "UFF" in featurizer.failures[0][2]


def test_non_finite_coordinates_in_a_given_conformer_are_a_failure():
    mol = embedded("CO")
    mol.GetConformer().SetAtomPosition(0, (float("nan"), 0.0, 0.0))
    featurizer = ConformerFeaturizer()
    featurizer.featurize([mol])
    assert "non-finite coordinates" in featurizer.failures[0][2]


def test_failures_list_is_reset_by_each_call():
    featurizer = ConformerFeaturizer()
    featurizer.featurize(["bad_smiles"])
    assert len(featurizer.failures) == 1
    featurizer.featurize(["C"])
    assert featurizer.failures == []


def test_rdkit_writes_nothing_to_stderr(capfd):
    ConformerFeaturizer().featurize(["C1CC", "C(C)(C)(C)(C)C", "C1#CC1"], log_failures=False)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_parallel_matches_serial_in_order(nci_smiles):
    # Given 3D Mols too: RDKit's pickle would send their coordinates as float32.
    inputs = [*nci_smiles[:24], "bad_smiles", *DRUG_LIKE[:4], embedded("c1ccccc1O")]
    serial = ConformerFeaturizer(n_jobs=1)
    parallel = ConformerFeaturizer(n_jobs=2)
    a, b = serial.featurize(inputs), parallel.featurize(inputs)
    assert len(a) == len(b) == len(inputs)
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray) and y.size == 0
            continue
        np.testing.assert_array_equal(x.positions, y.positions)
        np.testing.assert_array_equal(x.features, y.features)
        assert x.smiles == y.smiles
    assert (
        [f[:2] for f in serial.failures]
        == [f[:2] for f in parallel.failures]
        == [(24, "bad_smiles")]
    )


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="random_sed"):
        ConformerFeaturizer(random_sed=1)


def test_replace_and_get_params_round_trip():
    base = ConformerFeaturizer(elements=("C", "H"), n_jobs=2)
    changed = base.replace(random_seed=5)
    assert changed.settings.random_seed == 5 and changed.settings.elements == ("C", "H")
    assert changed.n_jobs == 2 and base.settings.random_seed == 0
    assert ConformerFeaturizer(**base.get_params()).settings == base.settings
    with pytest.raises(TypeError, match="unknown ConformerFeaturizer argument"):
        base.replace(seed=1)


def test_str_names_every_setting_that_changes_the_arrays():
    # DeepChem's MoleculeNet loaders cache featurized data in a folder named str(featurizer).
    assert str(ConformerFeaturizer()) == "ConformerFeaturizer"
    assert str(ConformerFeaturizer(n_jobs=2, progress=True)) == "ConformerFeaturizer"
    names = {
        str(ConformerFeaturizer(random_seed=1)),
        str(ConformerFeaturizer(elements=("C", "H"))),
        str(ConformerFeaturizer(heavy_atoms_only=True)),
        str(ConformerFeaturizer(force_field="MMFF")),
        str(ConformerFeaturizer(atom_properties=("aromatic",))),
    }
    assert len(names) == 5 and all("/" not in n and " " not in n for n in names)
    assert repr(ConformerFeaturizer(random_seed=1)) == "ConformerFeaturizer(random_seed=1)"


def test_featurize_arrays_matches_the_mol_path():
    mol = embedded("CC(=O)Nc1ccc(O)cc1")
    z = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    r = mol.GetConformer().GetPositions()
    featurizer = ConformerFeaturizer()
    [from_arrays] = featurizer.featurize_arrays([z], [r], ["paracetamol"])
    from_mol = one(featurizer, mol)
    np.testing.assert_array_equal(from_arrays.positions, from_mol.positions)
    np.testing.assert_array_equal(from_arrays.features, from_mol.features)
    assert from_arrays.smiles == "paracetamol"
    [heavy] = ConformerFeaturizer(heavy_atoms_only=True).featurize_arrays([z], [r])
    np.testing.assert_array_equal(heavy.positions, r[z > 1])
    # The datapoint is the caller's geometry as it was, whatever the caller's buffer does.
    r += 10.0
    assert not np.shares_memory(from_arrays.positions, r)
    np.testing.assert_array_equal(from_arrays.positions, from_mol.positions)


def test_featurize_arrays_failures_and_errors(caplog):
    featurizer = ConformerFeaturizer(elements=("C", "H"), other_element=False)
    good = (np.array([6, 1]), np.zeros((2, 3)))
    bad = [
        ((np.array([6, 8]), np.zeros((2, 3))), "element O is not in elements"),
        ((np.array([6, 1]), np.zeros((3, 3))), r"positions must have shape \(2, 3\)"),
        ((np.array([6, 1]), np.full((2, 3), np.inf)), "non-finite coordinates"),
        ((np.array([], dtype=int), np.zeros((0, 3))), "no atoms"),
        ((np.array([6, 0]), np.zeros((2, 3))), "atomic numbers must lie in 1..118"),
    ]
    for (z, r), reason in bad:
        out = featurizer.featurize_arrays([good[0], z], [good[1], r], ["ok", "bad"])
        assert isinstance(out[0], Conformer) and out[1].size == 0
        [(index, name, why)] = featurizer.failures
        assert index == 1 and name == "bad"
        assert pytest.importorskip("re").search(reason, why)
    with pytest.raises(ValueError, match="atom_properties need bonds"):
        ConformerFeaturizer(atom_properties=("aromatic",)).featurize_arrays([good[0]], [good[1]])
    with pytest.raises(ValueError, match="lengths must match"):
        featurizer.featurize_arrays([good[0]], [good[1], good[1]])


def test_csv_loader_drops_invalid_rows_and_keeps_alignment(tmp_path, drug_reference, caplog):
    rows = rows_with_invalid()
    frame = pd.DataFrame(
        {
            "name": [f"row{i}" for i in range(len(rows))],
            "smiles": rows,
            "task_a": [row_label(i) for i in range(len(rows))],
            "task_b": [-float(i) for i in range(len(rows))],
        }
    )
    path = tmp_path / "loaders_drugs.csv"
    frame.to_csv(path, index=False)

    loader = dc.data.CSVLoader(
        tasks=["task_a", "task_b"], feature_field="smiles", featurizer=ConformerFeaturizer()
    )
    with caplog.at_level(logging.WARNING, logger="dc_invariant"):
        # shard_size=4: the invalid rows fall in different shards, so alignment must hold
        # across DeepChem's shard boundaries too.
        dataset = loader.create_dataset(str(path), data_dir=str(tmp_path / "ds"), shard_size=4)

    assert isinstance(dataset, dc.data.DiskDataset)
    assert dataset.get_number_shards() == 5
    assert len(dataset) == len(DRUGS)
    assert list(dataset.ids) == DRUGS  # invalid rows dropped, order kept
    assert not set(INVALID) & set(dataset.ids)
    assert_attached(dataset)

    row_of = {s: i for i, s in enumerate(rows)}
    expected_y = np.array([[row_label(row_of[s]), -float(row_of[s])] for s in dataset.ids])
    np.testing.assert_array_equal(dataset.y, expected_y)
    np.testing.assert_array_equal(dataset.w, np.ones_like(expected_y))

    # Featurizing through the loader gives exactly what featurizing directly gives.
    for conformer, smiles in zip(dataset.X, dataset.ids):
        assert_same_conformer(conformer, drug_reference[smiles])

    # Each dropped row was reported once, by its SMILES.
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("dc_invariant")]
    for bad in INVALID:
        assert sum(f"({bad})" in m for m in messages) == 1, messages


SDF_OFFSET = np.array([100.0, -50.0, 25.0])


def _write_sdf(path, smiles_list):
    """Embed each molecule (own seed), shift it far from the origin, write it with a property.

    Returns the in-memory Mols as written and their property values.
    """
    writer = Chem.SDWriter(str(path))
    mols, values = [], []
    for i, smiles in enumerate(smiles_list):
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        assert rdDistGeom.EmbedMolecule(mol, randomSeed=0xF00D + i) == 0
        conf = mol.GetConformer()
        for atom_index, xyz in enumerate(conf.GetPositions() + SDF_OFFSET):
            conf.SetAtomPosition(atom_index, xyz.tolist())
        value = round(-3.0 + 0.7 * i, 3)
        mol.SetProp("_Name", f"drug{i}")
        mol.SetProp("pIC50", f"{value:.3f}")
        writer.write(mol)
        mols.append(mol)
        values.append(value)
    writer.close()
    return mols, values


def test_sdf_loader_keeps_file_coordinates(tmp_path):
    smiles_list = DRUGS[:8]
    path = tmp_path / "loaders_drugs.sdf"
    written, values = _write_sdf(path, smiles_list)
    assert not os.path.exists(str(path) + ".csv")  # tasks come from the SDF properties

    featurizer = ConformerFeaturizer()
    loader = dc.data.SDFLoader(tasks=["pIC50"], featurizer=featurizer, sanitize=True)
    dataset = loader.create_dataset(str(path), data_dir=str(tmp_path / "ds"))

    from_file = list(Chem.SDMolSupplier(str(path), removeHs=False, sanitize=True))
    assert len(dataset) == len(from_file) == len(smiles_list)
    assert list(dataset.ids) == [Chem.MolToSmiles(m) for m in from_file]
    assert_attached(dataset)
    np.testing.assert_allclose(dataset.y[:, 0], values, rtol=0, atol=1e-12)

    for conformer, mol_file, mol_written in zip(dataset.X, from_file, written):
        # All atoms, hydrogens included, in the file's order.
        n_atoms = mol_written.GetNumAtoms()
        assert mol_file.GetNumAtoms() == n_atoms
        assert conformer.n_atoms == n_atoms
        assert conformer.positions.shape == (n_atoms, 3)
        z_file = [a.GetAtomicNum() for a in mol_file.GetAtoms()]
        np.testing.assert_array_equal(conformer.atomic_numbers, z_file)
        assert (conformer.atomic_numbers == 1).sum() > 0
        h_column = featurizer.feature_names.index("element=H")
        np.testing.assert_array_equal(
            conformer.features[:, h_column], (conformer.atomic_numbers == 1).astype(float)
        )

        # Coordinates are the file's (printed with 4 decimals), not a new embedding.
        file_xyz = mol_file.GetConformer().GetPositions()
        np.testing.assert_allclose(conformer.positions, file_xyz, rtol=0, atol=1e-4)
        np.testing.assert_allclose(
            conformer.positions, mol_written.GetConformer().GetPositions(), rtol=0, atol=1e-4
        )
        assert np.linalg.norm(conformer.positions.mean(axis=0) - SDF_OFFSET) < 5.0
        fresh = featurizer.featurize([Chem.MolToSmiles(mol_file)])[0]
        assert np.linalg.norm(fresh.positions.mean(axis=0)) < 5.0
        assert np.abs(conformer.positions - fresh.positions).max() > 10.0


def test_sdf_loader_default_sanitize_false_gives_same_atom_properties(tmp_path):
    path = tmp_path / "loaders_aromatic.sdf"
    _write_sdf(path, DRUGS[:4])
    featurizer = ConformerFeaturizer(atom_properties=("aromatic", "hybridization"))
    by_sanitize = {}
    for sanitize in (True, False):
        loader = dc.data.SDFLoader(tasks=["pIC50"], featurizer=featurizer, sanitize=sanitize)
        by_sanitize[sanitize] = loader.create_dataset(
            str(path), data_dir=str(tmp_path / str(sanitize))
        )
    aromatic = featurizer.feature_names.index("aromatic")
    assert by_sanitize[True].X[0].features[:, aromatic].sum() == 6  # aspirin's benzene ring
    for sane, raw in zip(by_sanitize[True].X, by_sanitize[False].X):
        np.testing.assert_array_equal(raw.positions, sane.positions)
        np.testing.assert_array_equal(raw.features, sane.features)


def test_a_2d_sdf_through_deepchems_sdfloader_is_embedded(tmp_path):
    # SDFLoader reads without sanitizing: AddHs failed on every molecule ("getNumImplicitHs()
    # called without preceding call to calcImplicitValence()").
    dc = import_deepchem()
    path = str(tmp_path / "flat.sdf")
    writer = Chem.SDWriter(path)
    for smiles in ("CCO", "c1ccccc1O"):
        mol = Chem.MolFromSmiles(smiles)
        AllChem.Compute2DCoords(mol)
        mol.SetProp("y", "1.0")
        writer.write(mol)
    writer.close()
    featurizer = ConformerFeaturizer(atom_properties=("aromatic",))
    data = dc.data.SDFLoader(tasks=["y"], featurizer=featurizer).create_dataset(path)
    assert [c.n_atoms for c in data.X] == [9, 13]
    assert [int(c.features[:, -1].sum()) for c in data.X] == [0, 6]
    assert all(np.ptp(c.positions[:, 2]) > 0.1 for c in data.X)  # embedded in 3D
