"""The tutorial's four tables, reproduced
======================================

Reproduce the tutorial's four tables with dc_invariant.reference, then with torch models.

Each network is shown the tutorial's molecule unchanged, with two atoms swapped, shifted by
(3, 3, 3) and turned 60° about x. The NumPy reference reproduces the printed numbers; the
float64 DeepChem models, given the same weights, reproduce the reference.

Run ``python examples/tutorial_tables.py``.
"""

from __future__ import annotations

import argparse
from typing import Optional

import numpy as np

from dc_invariant import Conformer
from dc_invariant.models import (
    DenseModel,
    PermutationInvariantModel,
    RotationInvariantModel,
    TranslationInvariantModel,
)
from dc_invariant.reference import TUTORIAL_TABLES, tutorial_case, tutorial_tables

COLUMNS = ("without change", "after permutation", "after translation", "after rotation")


def main(argv: Optional[list[str]] = None) -> int:
    """Print the reproduced tables; return 1 if any number differs from the tutorial."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--small", action="store_true", help="accepted for uniformity; as fast")
    parser.add_argument("--plot", action="store_true", help="draw the four tables")
    args = parser.parse_args(argv)

    case = tutorial_case()
    models = {
        "dense": DenseModel(n_atoms=12, n_features=2, dtype="float64"),
        "permutation": PermutationInvariantModel(n_features=2, dtype="float64"),
        "translation": TranslationInvariantModel(n_features=2, dtype="float64"),
        "rotation": RotationInvariantModel(n_features=2, dtype="float64"),
    }
    numbers = np.array([6] * 4 + [1] * 8)
    molecules = np.array(
        [
            Conformer(r, case.x, numbers)
            for r in (case.r, case.permuted, case.translated, case.rotated)
        ]
    )
    worst_reference = worst_model = 0.0
    for name, row in tutorial_tables().items():
        printed = np.array(TUTORIAL_TABLES[name])
        models[name].load_reference_weights(case.weights[name])
        torch_row = models[name].predict_on_batch(molecules)[:, 0]
        worst_reference = max(
            worst_reference, float(np.max(np.abs(row - printed) / np.abs(printed)))
        )
        worst_model = max(worst_model, float(np.max(np.abs(torch_row - row) / np.abs(row))))
        print(f"{name} network")
        for column, value, value_torch in zip(COLUMNS, row, torch_row):
            print(f"  {column:<18} {value:22.15f}   torch {value_torch:22.15f}")
    print(f"\nlargest relative difference, reference vs tutorial: {worst_reference:.1e}")
    print(f"largest relative difference, torch float64 vs reference: {worst_model:.1e}")
    ok = worst_reference <= 1e-9 and worst_model <= 1e-10
    print("tutorial reproduced" if ok else "MISMATCH")
    if args.plot:
        plot(tutorial_tables())
    return 0 if ok else 1


def plot(tables: dict[str, tuple[float, float, float, float]]) -> None:
    """One panel per network: its output for the molecule unchanged and moved three ways.

    Equal bars in a panel are an invariance; a bar that differs is a broken symmetry.
    """
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 4, figsize=(12, 3), layout="constrained")
    labels = ("unchanged", "permuted", "translated", "rotated")
    for ax, (name, row) in zip(axes, tables.items()):
        colors = ["#3f51b5" if np.isclose(v, row[0], rtol=1e-9) else "#b00020" for v in row]
        ax.bar(labels, row, color=colors)
        ax.set_title(f"{name} network")
        ax.tick_params(axis="x", labelrotation=45)
        ax.axhline(0, color="#444", linewidth=0.5)
    axes[0].set_ylabel("network output")
    figure.suptitle("Blue: same output as the unchanged molecule; red: changed")
    plt.show()


if __name__ == "__main__":
    # Exit only on failure, so that a documentation build can run the file too.
    if status := main():
        raise SystemExit(status)
