"""What ConformerFeaturizer is asked for, checked once and frozen (FeaturizerSettings)."""

import dataclasses

import numpy as np
import pytest

from dc_invariant import ConformerFeaturizer
from dc_invariant.featurizer_settings import HYBRIDIZATIONS, FeaturizerSettings


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"elements": ("C", "Xx")}, ValueError, r"unknown element symbol\(s\) \['Xx'\]"),
        ({"elements": "CH"}, TypeError, "elements must be a list of str, got the str 'CH'"),
        ({"elements": ("C", "C")}, ValueError, "lists a symbol twice"),
        ({"elements": (), "other_element": False}, ValueError, "no atom could be encoded"),
        ({"other_element": "yes"}, TypeError, "other_element must be True or False, got 'yes'"),
        ({"atom_properties": ("charge",)}, ValueError, "atom_properties must be distinct names"),
        ({"atom_properties": "aromatic"}, TypeError, "atom_properties must be a list of str"),
        ({"n_conformers": 0}, ValueError, "n_conformers == 0, must be >= 1"),
        ({"n_conformers": 2.0}, TypeError, "n_conformers must be an instance of int"),
        ({"random_seed": -1}, ValueError, "random_seed == -1, must be >= 0"),
        ({"max_attempts": True}, TypeError, "max_attempts must be an int, not True"),
        (
            {"force_field": "mmff94"},
            ValueError,
            r"force_field must be one of \[None, 'MMFF', 'UFF'\]",
        ),
        ({"n_jobs": 0}, ValueError, "n_jobs must be a non-zero int"),
        ({"n_jobs": "2"}, TypeError, "n_jobs must be a non-zero int"),
        ({"progress": 1}, TypeError, "progress must be True, False or None"),
        ({"use_original_atoms_order": None}, TypeError, "use_original_atoms_order must be True"),
    ],
)
def test_bad_configuration_fails_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        ConformerFeaturizer(**kwargs)


def test_feature_names_and_element_columns_follow_the_settings():
    settings = FeaturizerSettings(
        elements=("C", "O"), atom_properties=("aromatic", "hybridization")
    )
    names = settings.feature_names
    assert names[:4] == ["element=C", "element=O", "element=other", "aromatic"]
    assert names[4:] == [f"hybridization={h}" for h in HYBRIDIZATIONS]
    table = settings.column_of_element()
    assert (table[6], table[8], table[1], table[17]) == (0, 1, 2, 2)  # H and Cl: other
    closed = FeaturizerSettings(elements=("C", "O"), other_element=False).column_of_element()
    assert closed[1] == -1 and closed[8] == 1


def test_settings_are_frozen_and_normalised():
    settings = FeaturizerSettings(elements=["C", "H"], n_conformers=np.int64(2))
    assert settings.elements == ("C", "H") and type(settings.n_conformers) is int
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.random_seed = 3
