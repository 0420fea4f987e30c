"""Built-in molecules: the command line's examples and the large peptide box."""

import numpy as np
import pytest
from rdkit import Chem

from dc_invariant.builtin import EXAMPLE_MOLECULES, peptide_box
from dc_invariant.neighbors import neighbor_pairs


def test_peptide_box_is_a_sane_large_system():
    mol = peptide_box(5000)
    positions = mol.GetConformer().GetPositions()
    assert 5000 <= mol.GetNumAtoms() < 5200
    assert len(neighbor_pairs(positions, 0.9)[0]) == 0  # no two atoms on top of each other
    # Copies are separate fragments, and the box is three-dimensional.
    from rdkit import Chem

    assert len(Chem.GetMolFrags(mol)) == mol.GetNumAtoms() // 103
    assert (np.ptp(positions, axis=0) > 50).all()
    np.testing.assert_array_equal(positions, peptide_box(5000).GetConformer().GetPositions())
    with pytest.raises(ValueError, match="n_atoms must be a positive int"):
        peptide_box(0)


def test_example_molecules_parse_and_include_a_pair_of_enantiomers():
    canonical = {name: Chem.CanonSmiles(smiles) for name, smiles in EXAMPLE_MOLECULES.items()}
    assert len(set(canonical.values())) == len(canonical)  # no molecule twice
    flat = {Chem.CanonSmiles(s, useChiral=0) for s in EXAMPLE_MOLECULES.values()}
    assert len(flat) < len(canonical)  # two differ only in their handedness
