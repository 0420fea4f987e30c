"""From datasets of Conformers to checked batches: labels refused with the molecule named, batches
bounded by atoms whatever DeepChem's batch size, a failed molecule named by its dataset index."""

from __future__ import annotations

import numpy as np
import pytest
from model_zoo import ATOM_ARRAYS, first_four, objects

from dc_invariant.models import RotationInvariantModel, SchNetModel


@pytest.fixture(scope="module")
def conformers():
    return first_four()


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
