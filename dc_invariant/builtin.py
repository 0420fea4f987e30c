"""Built-in example molecules: the default input of the command line's main job."""

from __future__ import annotations

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
