"""Helpers shared by the KernelModel tests."""

import numpy as np


def numeric_forces(model, conformer, h: float = 1e-5) -> np.ndarray:
    """``-dE/dR`` of ``conformer`` by central differences of ``model.predict_arrays``."""
    numeric = np.zeros_like(conformer.positions)
    for atom in range(conformer.n_atoms):
        for axis in range(3):
            energies = []
            for step in (h, -h):
                r = conformer.positions.copy()
                r[atom, axis] += step
                energies.append(
                    model.predict_arrays(
                        r, conformer.features, conformer.atomic_numbers, [conformer.n_atoms]
                    )
                )
            numeric[atom, axis] = -(energies[0] - energies[1])[0, 0] / (2 * h)
    return numeric
