"""A NumpyDataset that keeps its task names through selections, splits and transforms."""

import numpy as np
import pytest

from dc_invariant.named_dataset import NamedNumpyDataset


def test_task_names_survive_select_splitters_and_transformers(dc):
    y = np.arange(20.0).reshape(10, 2)
    data = NamedNumpyDataset(np.zeros((10, 1)), y, ids=np.arange(10), tasks=["u0", "gap"])
    assert data.get_task_names().tolist() == ["u0", "gap"]
    picked = data.select([3, 1])
    assert picked.get_task_names().tolist() == ["u0", "gap"]
    np.testing.assert_array_equal(picked.y, y[[3, 1]])
    for part in dc.splits.RandomSplitter().train_valid_test_split(data, seed=0):
        assert part.get_task_names().tolist() == ["u0", "gap"]
    normalise = dc.trans.NormalizationTransformer(transform_y=True, dataset=data)
    moved = data.transform(normalise)
    assert isinstance(moved, NamedNumpyDataset) and moved.get_task_names().tolist() == ["u0", "gap"]
    np.testing.assert_allclose(moved.y.mean(axis=0), 0.0, atol=1e-12)
    names = data.get_task_names()
    names[0] = "changed"
    assert data.get_task_names()[0] == "u0"  # a copy, not the dataset's own array


def test_task_names_must_match_the_label_columns():
    with pytest.raises(ValueError, match="3 task names for 2 label columns"):
        NamedNumpyDataset(np.zeros((4, 1)), np.ones((4, 2)), tasks=["a", "b", "c"])
