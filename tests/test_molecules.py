"""`Molecules`: stacked atom arrays, their checks, segments and padding."""

import numpy as np
import pytest
from conftest import DRUGS, row_label

from dc_invariant import Conformer, pad_batch
from dc_invariant.molecules import Molecules, segment_arange, segment_ids, split_segments, starts_of


def make(n: int, width: int = 2, smiles: str = "x") -> Conformer:
    rng = np.random.default_rng(n)
    return Conformer(rng.normal(size=(n, 3)), rng.random((n, width)), np.arange(1, n + 1), smiles)


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


@pytest.mark.parametrize("pad_batches", [False, True])
@pytest.mark.parametrize("deterministic", [True, False])
def test_iterbatches_and_pad_batch(drug_dataset, drug_reference, pad_batches, deterministic):
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
            assert label == row_label(DRUGS.index(smiles))
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
            want = drug_reference[conformer.smiles]
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


def test_from_conformers_stacks_in_order_and_never_copies_the_caller_s_arrays():
    water, h2 = make(3, smiles="O"), make(2, smiles="[HH]")
    batch = Molecules.from_conformers([water, h2])
    assert batch.counts.tolist() == [3, 2] and batch.smiles == ["O", "[HH]"]
    np.testing.assert_array_equal(batch.positions, np.concatenate([water.positions, h2.positions]))
    np.testing.assert_array_equal(batch.atomic_numbers, [1, 2, 3, 1, 2])
    batch.positions[0] = 99.0
    assert water.positions[0, 0] != 99.0  # the stack is a new array
    back = batch.conformers()
    np.testing.assert_array_equal(back[1].features, h2.features)
    assert back[1].smiles == "[HH]"


@pytest.mark.parametrize("what", ["positions", "features"])
def test_from_conformers_refuses_nan_naming_the_molecule(what):
    good, bad = make(2, smiles="CC"), make(3, smiles="CCO")
    getattr(bad, what)[1, 0] = np.nan
    kind = "coordinates" if what == "positions" else "features"
    with pytest.raises(ValueError, match=rf"molecule 1 \('CCO'\) has NaN or infinite {kind}"):
        Molecules.from_conformers([good, bad])
    getattr(bad, what)[1, 0] = np.inf
    with pytest.raises(ValueError, match=rf"molecule id-1 \('CCO'\) has NaN or infinite {kind}"):
        Molecules.from_conformers([good, bad], name=lambda k: f"id-{k}")


@pytest.mark.parametrize(
    ("items", "kwargs", "match"),
    [
        ([], {}, "an empty batch"),
        ([make(2), make(3, width=4, smiles="wide")], {}, r"molecule 1 \('wide'\) has 4 features"),
        ([make(2)], {"n_features": 3}, "the model expects n_features=3"),
        ([make(2), make(6, smiles="big")], {"n_atoms_limit": 5}, r"\('big'\) has 6 atoms"),
    ],
)
def test_from_conformers_errors_say_which_molecule_and_what_was_expected(items, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Molecules.from_conformers(items, **kwargs)


def test_from_arrays_checks_shapes_and_values():
    positions, features, numbers = np.zeros((5, 3)), np.ones((5, 2)), np.ones(5, int)
    assert Molecules.from_arrays(positions, features, numbers, [2, 3], 2).counts.tolist() == [2, 3]
    with pytest.raises(ValueError, match=r"positions must have shape .* \(5, 3\) with every count"):
        Molecules.from_arrays(positions, features, numbers, [5, 0], 2)
    with pytest.raises(ValueError, match=r"features must have shape \(5, 3\)"):
        Molecules.from_arrays(positions, features, numbers, [2, 3], 3)
    positions[4, 2] = np.nan
    with pytest.raises(ValueError, match="molecule 1 has NaN or infinite coordinates"):
        Molecules.from_arrays(positions, features, numbers, [2, 3], 2)


def test_segment_helpers_agree_with_plain_loops():
    counts = np.array([2, 0, 3, 1])
    assert starts_of(counts).tolist() == [0, 2, 2, 5]
    assert segment_ids(counts).tolist() == [0, 0, 2, 2, 2, 3]
    starts = np.array([10, 4, 0, 7])
    expected = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, counts)])
    np.testing.assert_array_equal(segment_arange(starts, counts), expected)
    values = np.arange(12).reshape(6, 2)
    pieces = split_segments(values, counts)
    assert [p.shape[0] for p in pieces] == counts.tolist()
    np.testing.assert_array_equal(np.concatenate(pieces), values)
    np.testing.assert_array_equal(pieces[2], values[2:5])


def test_select_range_and_concatenate_keep_each_molecule_whole():
    batch = Molecules.from_conformers([make(n, smiles=f"m{n}") for n in (1, 4, 2, 3)])
    picked = batch.select([2, 0])
    assert picked.smiles == ["m2", "m1"] and picked.counts.tolist() == [2, 1]
    np.testing.assert_array_equal(
        picked.positions, np.concatenate([make(2).positions, make(1).positions])
    )
    middle = batch.range(1, 3)
    assert middle.smiles == ["m4", "m2"]
    np.testing.assert_array_equal(middle.positions, batch.positions[1:7])
    whole = Molecules.concatenate([batch.range(0, 2), batch.range(2, 4)])
    np.testing.assert_array_equal(whole.positions, batch.positions)
    assert whole.smiles == batch.smiles


def test_batches_cover_every_molecule_once_within_the_atom_budget():
    counts = np.random.default_rng(0).integers(1, 12, 40)
    n = int(counts.sum())
    batch = Molecules(np.zeros((n, 3)), np.ones((n, 1)), np.ones(n, int), counts)
    for budget in (1, 7, 30, 10_000):
        ranges = batch.batch_ranges(budget)
        assert [r[0] for r in ranges] == [0] + [r[1] for r in ranges[:-1]]
        assert ranges[-1][1] == len(counts)
        for first, last in ranges:
            assert counts[first:last].sum() <= budget or last == first + 1
    padded = batch.batch_ranges(30, padded_to=12)
    assert all(last - first <= 2 for first, last in padded)  # 2 x 12 padded atoms fit in 30


def test_centred_positions_put_each_centroid_at_the_origin_far_out():
    batch = Molecules.from_conformers([make(3), make(5)])
    batch.positions += 1e3
    centred = batch.centred_positions()
    for piece in batch.split(centred):
        np.testing.assert_allclose(piece.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(centred[:3], make(3).positions - make(3).positions.mean(axis=0))
