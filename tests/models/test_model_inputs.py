"""What the models accept and refuse: labels, plain lists of conformers, NumPy settings."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import DRUG_LIKE

from dc_invariant import ConformerFeaturizer
from dc_invariant.models import RotationInvariantModel, SchNetModel, load_model
from dc_invariant.models.base import CONFIG_FILE


@pytest.fixture(scope="module")
def conformers():
    return list(ConformerFeaturizer(random_seed=1).featurize(DRUG_LIKE[:4]))


ATOM_ARRAYS = ("positions", "features", "atomic_numbers")


def objects(items):
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def test_fit_without_labels_is_an_error_not_a_zero_loss(dc, conformers, tmp_path):
    model = RotationInvariantModel()
    unlabelled = dc.data.NumpyDataset(objects(conformers))  # DeepChem fills y with zeros
    with pytest.raises(ValueError, match="every label of the 4-molecule dataset is 0"):
        model.fit(unlabelled, nb_epoch=1)
    on_disk = dc.data.DiskDataset.from_numpy(objects(conformers), data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="made without labels"):
        model.fit(on_disk, nb_epoch=1)
    no_tasks = dc.data.NumpyDataset(objects(conformers), np.zeros((4, 0)))
    with pytest.raises(ValueError, match="no labels"):
        model.fit(no_tasks, nb_epoch=1)
    two_tasks = dc.data.NumpyDataset(objects(conformers), np.ones((4, 2)))
    with pytest.raises(ValueError, match="n_tasks=1 but the dataset's y has shape"):
        model.fit(two_tasks, nb_epoch=1)
    labelled = dc.data.NumpyDataset(objects(conformers), np.arange(4.0)[:, None])
    assert model.fit(labelled, nb_epoch=1) > 0


@pytest.mark.parametrize("model_class", [RotationInvariantModel, SchNetModel])
def test_a_nan_label_is_refused_naming_the_molecule(dc, conformers, model_class):
    y = np.arange(1.0, 5.0)[:, None]
    y[2] = np.nan
    data = dc.data.NumpyDataset(objects(conformers), y, ids=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match=r"molecule 2 \(id 'c', '.+'\) has a NaN or infinite"):
        model_class().fit(data, nb_epoch=1)
    y[2] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite label; 1 molecule"):
        model_class().fit(dc.data.NumpyDataset(objects(conformers), y), nb_epoch=1)


def test_schnet_offsets_that_explain_the_labels_leave_the_network_a_scale(dc, conformers):
    # Three molecules, labels 1, 2, 3: per-element offsets fit them exactly.
    data = dc.data.NumpyDataset(objects(conformers[:3]), np.arange(1.0, 4.0))
    model = SchNetModel(n_tasks=1)
    with pytest.warns(UserWarning, match="offsets alone explain the training labels"):
        model.fit(data, nb_epoch=2)
    counts = np.array([c.n_atoms for c in conformers[:3]])
    spread = (np.arange(1.0, 4.0) / counts).std()
    scale = float(model.model.network.scale[0])
    assert scale >= 0.99 * 0.01 * spread  # was ~1e-8: the network silenced for good
    # More data later: the network's part is there to learn from.
    forces = model.predict_forces(conformers[:3])
    assert max(np.abs(f).max() for f in forces) > 1e-6


def test_predict_forces_takes_a_list_or_one_conformer(dc, conformers):
    model = RotationInvariantModel(dtype="float64", seed=2)
    from_dataset = model.predict_forces(dc.data.NumpyDataset(objects(conformers)))
    from_list = model.predict_forces(conformers)
    assert len(from_list) == 4
    for a, b in zip(from_dataset, from_list):
        np.testing.assert_array_equal(a, b)
    (single,) = model.predict_forces(conformers[2])
    np.testing.assert_array_equal(single, from_dataset[2])
    with pytest.raises(TypeError, match="item 1 is a str"):
        model.predict_forces([conformers[0], "CCO"])


def test_numpy_integer_settings_are_saved_as_plain_json(dc, conformers, tmp_path):
    model = SchNetModel(
        n_interactions=np.int64(2),
        n_atom_basis=np.int32(8),
        n_filters=8,
        n_rbf=8,
        batch_size=np.int64(2),
        model_dir=str(tmp_path),
    )
    model.save_checkpoint()
    with open(os.path.join(tmp_path, CONFIG_FILE)) as handle:
        config = json.load(handle)
    assert config["hyperparameters"]["n_interactions"] == 2
    assert config["torch_model"]["batch_size"] == 2
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    restored = load_model(str(tmp_path))
    dataset = dc.data.NumpyDataset(objects(conformers))
    np.testing.assert_array_equal(restored.predict(dataset), model.predict(dataset))


@pytest.mark.parametrize("batch_atoms", [1, 40, 100_000])
def test_predict_batches_by_atoms_whatever_the_batch_size(dc, conformers, batch_atoms, monkeypatch):
    import dc_invariant.models.batching as batching

    monkeypatch.setattr(batching, "_READ_MOLECULES", 5)  # 12 molecules read in 3 chunks
    model = RotationInvariantModel(dtype="float64", seed=0, batch_size=1)
    model.predict_batch_atoms = batch_atoms
    dataset = dc.data.NumpyDataset(objects(conformers * 3))
    arrays = [np.concatenate([getattr(c, a) for c in conformers * 3]) for a in ATOM_ARRAYS]
    expected = model.predict_arrays(*arrays, [c.n_atoms for c in conformers * 3])
    np.testing.assert_array_equal(model.predict(dataset), expected)


def test_predict_names_a_failed_molecule_by_its_dataset_index(dc, conformers):
    model = RotationInvariantModel(seed=0)
    model.predict_batch_atoms = 30  # the bad item sits in a later batch than the first
    items = objects([*conformers, np.array([]), *conformers])
    with pytest.raises(ValueError, match=r"molecule 4 \(id 4\) is ndarray, not a Conformer"):
        model.predict(dc.data.NumpyDataset(items, ids=np.arange(len(items))))


def test_a_padded_network_counts_every_molecule_at_its_input_size(dc, conformers):
    from dc_invariant.models import DenseModel

    model = DenseModel(n_atoms=40, seed=0)
    model.predict_batch_atoms = 100  # room for 2 molecules padded to 40 atoms
    sizes = []
    make_batch = model.make_batch
    model.make_batch = lambda molecules: sizes.append(len(molecules)) or make_batch(molecules)
    items = conformers * 2
    arrays = [np.concatenate([getattr(c, a) for c in items]) for a in ATOM_ARRAYS]
    through_arrays = model.predict_arrays(*arrays, [c.n_atoms for c in items])
    assert max(sizes) == 2
    sizes.clear()
    np.testing.assert_array_equal(
        model.predict(dc.data.NumpyDataset(objects(items))), through_arrays
    )
    assert max(sizes) == 2 and sum(sizes) == len(items)
