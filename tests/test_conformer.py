import pickle

import numpy as np
import pytest
from conftest import DRUGS, assert_attached, assert_same_conformer

from dc_invariant import Conformer, ConformerFeaturizer
from dc_invariant._deepchem import import_deepchem

dc = import_deepchem()


def make(n: int, width: int = 2, smiles: str = "x") -> Conformer:
    rng = np.random.default_rng(n)
    return Conformer(rng.normal(size=(n, 3)), rng.random((n, width)), np.arange(1, n + 1), smiles)


def test_numpy_keeps_conformers_whole():
    items = [make(3), make(5)]
    array = np.array(items)
    assert array.shape == (2,) and array.dtype == object
    assert array[1] is items[1]
    for name in ("__len__", "__getitem__", "__array__", "__iter__"):
        assert not hasattr(items[0], name)


def test_pickle_round_trip_is_exact():
    c = Conformer(np.ones((2, 3)), np.eye(2), [6, 1], "C", ensemble=np.ones((3, 2, 3)))
    back = pickle.loads(pickle.dumps(c))
    np.testing.assert_array_equal(back.positions, c.positions)
    np.testing.assert_array_equal(back.ensemble, c.ensemble)
    assert back.smiles == "C" and back.atomic_numbers.dtype == np.int64


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"positions": np.zeros((3, 2))},
            r"positions must have shape \(n_atoms, 3\), got \(3, 2\)",
        ),
        ({"features": np.zeros((2, 4))}, r"features must have shape \(3, n_features\)"),
        ({"atomic_numbers": [1, 2]}, r"atomic_numbers must have shape \(3,\)"),
        ({"ensemble": np.zeros((2, 4, 3))}, r"ensemble must have shape \(n_conformers, 3, 3\)"),
    ],
)
def test_inconsistent_shapes_are_rejected(kwargs, match):
    args = {
        "positions": np.zeros((3, 3)),
        "features": np.zeros((3, 4)),
        "atomic_numbers": [1, 1, 1],
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Conformer(**args)


def test_split_ensemble_gives_one_datapoint_per_geometry():
    ensemble = np.arange(18, dtype=float).reshape(3, 2, 3)
    c = Conformer(ensemble[0], np.eye(2), [6, 1], "C", ensemble=ensemble)
    parts = c.split_ensemble()
    assert c.n_conformers == 3 and len(parts) == 3
    for k, part in enumerate(parts):
        np.testing.assert_array_equal(part.positions, ensemble[k])
        assert part.ensemble is None and part.smiles == "C"
    single = make(2)
    assert single.split_ensemble() == [single]


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
        assert_same_conformer(got, want)
    assert reloaded.X[-1].n_conformers == 3
    assert reloaded.X[-1].n_features == rich[0].n_features


@pytest.mark.parametrize("splitter_name", ["random", "scaffold"])
@pytest.mark.parametrize("storage", ["numpy", "disk"])
def test_splitters_partition_ids_and_keep_datapoints(
    splitter_name, storage, tmp_path, drug_dataset, drug_reference
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
        assert_attached(split)
        for conformer, smiles, label in zip(split.X, split.ids, split.y[:, 0]):
            assert_same_conformer(conformer, drug_reference[smiles])
            assert label == label_of[smiles]

    # Conformer datapoints do not change the split: same as for plain numeric features.
    plain = dc.data.NumpyDataset(np.zeros((len(DRUGS), 1)), ids=drug_dataset.ids)
    indices = splitter.split(plain, seed=7)
    for split, index in zip(splits, indices):
        assert list(split.ids) == [DRUGS[i] for i in index]
