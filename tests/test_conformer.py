import pickle

import numpy as np
import pytest

from dc_invariant import Conformer, pad_batch


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


def test_pad_batch_pads_with_zeros_and_masks():
    small, large = make(2), make(5)
    positions, features, mask = pad_batch([small, large], dtype=np.float32)
    assert positions.shape == (2, 5, 3) and features.shape == (2, 5, 2) and mask.shape == (2, 5)
    assert positions.dtype == np.float32 and mask.dtype == bool
    assert mask.tolist() == [[True, True, False, False, False], [True] * 5]
    np.testing.assert_array_equal(positions[0, :2], small.positions.astype(np.float32))
    np.testing.assert_array_equal(features[1], large.features.astype(np.float32))
    assert not positions[0, 2:].any() and not features[0, 2:].any()


def test_pad_batch_to_a_fixed_size():
    positions, _, mask = pad_batch([make(2)], n_max=4)
    assert positions.shape == (1, 4, 3) and mask.sum() == 2


@pytest.mark.parametrize(
    ("batch", "kwargs", "match"),
    [
        ([], {}, "empty batch"),
        ([make(2), np.array([])], {}, "molecule 1 is ndarray, not a Conformer"),
        ([make(2), make(3, width=4, smiles="wide")], {}, r"molecule 1 \('wide'\) has 4"),
        ([make(2), make(6, smiles="big")], {"n_max": 5}, r"molecule 1 \('big'\) has 6 atoms"),
    ],
)
def test_pad_batch_errors_name_the_molecule(batch, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pad_batch(batch, **kwargs)


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
