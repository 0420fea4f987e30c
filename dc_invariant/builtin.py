"""Built-in molecules: the command line's default input, and a large system for scale tests."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["EXAMPLE_MOLECULES", "peptide_box"]

#: Small, well-known molecules (name -> SMILES): quick to embed, spanning the default
#: element vocabulary, with one pair of enantiomers (which an E(3)-invariant model
#: cannot tell apart).
EXAMPLE_MOLECULES: dict[str, str] = {
    "water": "O",
    "ethanol": "CCO",
    "benzene": "c1ccccc1",
    "L-alanine": "C[C@@H](C(=O)O)N",
    "D-alanine": "C[C@H](C(=O)O)N",
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "caffeine": "Cn1c(=O)c2c(ncn2C)n(C)c1=O",
    "ibuprofen": "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "fluoxetine": "CNCCC(c1ccccc1)Oc1ccc(cc1)C(F)(F)F",
    "chloroquine": "CCN(CC)CCCC(C)Nc1ccnc2cc(Cl)ccc12",
}


def peptide_box(n_atoms: int = 5000, *, residues: int = 10, seed: int = 0) -> Any:
    """A large 3D system for scale tests: copies of one poly-alanine peptide on a grid.

    One peptide of ``residues`` alanines (with hydrogens) is embedded by RDKit (ETKDGv3,
    seeded); seeded random rotations of it are placed on a cubic grid, spaced so that no
    two copies come closer than 2 Å, until the system has at least ``n_atoms`` atoms.
    Embedding a whole protein of that size takes RDKit many minutes; this takes about a
    second and has the local structure (bonded neighbours within a cutoff) of one.

    Parameters
    ----------
    n_atoms : int, default=5000
        Lower bound on the number of atoms.
    residues : int, default=10
        Length of the peptide that is copied.
    seed : int, default=0
        Seeds the embedding and the rotations.

    Returns
    -------
    rdkit.Chem.Mol
        One Mol (the copies are separate fragments) with a 3D conformer.

    Examples
    --------
    >>> box = peptide_box(100, residues=2)
    >>> box.GetNumAtoms(), box.GetConformer().Is3D()
    (115, True)
    """
    from rdkit import Chem
    from rdkit.Chem import AllChem

    from dc_invariant.symmetry import random_rotation

    if isinstance(n_atoms, bool) or not isinstance(n_atoms, int) or n_atoms < 1:
        raise ValueError(f"n_atoms must be a positive int, got {n_atoms!r}")
    if isinstance(residues, bool) or not isinstance(residues, int) or residues < 1:
        raise ValueError(f"residues must be a positive int, got {residues!r}")
    peptide = Chem.AddHs(Chem.MolFromSequence("A" * residues))
    params = AllChem.ETKDGv3()
    params.randomSeed = seed + 1  # RDKit treats seed 0 specially
    if AllChem.EmbedMolecule(peptide, params) != 0:
        raise RuntimeError(f"RDKit could not embed poly-alanine with {residues} residues")
    local = peptide.GetConformer().GetPositions()
    local -= local.mean(axis=0)
    spacing = 2 * np.linalg.norm(local, axis=1).max() + 2.0
    copies = -(-n_atoms // peptide.GetNumAtoms())
    side = int(np.ceil(copies ** (1 / 3)))
    rng = np.random.default_rng(seed)
    box = Chem.RWMol()
    blocks = []
    for c in range(copies):
        cell = np.array([c % side, (c // side) % side, c // side**2], dtype=np.float64)
        blocks.append(local @ random_rotation(rng).T + spacing * cell)
        box.InsertMol(peptide)
    box.RemoveAllConformers()  # InsertMol stacked every copy's own conformer at the origin
    conformer = Chem.Conformer(box.GetNumAtoms())
    conformer.SetPositions(np.concatenate(blocks))
    conformer.Set3D(True)
    box.AddConformer(conformer, assignId=True)
    mol = box.GetMol()
    Chem.SanitizeMol(mol)
    return mol
