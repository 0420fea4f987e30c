import numpy as np
import pytest

from dc_invariant.neighbors import neighbor_pairs, stacked_neighbor_pairs


def brute(positions: np.ndarray, cutoff: float) -> set[tuple[int, int]]:
    d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    return {(i, j) for i, j in zip(*np.nonzero(d < cutoff)) if i != j}


@pytest.mark.parametrize("n", [1, 5, 64, 65, 400])
def test_both_methods_find_exactly_the_pairs_inside_the_cutoff(n):
    positions = np.random.default_rng(n).uniform(0, 12, size=(n, 3))
    pairs = neighbor_pairs(positions, 3.0)
    assert pairs.dtype == np.int64 and pairs.shape[0] == 2
    assert set(map(tuple, pairs.T.tolist())) == brute(positions, 3.0)
    assert (np.lexsort((pairs[1], pairs[0])) == np.arange(pairs.shape[1])).all()
    half = neighbor_pairs(positions, 3.0, directed=False)
    assert (half[0] < half[1]).all() and 2 * half.shape[1] == pairs.shape[1]


def test_pairs_grow_with_the_neighbourhood_not_with_n_squared():
    # A 10 x 10 x 10 grid at 1.5 Å spacing: each inner atom has 6 neighbours within 2 Å.
    axis = np.arange(10) * 1.5
    grid = np.stack(np.meshgrid(axis, axis, axis), axis=-1).reshape(-1, 3)
    pairs = neighbor_pairs(grid, 2.0)
    assert pairs.shape[1] == 6 * 1000 - 6 * 100  # 6 per atom, less the missing ones on faces


@pytest.mark.parametrize("directed", [True, False])
def test_batch_lists_equal_the_lists_of_each_molecule(directed):
    # Small molecules are listed all at once, large ones (> 64 atoms) one by one; the
    # result must be each molecule's own list, in the order the molecules were asked for.
    rng = np.random.default_rng(3)
    counts = np.array([1, 5, 70, 18, 18, 2, 130, 9])
    positions = rng.uniform(0, 8, size=(counts.sum(), 3))
    starts = np.cumsum(counts) - counts
    for molecules in (None, np.array([0, 2, 3, 6, 7]), np.array([1, 4]), np.array([], int)):
        chosen = range(len(counts)) if molecules is None else molecules
        expected = [np.empty((2, 0), np.int64)] + [
            neighbor_pairs(positions[starts[m] : starts[m] + counts[m]], 2.5, directed=directed)
            + starts[m]
            for m in chosen
        ]
        pairs = stacked_neighbor_pairs(
            positions, counts, 2.5, directed=directed, molecules=molecules
        )
        assert pairs.dtype == np.int64
        np.testing.assert_array_equal(pairs, np.concatenate(expected, axis=1))
