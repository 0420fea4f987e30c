"""Elements a trained model knows: molecules holding others are named with the reason."""

import numpy as np

from dc_invariant import Conformer
from dc_invariant.models.elements import as_molecules, element_symbol, unsupported
from dc_invariant.molecules import Molecules


def _molecule(*atomic_numbers: int) -> Conformer:
    n = len(atomic_numbers)
    return Conformer(np.arange(3.0 * n).reshape(n, 3), np.ones((n, 1)), list(atomic_numbers))


def test_molecules_with_elements_outside_the_set_are_named_with_each_element():
    stack = Molecules.from_conformers(
        [_molecule(6, 1, 1), _molecule(11, 17), _molecule(8, 1, 16), _molecule(1)]
    )
    assert unsupported(stack, np.array([1, 6, 8])) == {
        1: "elements Na (Z=11), Cl (Z=17) not in the training set",
        2: "element S (Z=16) not in the training set",
    }
    assert unsupported(stack, np.array([1, 6, 8, 11, 16, 17])) == {}


def test_element_symbols_come_from_the_periodic_table():
    assert [element_symbol(z) for z in (1, 6, 92, 118)] == ["H", "C", "U", "Og"]
    assert element_symbol(0) == "Z0" and element_symbol(200) == "Z200"


def test_what_a_model_predicts_on_is_stacked_for_the_check(dc):
    import pytest

    molecules = [_molecule(6, 1), _molecule(8, 1, 1)]
    stacked = Molecules.from_conformers(molecules)
    for given in (stacked, molecules, np.array(molecules), dc.data.NumpyDataset(molecules)):
        again = as_molecules(given)
        assert again.counts.tolist() == [2, 3]
        assert again.atomic_numbers.tolist() == stacked.atomic_numbers.tolist()
    assert as_molecules(molecules[1]).counts.tolist() == [3]
    with pytest.raises(TypeError, match="got ndarray"):
        as_molecules([molecules[0], np.zeros(0)])  # a featurizer's failure
