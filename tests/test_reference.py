import numpy as np
import pytest

from dc_invariant import reference
from dc_invariant.reference import (
    NETWORKS,
    TUTORIAL_TABLES,
    init_weights,
    n_inputs,
    tutorial_case,
    tutorial_tables,
)
from dc_invariant.symmetry import random_reflection, random_rotation


@pytest.mark.parametrize("name", list(NETWORKS))
def test_reproduces_every_number_the_tutorial_prints(name):
    np.testing.assert_allclose(tutorial_tables()[name], TUTORIAL_TABLES[name], rtol=1e-9, atol=0)


def test_tutorial_tables_reach_the_tutorials_conclusions():
    tables = tutorial_tables()

    def unchanged(name: str, column: int) -> bool:
        return bool(np.isclose(tables[name][column], tables[name][0], rtol=1e-12))

    assert not any(unchanged("dense", k) for k in (1, 2, 3))
    assert [unchanged("permutation", k) for k in (1, 2, 3)] == [True, False, False]
    assert [unchanged("translation", k) for k in (1, 2, 3)] == [True, True, False]
    assert all(unchanged("rotation", k) for k in (1, 2, 3))


def test_tutorial_permutation_swaps_two_carbons():
    case = tutorial_case()
    assert case.x[0].tolist() == case.x[1].tolist() == [1.0, 0.0]
    np.testing.assert_array_equal(case.permuted[[1, 0]], case.r[[0, 1]])


@pytest.mark.parametrize("seed", range(3))
def test_invariances_hold_for_random_elements_of_the_group(seed):
    rng = np.random.default_rng(seed)
    case = tutorial_case()
    r, x = case.r, case.x
    order = rng.permutation(12)
    while (x[order] == x).all():  # a carbon must trade places with a hydrogen
        order = rng.permutation(12)
    rotation, mirror, shift = random_rotation(rng), random_reflection(rng), rng.normal(size=3) * 50
    for name, net in NETWORKS.items():
        w = init_weights(name, n_features=2, n_atoms=12, seed=seed)
        y = net(r, x, *w)
        results = {
            "permutation": net(r[order], x[order], *w),
            "translation": net(r + shift, x, *w),
            "rotation": net(r @ rotation.T, x, *w),
            "reflection": net(r @ mirror.T, x, *w),
        }
        expected = {
            "dense": set(),
            "permutation": {"permutation"},
            "translation": {"permutation", "translation"},
            "rotation": {"permutation", "translation", "rotation", "reflection"},
        }[name]
        for symmetry, value in results.items():
            holds = np.isclose(value, y, rtol=1e-9, atol=0)
            assert holds == (symmetry in expected), (name, symmetry, value, y)


def test_seeded_initialiser_is_deterministic_and_shaped():
    a = init_weights("translation", n_features=4, seed=3, hidden=8)
    b = init_weights("translation", n_features=4, seed=3, hidden=8)
    assert a.w1.shape == (7, 8) and a.w2.shape == (8,) and a.b1.shape == (8,)
    np.testing.assert_array_equal(a.w1, b.w1)
    assert a.b2 == b.b2
    assert not np.array_equal(a.w1, init_weights("translation", n_features=4, seed=4, hidden=8).w1)
    assert n_inputs("rotation", 2) == 3 and n_inputs("dense", 2, n_atoms=12) == 60


@pytest.mark.parametrize(
    ("args", "match"),
    [(("spherical", 2), "network must be one of"), (("dense", 2), "needs n_atoms")],
)
def test_n_inputs_errors(args, match):
    with pytest.raises(ValueError, match=match):
        n_inputs(*args)


def test_module_documents_that_squared_distances_discard_direction():
    doc = reference.__doc__
    assert "keep no directional information" in doc and "enantiomers" in doc
