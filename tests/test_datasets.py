import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DRUGS, assert_attached, assert_same_conformer, row_label, rows_with_invalid

from dc_invariant import Conformer, ConformerFeaturizer
from dc_invariant._deepchem import import_deepchem
from dc_invariant.datasets import (
    HARTREE_TO_EV,
    QM9_ATOMIZATION_TASKS,
    QM9_TASKS,
    load_qm9,
    read_qm9_table,
)

dc = import_deepchem()

# The MoleculeNet tests run offline: each raw file is written into data_dir beforehand, so
# DeepChem finds it and never tries to download.
DELANEY_TASK = "measured log solubility in mols per litre"

# Fourteen real QM9 records in qm9pack's layout; part 1 is stored out of id order on purpose.
MINI = str(Path(__file__).parent / "data" / "qm9_mini")
HAS_QM9PACK = importlib.util.find_spec("qm9pack") is not None


def test_table_reads_geometries_and_labels_by_id():
    table = read_qm9_table(data_dir=MINI)
    assert len(table) == 14 and table.index.is_unique
    numbers = [int(i.split("_")[1]) for i in table.index]
    assert numbers == sorted(numbers)
    methane = table.loc["gdb_1"]
    assert methane["smiles"] == "C" and methane["atomic_numbers"].tolist() == [6, 1, 1, 1, 1]
    assert methane["positions"].shape == (5, 3)
    np.testing.assert_allclose(methane["positions"][1], [0.002150416, -0.0060313176, 0.0019761204])
    assert methane["u0"] == pytest.approx(-40.47893)
    # Atomization energy: total minus the free atoms (C + 4 H) at the same level of theory.
    expected = (-40.47893 - (-37.846772 + 4 * -0.500273)) * HARTREE_TO_EV
    assert methane["u0_atom"] == pytest.approx(expected, abs=1e-9)
    assert -17.3 < methane["u0_atom"] < -17.0
    assert table.loc["gdb_184", "smiles"] == "FC(F)(F)F"
    assert table.loc["gdb_184", "atomic_numbers"].tolist().count(9) == 4


# Free-atom U0 (Hartree) of the QM9 paper's atomref table, for checking atomization energies.
_FREE_ATOMS = {1: -0.500273, 6: -37.846772, 7: -54.583861, 8: -75.064579, 9: -99.718730}


def _listed(text: str) -> list[str]:
    """``"['C','H']"`` as ``["C", "H"]``."""
    return [part.strip(" '") for part in text.strip("[]").split(",")]


def test_table_parse_equals_a_plain_parse_of_each_record():
    raw = pd.concat(pd.read_csv(Path(MINI) / f"qm9_part{k}.csv") for k in (1, 2, 3))
    table = read_qm9_table(data_dir=MINI)
    symbols = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
    for _, record in raw.iterrows():
        row = table.loc[f"gdb_{record['Index']}"]
        elements = [symbols[e] for e in _listed(record["Elements"])]
        xyz = [float(v) for v in record["XYZ_Ang"].replace("[", "").replace("]", "").split(",")]
        assert row["atomic_numbers"].tolist() == elements
        np.testing.assert_array_equal(row["positions"], np.reshape(xyz, (-1, 3)))
        free = sum(_FREE_ATOMS[z] for z in elements)
        assert row["u0_atom"] == pytest.approx((row["u0"] - free) * HARTREE_TO_EV, abs=1e-9)


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("N_atoms", 6, "gdb_826: QM9 lists 6 atoms but 7 elements and 7 positions"),
        ("Elements", "['F','C','F','F','C','C','Xx']", r"elements \['Xx'\], not among"),
        (
            "XYZ_Ang",
            str([[k, 0.5, 1.5] for k in range(6)] + [[6, "n/a", 0]]),
            "gdb_826: QM9 lists a position that is not a number",
        ),
    ],
)
def test_a_damaged_qm9_file_is_refused_naming_the_molecule(tmp_path, column, value, match):
    for k in (1, 2, 3):
        raw = pd.read_csv(Path(MINI) / f"qm9_part{k}.csv")
        raw.loc[raw["Index"] == 826, column] = value
        raw.to_csv(tmp_path / f"qm9_part{k}.csv", index=False)
    with pytest.raises(ValueError, match=match):
        read_qm9_table(data_dir=str(tmp_path))


def test_load_qm9_keeps_dft_geometry_and_aligns_labels():
    tasks, (dataset,), transformers = load_qm9(
        tasks=["u0", "mu", "u0_atom"], splitter=None, data_dir=MINI
    )
    table = read_qm9_table(data_dir=MINI)
    assert tasks == ["u0", "mu", "u0_atom"] and transformers == []
    assert len(dataset) == 14
    for conformer, y, mol_id in zip(dataset.X, dataset.y, dataset.ids):
        assert isinstance(conformer, Conformer)
        np.testing.assert_array_equal(conformer.positions, table.loc[mol_id, "positions"])
        assert conformer.smiles == table.loc[mol_id, "smiles"]
        assert y.tolist() == table.loc[mol_id, ["u0", "mu", "u0_atom"]].tolist()


def test_dropped_molecules_do_not_shift_labels(caplog):
    no_fluorine = ConformerFeaturizer(elements=("H", "C", "N", "O"), other_element=False)
    _, (dataset,), _ = load_qm9(no_fluorine, tasks=["u0"], splitter=None, data_dir=MINI)
    table = read_qm9_table(data_dir=MINI)
    assert set(table.index) - set(dataset.ids) == {"gdb_184", "gdb_826"}
    for y, mol_id in zip(dataset.y[:, 0], dataset.ids):
        assert y == table.loc[mol_id, "u0"]
    assert sorted(mol_id for _, mol_id, _ in no_fluorine.failures) == ["gdb_184", "gdb_826"]
    assert "2 of 14 molecules skipped" in caplog.text


def test_random_split_partitions_ids_deterministically():
    _, parts, _ = load_qm9(
        tasks=["gap"], data_dir=MINI, frac_train=0.5, frac_valid=0.25, frac_test=0.25
    )
    _, again, _ = load_qm9(
        tasks=["gap"], data_dir=MINI, frac_train=0.5, frac_valid=0.25, frac_test=0.25
    )
    ids = [set(p.ids) for p in parts]
    assert sum(len(s) for s in ids) == 14 and len(ids[0]) == 7
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert [list(p.ids) for p in parts] == [list(p.ids) for p in again]


def test_limit_takes_a_seeded_sample():
    a = read_qm9_table(limit=5, seed=1, data_dir=MINI)
    b = read_qm9_table(limit=5, seed=1, data_dir=MINI)
    c = read_qm9_table(limit=5, seed=2, data_dir=MINI)
    assert list(a.index) == list(b.index) and len(a) == 5
    assert list(a.index) != list(c.index)


def test_bond_dependent_features_use_perceived_bond_orders():
    featurizer = ConformerFeaturizer(atom_properties=("hybridization",))
    _, (dataset,), _ = load_qm9(featurizer, tasks=["u0"], splitter=None, data_dir=MINI)
    acetylene = dataset.X[list(dataset.ids).index("gdb_4")]
    sp = featurizer.feature_names.index("hybridization=sp")
    carbons = acetylene.atomic_numbers == 6
    assert (acetylene.features[carbons, sp] == 1.0).all()


def test_heavy_atoms_only_drops_qm9_hydrogens():
    featurizer = ConformerFeaturizer(heavy_atoms_only=True)
    _, (dataset,), _ = load_qm9(featurizer, tasks=["u0"], splitter=None, data_dir=MINI)
    assert all((c.atomic_numbers > 1).all() for c in dataset.X)
    water = dataset.X[list(dataset.ids).index("gdb_3")]
    assert water.atomic_numbers.tolist() == [8]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tasks": ["u0", "energy"]}, ValueError, "tasks must be a non-empty list of distinct"),
        ({"tasks": []}, ValueError, "tasks must be a non-empty list"),
        ({"tasks": ["mu", "mu", "gap"]}, ValueError, "distinct names"),  # mu would weigh double
        # DeepChem checks only the sum: a negative fraction made train and test overlap.
        ({"frac_train": -0.2, "frac_valid": 0.6, "frac_test": 0.6}, ValueError, "frac_train"),
        ({"frac_train": 0.5}, ValueError, "must sum to 1"),
        ({"limit": True}, TypeError, "limit must be an int"),  # read as one molecule
        ({"seed": True}, TypeError, "seed must be an int"),
        ({"splitter": "scaffold"}, ValueError, r"splitter must be one of \['random', None\]"),
        (
            {"featurizer": "ConformerFeaturizer"},
            TypeError,
            "featurizer must be a ConformerFeaturizer",
        ),
        ({"limit": 0}, ValueError, "limit == 0"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        load_qm9(data_dir=MINI, **kwargs)


def test_missing_files_and_missing_extra(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="lacks"):
        read_qm9_table(data_dir=str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install 'dc_invariant\[qm9\]'"):
        load_qm9()


def test_datasets_carry_task_names_through_splits_and_transforms(dc):
    tasks, parts, _ = load_qm9(tasks=["gap", "u0_atom"], data_dir=MINI)
    assert tasks == ["gap", "u0_atom"]
    for part in parts:
        assert list(part.get_task_names()) == tasks
    normalise = dc.trans.NormalizationTransformer(transform_y=True, dataset=parts[0])
    assert list(normalise.transform(parts[1]).get_task_names()) == tasks
    ((whole,),) = load_qm9(tasks=["mu"], data_dir=MINI, splitter=None)[1:2]
    assert list(whole.get_task_names()) == ["mu"]


def test_task_names_match_deepchem():
    assert list(QM9_TASKS) == [
        "mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "cv", "u0", "u298", "h298", "g298"
    ]  # fmt: skip
    assert list(QM9_ATOMIZATION_TASKS) == ["u0_atom", "u298_atom", "h298_atom", "g298_atom"]


@pytest.mark.skipif(not HAS_QM9PACK, reason="needs the qm9 extra: pip install 'dc_invariant[qm9]'")
def test_real_qm9_sample():
    _, (train, valid, test), _ = load_qm9(tasks=["u0_atom", "gap"], limit=300, seed=3)
    assert len(train) + len(valid) + len(test) == 300
    for conformer in train.X:
        assert conformer.n_atoms <= 29
        assert set(conformer.atomic_numbers.tolist()) <= {1, 6, 7, 8, 9}
    assert (train.y[:, 0] < 0).all() and (train.y[:, 1] > 0).all()


def _write_delaney(data_dir, rows):
    pd.DataFrame(
        {
            "Compound ID": [f"cmpd{i}" for i in range(len(rows))],
            "ESOL predicted log solubility in mols per litre": [0.0] * len(rows),
            DELANEY_TASK: [row_label(i) for i in range(len(rows))],
            "smiles": rows,
        }
    ).to_csv(os.path.join(data_dir, "delaney-processed.csv"), index=False)


def _write_freesolv(data_dir, rows):
    frame = pd.DataFrame({"smiles": rows, "y": [row_label(i) for i in range(len(rows))]})
    with gzip.open(os.path.join(data_dir, "freesolv.csv.gz"), "wt", newline="") as handle:
        frame.to_csv(handle, index=False)


def _write_lipo(data_dir, rows):
    pd.DataFrame(
        {
            "CMPD_CHEMBLID": [f"CHEMBL{i}" for i in range(len(rows))],
            "exp": [row_label(i) for i in range(len(rows))],
            "smiles": rows,
        }
    ).to_csv(os.path.join(data_dir, "Lipophilicity.csv"), index=False)


MOLNET = {
    "delaney": (lambda **kw: dc.molnet.load_delaney(**kw), _write_delaney, DELANEY_TASK),
    "freesolv": (lambda **kw: dc.molnet.load_freesolv(**kw), _write_freesolv, "y"),
    "lipo": (lambda **kw: dc.molnet.load_lipo(**kw), _write_lipo, "exp"),
}


@pytest.mark.parametrize("name", sorted(MOLNET))
def test_molnet_loader_offline(name, tmp_path, drug_reference):
    load, write, task = MOLNET[name]
    data_dir = tmp_path / "raw"
    data_dir.mkdir()
    rows = rows_with_invalid()
    write(str(data_dir), rows)
    raw_label = {s: row_label(i) for i, s in enumerate(rows)}

    tasks, splits, transformers = load(
        featurizer=ConformerFeaturizer(), data_dir=str(data_dir), save_dir=str(tmp_path / "save")
    )

    assert tasks == [task]
    assert len(splits) == 3
    assert sum(len(s) for s in splits) == len(DRUGS)
    all_ids = [smiles for split in splits for smiles in split.ids]
    assert len(all_ids) == len(set(all_ids)) == len(DRUGS)
    assert set(all_ids) == set(DRUGS)
    assert len(splits[0]) > 0 and len(splits[2]) > 0

    # The default normalization transformer was fitted on train and applied to every split;
    # untransforming gives back each molecule's raw label, matched by id.
    assert len(transformers) == 1
    normalizer = transformers[0]
    assert isinstance(normalizer, dc.trans.NormalizationTransformer)
    assert abs(float(splits[0].y.mean())) < 1e-8
    for split in splits:
        assert_attached(split)
        assert list(split.get_task_names()) == [task]
        for conformer, smiles in zip(split.X, split.ids):
            assert_same_conformer(conformer, drug_reference[smiles])
        if len(split) == 0:
            continue
        raw = np.array([[raw_label[s]] for s in split.ids])
        assert not np.allclose(split.y, raw)  # really transformed ...
        np.testing.assert_allclose(normalizer.untransform(split.y), raw, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", sorted(MOLNET))
def test_load_molnet_whole_set_carries_task_names(name, tmp_path):
    from dc_invariant.datasets import load_molnet

    _, write, task = MOLNET[name]
    write(str(tmp_path), rows_with_invalid())
    dataset = load_molnet(name, str(tmp_path))
    assert list(dataset.get_task_names()) == [task]
    assert len(dataset) == len(DRUGS)


CACHE_VARIANTS = {
    "seed": {"random_seed": 1},
    "elements": {"elements": ("C", "H", "N", "O")},
    "heavy": {"heavy_atoms_only": True},
    "properties": {"atom_properties": ("aromatic",)},
}


@pytest.mark.parametrize("variant", sorted(CACHE_VARIANTS))
def test_molnet_cache_is_per_featurizer_settings(variant, tmp_path):
    data_dir = tmp_path / "raw"
    data_dir.mkdir()
    molecules = DRUGS[:10]
    _write_delaney(str(data_dir), molecules)
    save_dir = tmp_path / "save"

    def load(featurizer):
        _, splits, _ = dc.molnet.load_delaney(
            featurizer=featurizer, data_dir=str(data_dir), save_dir=str(save_dir), reload=True
        )
        return splits

    first = ConformerFeaturizer()
    second = ConformerFeaturizer(**CACHE_VARIANTS[variant])

    def check(splits, featurizer):
        for split in splits:
            assert_attached(split)
            expected = featurizer.featurize(list(split.ids))
            for got, want in zip(split.X, expected):
                assert_same_conformer(got, want)
                assert got.n_features == featurizer.n_features

    splits_first = load(first)
    check(splits_first, first)
    splits_second = load(second)
    check(splits_second, second)  # its own settings, not the first call's cache

    cache_root = save_dir / "delaney-featurized"
    assert str(first) != str(second)
    assert sorted(os.listdir(cache_root)) == sorted([str(first), str(second)])

    # The two results really differ, so the check above could tell them apart.
    by_id_first = {s: c for split in splits_first for s, c in zip(split.ids, split.X)}
    differs = [
        c.features.shape != by_id_first[s].features.shape
        or c.positions.shape != by_id_first[s].positions.shape
        or not np.array_equal(c.positions, by_id_first[s].positions)
        or not np.array_equal(c.features, by_id_first[s].features)
        for split in splits_second
        for s, c in zip(split.ids, split.X)
    ]
    assert any(differs)

    # A third call with the first settings is served from the first call's cache folder.
    again = load(ConformerFeaturizer())
    first_folder = os.path.realpath(cache_root / str(first))
    assert os.path.realpath(again[0].data_dir).startswith(first_folder + os.sep)
    check(again, first)


def test_qm9_geometries_are_one_conformer_each():
    # The arrays path ignored n_conformers=3, where the Mol path failed every molecule.
    with pytest.raises(ValueError, match="one DFT geometry per molecule"):
        load_qm9(ConformerFeaturizer(n_conformers=3), data_dir=MINI, splitter=None)
    featurizer = ConformerFeaturizer(n_conformers=2)
    assert featurizer.featurize_arrays([[8, 1, 1]], [np.eye(3)], log_failures=False)[0].size == 0
    assert "n_conformers=2" in featurizer.failures[0][2]
