"""`ConformerFeaturizer` inside DeepChem's own code paths: loaders, MoleculeNet, datasets, splits.

Everything runs offline: each MoleculeNet raw file is written into ``data_dir`` beforehand, so
DeepChem finds it and never tries to download.
"""

from __future__ import annotations

import gzip
import logging
import os

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem
from rdkit.Chem import rdDistGeom

from dc_invariant import Conformer, ConformerFeaturizer, pad_batch
from dc_invariant._deepchem import import_deepchem

dc = import_deepchem()

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

DELANEY_TASK = "measured log solubility in mols per litre"


def _label(row: int) -> float:
    """Label of CSV row ``row``: distinct per row, so any misalignment shows."""
    return 0.25 + 1.5 * row


def _rows_with_invalid() -> list[str]:
    """DRUGS with the invalid SMILES slipped in at rows 3 and 10."""
    rows = list(DRUGS)
    rows.insert(3, INVALID[0])
    rows.insert(10, INVALID[1])
    return rows


def _assert_same_conformer(got: Conformer, expected: Conformer) -> None:
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


def _assert_attached(dataset) -> None:
    """Every datapoint is a Conformer and sits next to its own id."""
    assert dataset.X.dtype == object
    assert len(dataset.X) == len(dataset.ids)
    for conformer, smiles in zip(dataset.X, dataset.ids):
        assert isinstance(conformer, Conformer)
        assert conformer.smiles == smiles


@pytest.fixture(scope="module")
def reference() -> dict[str, Conformer]:
    """Each drug featurized directly (outside DeepChem) with the default settings."""
    conformers = ConformerFeaturizer().featurize(DRUGS)
    assert all(isinstance(c, Conformer) for c in conformers)
    return dict(zip(DRUGS, conformers))


@pytest.fixture(scope="module")
def drug_dataset(reference) -> dc.data.NumpyDataset:
    """NumpyDataset of the drugs' Conformers, ids = SMILES, y = a known function of the row."""
    X = np.empty(len(DRUGS), dtype=object)
    X[:] = [reference[s] for s in DRUGS]
    y = np.array([[_label(i)] for i in range(len(DRUGS))])
    return dc.data.NumpyDataset(X, y, ids=np.array(DRUGS, dtype=object))


# --------------------------------------------------------------------------------------------
# 1. CSVLoader
# --------------------------------------------------------------------------------------------


def test_csv_loader_drops_invalid_rows_and_keeps_alignment(tmp_path, reference, caplog):
    rows = _rows_with_invalid()
    frame = pd.DataFrame(
        {
            "name": [f"row{i}" for i in range(len(rows))],
            "smiles": rows,
            "task_a": [_label(i) for i in range(len(rows))],
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
    _assert_attached(dataset)

    row_of = {s: i for i, s in enumerate(rows)}
    expected_y = np.array([[_label(row_of[s]), -float(row_of[s])] for s in dataset.ids])
    np.testing.assert_array_equal(dataset.y, expected_y)
    np.testing.assert_array_equal(dataset.w, np.ones_like(expected_y))

    # Featurizing through the loader gives exactly what featurizing directly gives.
    for conformer, smiles in zip(dataset.X, dataset.ids):
        _assert_same_conformer(conformer, reference[smiles])

    # Each dropped row was reported once, by its SMILES.
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("dc_invariant")]
    for bad in INVALID:
        assert sum(f"({bad})" in m for m in messages) == 1, messages


# --------------------------------------------------------------------------------------------
# 2. SDFLoader
# --------------------------------------------------------------------------------------------

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
    _assert_attached(dataset)
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


# --------------------------------------------------------------------------------------------
# 3. MoleculeNet loaders (offline)
# --------------------------------------------------------------------------------------------


def _write_delaney(data_dir, rows):
    pd.DataFrame(
        {
            "Compound ID": [f"cmpd{i}" for i in range(len(rows))],
            "ESOL predicted log solubility in mols per litre": [0.0] * len(rows),
            DELANEY_TASK: [_label(i) for i in range(len(rows))],
            "smiles": rows,
        }
    ).to_csv(os.path.join(data_dir, "delaney-processed.csv"), index=False)


def _write_freesolv(data_dir, rows):
    frame = pd.DataFrame({"smiles": rows, "y": [_label(i) for i in range(len(rows))]})
    with gzip.open(os.path.join(data_dir, "freesolv.csv.gz"), "wt", newline="") as handle:
        frame.to_csv(handle, index=False)


def _write_lipo(data_dir, rows):
    pd.DataFrame(
        {
            "CMPD_CHEMBLID": [f"CHEMBL{i}" for i in range(len(rows))],
            "exp": [_label(i) for i in range(len(rows))],
            "smiles": rows,
        }
    ).to_csv(os.path.join(data_dir, "Lipophilicity.csv"), index=False)


MOLNET = {
    "delaney": (lambda **kw: dc.molnet.load_delaney(**kw), _write_delaney, DELANEY_TASK),
    "freesolv": (lambda **kw: dc.molnet.load_freesolv(**kw), _write_freesolv, "y"),
    "lipo": (lambda **kw: dc.molnet.load_lipo(**kw), _write_lipo, "exp"),
}


@pytest.mark.parametrize("name", sorted(MOLNET))
def test_molnet_loader_offline(name, tmp_path, reference):
    load, write, task = MOLNET[name]
    data_dir = tmp_path / "raw"
    data_dir.mkdir()
    rows = _rows_with_invalid()
    write(str(data_dir), rows)
    raw_label = {s: _label(i) for i, s in enumerate(rows)}

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
        _assert_attached(split)
        assert list(split.get_task_names()) == [task]
        for conformer, smiles in zip(split.X, split.ids):
            _assert_same_conformer(conformer, reference[smiles])
        if len(split) == 0:
            continue
        raw = np.array([[raw_label[s]] for s in split.ids])
        assert not np.allclose(split.y, raw)  # really transformed ...
        np.testing.assert_allclose(normalizer.untransform(split.y), raw, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", sorted(MOLNET))
def test_load_molnet_whole_set_carries_task_names(name, tmp_path):
    from dc_invariant.datasets import load_molnet

    _, write, task = MOLNET[name]
    write(str(tmp_path), _rows_with_invalid())
    dataset = load_molnet(name, str(tmp_path))
    assert list(dataset.get_task_names()) == [task]
    assert len(dataset) == len(DRUGS)


# --------------------------------------------------------------------------------------------
# 4. MoleculeNet cache folders follow the featurizer's settings
# --------------------------------------------------------------------------------------------

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
            _assert_attached(split)
            expected = featurizer.featurize(list(split.ids))
            for got, want in zip(split.X, expected):
                _assert_same_conformer(got, want)
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


# --------------------------------------------------------------------------------------------
# 5. DiskDataset round trip
# --------------------------------------------------------------------------------------------


def test_disk_dataset_round_trip(tmp_path, drug_dataset):
    # Default datapoints plus some with an ensemble and extra property columns.
    rich = ConformerFeaturizer(
        n_conformers=3, atom_properties=("formal_charge", "aromatic", "hybridization")
    ).featurize(DRUGS[:4])
    X = np.empty(len(drug_dataset) + len(rich), dtype=object)
    X[:] = [*drug_dataset.X, *rich]
    ids = np.array([*drug_dataset.ids, *(f"rich:{c.smiles}" for c in rich)], dtype=object)
    y = np.arange(len(X), dtype=np.float64)[:, None] * 0.5

    folder = tmp_path / "loaders_disk"
    saved = dc.data.DiskDataset.from_numpy(X, y, ids=ids, data_dir=str(folder))
    saved.reshard(shard_size=6)  # several shards on disk
    assert saved.get_number_shards() == 4
    reloaded = dc.data.DiskDataset(str(folder))

    assert len(reloaded) == len(X)
    assert list(reloaded.ids) == list(ids)
    np.testing.assert_array_equal(reloaded.y, y)
    assert reloaded.X.dtype == object
    for got, want in zip(reloaded.X, X):
        assert got is not want  # really read back from disk
        _assert_same_conformer(got, want)
    assert reloaded.X[-1].n_conformers == 3
    assert reloaded.X[-1].n_features == rich[0].n_features


# --------------------------------------------------------------------------------------------
# 6. Splitters
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("splitter_name", ["random", "scaffold"])
@pytest.mark.parametrize("storage", ["numpy", "disk"])
def test_splitters_partition_ids_and_keep_datapoints(
    splitter_name, storage, tmp_path, drug_dataset, reference
):
    if storage == "numpy":
        dataset = drug_dataset
    else:
        dataset = dc.data.DiskDataset.from_numpy(
            drug_dataset.X, drug_dataset.y, ids=drug_dataset.ids, data_dir=str(tmp_path / "all")
        )
    splitter = {"random": dc.splits.RandomSplitter, "scaffold": dc.splits.ScaffoldSplitter}[
        splitter_name
    ]()
    dirs = {}
    if storage == "disk":
        dirs = {f"{k}_dir": str(tmp_path / k) for k in ("train", "valid", "test")}
    train, valid, test = splitter.train_valid_test_split(dataset, seed=7, **dirs)

    splits = (train, valid, test)
    all_ids = [s for split in splits for s in split.ids]
    assert len(all_ids) == len(set(all_ids)) == len(DRUGS)  # no overlap
    assert set(all_ids) == set(DRUGS)  # nothing lost
    assert len(train) > len(valid) and len(train) > len(test)

    label_of = dict(zip(drug_dataset.ids, drug_dataset.y[:, 0]))
    for split in splits:
        _assert_attached(split)
        for conformer, smiles, label in zip(split.X, split.ids, split.y[:, 0]):
            _assert_same_conformer(conformer, reference[smiles])
            assert label == label_of[smiles]

    # Conformer datapoints do not change the split: same as for plain numeric features.
    plain = dc.data.NumpyDataset(np.zeros((len(DRUGS), 1)), ids=drug_dataset.ids)
    indices = splitter.split(plain, seed=7)
    for split, index in zip(splits, indices):
        assert list(split.ids) == [DRUGS[i] for i in index]


# --------------------------------------------------------------------------------------------
# 7. Batches and pad_batch
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pad_batches", [False, True])
@pytest.mark.parametrize("deterministic", [True, False])
def test_iterbatches_and_pad_batch(drug_dataset, reference, pad_batches, deterministic):
    batch_size = 5
    seen = []
    n_batches = 0
    for X_b, y_b, _, ids_b in drug_dataset.iterbatches(
        batch_size=batch_size, deterministic=deterministic, pad_batches=pad_batches
    ):
        n_batches += 1
        assert X_b.dtype == object and X_b.ndim == 1
        if pad_batches:
            assert len(X_b) == batch_size
        for conformer, smiles, label in zip(X_b, ids_b, y_b[:, 0]):
            assert conformer.smiles == smiles
            assert label == _label(DRUGS.index(smiles))
        seen.extend(ids_b)

        positions, features, mask = pad_batch(X_b)
        sizes = [c.n_atoms for c in X_b]
        n_max = max(sizes)
        width = X_b[0].n_features
        assert positions.shape == (len(X_b), n_max, 3)
        assert features.shape == (len(X_b), n_max, width)
        assert mask.shape == (len(X_b), n_max) and mask.dtype == bool
        np.testing.assert_array_equal(mask.sum(axis=1), sizes)
        for i, conformer in enumerate(X_b):
            n = conformer.n_atoms
            want = reference[conformer.smiles]
            assert mask[i, :n].all() and not mask[i, n:].any()
            np.testing.assert_array_equal(positions[i, :n], want.positions)
            np.testing.assert_array_equal(features[i, :n], want.features)
            assert not positions[i, n:].any() and not features[i, n:].any()

        positions32, features32, _ = pad_batch(X_b, n_max=n_max + 2, dtype=np.float32)
        assert positions32.dtype == np.float32 and positions32.shape[1] == n_max + 2
        np.testing.assert_array_equal(positions32[:, :n_max], positions.astype(np.float32))
        np.testing.assert_array_equal(features32[:, :n_max], features.astype(np.float32))

    assert n_batches == -(-len(DRUGS) // batch_size)
    if pad_batches:
        assert set(seen) == set(DRUGS)  # the short last batch is filled by repeats
    else:
        assert sorted(seen) == sorted(DRUGS)
    if deterministic:
        assert seen[: len(DRUGS)] == DRUGS
