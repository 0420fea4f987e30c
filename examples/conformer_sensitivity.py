"""Conformer sensitivity
=====================

Which molecules' predictions depend on the embedded conformer, and by how much.

Run ``python examples/conformer_sensitivity.py`` (``--small`` for a quick run). Each
molecule is embedded with several seeds; the spread of a target's output over those
geometries is what a single-conformer prediction inherits from the embedding alone. Two
targets: the radius of gyration (large for flexible chains, near zero for rigid rings) and an
untrained `RotationInvariantModel`.
"""

from __future__ import annotations

import argparse
from typing import Optional

import numpy as np

from dc_invariant import RotationInvariantModel, conformer_sensitivity
from dc_invariant.builtin import EXAMPLE_MOLECULES


def radius_of_gyration(positions: np.ndarray, features: np.ndarray) -> float:
    """Root-mean-square distance of the atoms from their centroid (Å)."""
    centred = positions - positions.mean(axis=0)
    return float(np.sqrt((centred**2).sum(axis=1).mean()))


def main(argv: Optional[list[str]] = None) -> int:
    """Measure both targets' spread and print the reports."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--small", action="store_true", help="3 conformers per molecule")
    parser.add_argument("--conformers", type=int, default=8)
    parser.add_argument("--plot", action="store_true", help="draw the spread per molecule")
    args = parser.parse_args(argv)
    k = 3 if args.small else args.conformers
    smiles = list(EXAMPLE_MOLECULES.values())
    names = dict(zip(smiles, EXAMPLE_MOLECULES))

    shape = conformer_sensitivity(radius_of_gyration, smiles, n_conformers=k, seed=0)
    print("radius of gyration (Å) over re-embedded conformers")
    print(shape.format())
    table = shape.molecules.assign(name=shape.molecules["id"].map(names))
    print(table[["name", "n_atoms", "mean", "range"]].round(3).to_string(index=False))
    rigid = table.set_index("name").loc[["benzene", "caffeine"], "range"].max()
    flexible = table.set_index("name").loc[["fluoxetine", "chloroquine"], "range"].min()
    print(f"flexible molecules spread more than rigid ones: {bool(flexible > rigid)}")

    model = conformer_sensitivity(RotationInvariantModel(seed=0), smiles, n_conformers=k)
    print("\nRotationInvariantModel (untrained) over the same conformers")
    print(model.format())
    if args.plot:
        plot(table)
    return 0


def plot(table) -> None:
    """The range of the radius of gyration over the conformers, per molecule."""
    import matplotlib.pyplot as plt

    table = table.sort_values("range")
    _, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
    ax.barh(table["name"], table["range"], color="#3f51b5")
    ax.set_xlabel("range of the radius of gyration over the conformers (Å)")
    ax.set_title("How much each molecule's shape depends on the embedding seed")
    plt.show()


if __name__ == "__main__":
    # Exit only on failure, so that a documentation build can run the file too.
    if status := main():
        raise SystemExit(status)
