import numpy as np
import pytest

from dc_invariant import Conformer
from dc_invariant.symmetry import (
    mixing_permutation,
    random_reflection,
    random_rotation,
    random_translation,
    transform,
)


@pytest.mark.parametrize("seed", range(5))
def test_group_elements_are_what_they_claim(seed):
    rng = np.random.default_rng(seed)
    rotation, mirror = random_rotation(rng), random_reflection(rng)
    for matrix, det in ((rotation, 1.0), (mirror, -1.0)):
        np.testing.assert_allclose(matrix @ matrix.T, np.eye(3), atol=1e-14)
        assert np.linalg.det(matrix) == pytest.approx(det, abs=1e-12)
    assert not np.allclose(np.abs(mirror), np.eye(3))  # mixes axes, unlike x -> -x
    assert np.linalg.norm(random_translation(rng, 1e3)) == pytest.approx(1e3)


def test_rotations_are_uniform():
    # The rotated z axis of a Haar rotation is uniform on the sphere: mean ~0, E[z^2] = 1/3.
    rng = np.random.default_rng(0)
    axes = np.array([random_rotation(rng)[:, 2] for _ in range(4000)])
    np.testing.assert_allclose(axes.mean(axis=0), 0.0, atol=0.05)
    np.testing.assert_allclose((axes**2).mean(axis=0), 1 / 3, atol=0.03)


def test_mixing_permutation_moves_a_different_element():
    rng = np.random.default_rng(1)
    z = np.array([6, 1, 1, 1, 1])
    for _ in range(20):
        order = mixing_permutation(z, rng)
        assert sorted(order.tolist()) == list(range(5)) and (z[order] != z).any()
    same = np.array([6, 6, 6])
    assert (mixing_permutation(same, rng) != np.arange(3)).any()
    assert mixing_permutation(np.array([8]), rng).tolist() == [0]


def test_transform_moves_atoms_with_their_features():
    c = Conformer(np.arange(9.0).reshape(3, 3), np.eye(3), [8, 1, 6], "x")
    order = np.array([2, 0, 1])
    rotation = random_rotation(np.random.default_rng(2))
    moved = transform(c, rotation=rotation, translation=np.ones(3), permutation=order)
    np.testing.assert_allclose(moved.positions, c.positions[order] @ rotation.T + 1.0)
    np.testing.assert_array_equal(moved.features, c.features[order])
    assert moved.atomic_numbers.tolist() == [6, 8, 1] and moved.smiles == "x"
    assert c.positions[0].tolist() == [0.0, 1.0, 2.0]  # input untouched


def test_an_order_proves_something_only_if_it_reorders_mixed_heavy_atoms():
    from dc_invariant.symmetry import mixes

    methanol = np.array([6, 8, 1, 1, 1, 1])
    assert not mixes(np.array([2, 0, 1, 3, 4, 5]), methanol, [0], [6])[0]  # C, O keep order
    assert mixes(np.array([2, 1, 0, 3, 4, 5]), methanol, [0], [6])[0]  # O now before C
    ethane = np.array([6, 6, 1, 1, 1, 1, 1, 1])  # heavy atoms of one element: H moves suffice
    assert mixes(np.array([2, 0, 1, 3, 4, 5, 6, 7]), ethane, [0], [8])[0]
