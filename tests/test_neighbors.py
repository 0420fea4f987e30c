import numpy as np
import pytest

from dc_invariant.neighbors import neighbor_pairs


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
