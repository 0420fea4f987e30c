"""A fitted `KernelModel`'s arrays on its device, and its predictions and forces from them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dc_invariant.models.kernel.inputs import element_counts
from dc_invariant.models.kernel.kernels import AtomSet, atom_sums, sum_gradients
from dc_invariant.models.kernel.projection import Projection
from dc_invariant.models.kernel.representation import FCHL19, atom_vectors
from dc_invariant.models.kernel.solve import with_constant

__all__ = ["TrainedKernel"]


@dataclass
class TrainedKernel:
    """What a prediction needs: offsets, coefficients, projection and training atoms.

    Parameters
    ----------
    representation : FCHL19
    projection : Projection
    train : list of AtomSet
        Training atoms per element, on the device where predictions run.
    offsets : np.ndarray of shape (n_elements, n_tasks), or (n_elements + 1, n_tasks)
        The last row then is a constant per molecule (`solve.dressed_counts`).
    alpha : np.ndarray of shape (n_train, n_tasks)
    sigma : float
    memory_bytes : int
        Budget of each kernel work block.
    """

    representation: FCHL19
    projection: Projection
    train: list[AtomSet]
    offsets: np.ndarray
    alpha: np.ndarray
    sigma: float
    memory_bytes: int

    @property
    def device(self) -> torch.device:
        return self.train[0].vectors.device

    def to_arrays(self, elements: np.ndarray) -> dict[str, np.ndarray]:
        """The arrays to save, as CPU NumPy arrays."""
        arrays = {"elements": elements, "offsets": self.offsets, "alpha": self.alpha}
        if self.projection.floors is not None:
            arrays["floors"] = np.asarray(self.projection.floors)
        for e, atoms in enumerate(self.train):
            arrays[f"mean_{e}"] = self.projection.means[e]
            arrays[f"axes_{e}"] = self.projection.axes[e]
            arrays[f"vectors_{e}"] = atoms.vectors.cpu().numpy()
            arrays[f"molecule_{e}"] = atoms.molecule
            if atoms.weight is not None:
                arrays[f"weight_{e}"] = atoms.weight
        return arrays

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        representation: FCHL19,
        sigma: float,
        memory_bytes: int,
        device: torch.device,
    ) -> TrainedKernel:
        """The inverse of `to_arrays`, with the training atoms moved to ``device``."""
        n = len(arrays["elements"])
        projection = Projection(
            [arrays[f"mean_{e}"] for e in range(n)],
            [arrays[f"axes_{e}"] for e in range(n)],
            None if "floors" not in arrays else arrays["floors"].tolist(),  # saved before
        )
        train = [
            AtomSet(
                torch.as_tensor(arrays[f"vectors_{e}"], device=device),
                arrays[f"molecule_{e}"],
                arrays.get(f"weight_{e}"),
            )
            for e in range(n)
        ]
        return cls(
            representation, projection, train, arrays["offsets"], arrays["alpha"], sigma,
            memory_bytes,
        )  # fmt: skip

    def energies(self, positions: np.ndarray, index: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Predictions of stacked molecules, shape (n_molecules, n_tasks)."""
        n_elements = len(self.train)
        molecule = np.repeat(np.arange(len(counts)), counts)
        vectors = atom_vectors(
            self.representation, positions, index, counts, n_elements, self.device
        )
        sets = self.projection.atom_sets(vectors, index, molecule)
        del vectors
        basis = with_constant(element_counts(index, molecule, len(counts), n_elements),
                              len(self.offsets))  # fmt: skip
        out = basis @ self.offsets
        for atoms, train in zip(sets, self.train):
            if len(atoms.molecule) == 0:
                continue
            per_atom = atom_sums(
                atoms, train, _coefficients(self.alpha, train), self.sigma, self.memory_bytes
            )
            for t in range(out.shape[1]):
                out[:, t] += np.bincount(atoms.molecule, per_atom[:, t], minlength=len(counts))
        return out

    def forces(
        self, positions: np.ndarray, index: np.ndarray, counts: np.ndarray, task: int
    ) -> np.ndarray:
        """``-dE_task/dR`` of stacked molecules, shape (n_total, 3): kernel gradients in
        closed form, chained through FCHL19 by autograd on the device."""
        coords = torch.tensor(positions, dtype=torch.float64, device=self.device)
        coords.requires_grad_(True)
        vectors = self.representation(coords, index, counts, len(self.train))
        alpha = self.alpha[:, task]
        surrogate = coords.new_zeros(())
        for e, train in enumerate(self.train):
            mask = index == e
            if not mask.any():
                continue
            projected = self.projection.project(
                vectors[torch.as_tensor(mask, device=self.device)], e
            )
            atoms = AtomSet(projected.detach(), np.zeros(int(mask.sum()), np.int64))
            gradient = sum_gradients(
                atoms, train, _coefficients(alpha, train), self.sigma, self.memory_bytes
            )
            surrogate = surrogate + (projected * gradient).sum()
        if not surrogate.requires_grad:
            return np.zeros_like(positions)
        (grad,) = torch.autograd.grad(surrogate, coords)
        return -grad.cpu().numpy()


def _coefficients(alpha: np.ndarray, train: AtomSet) -> np.ndarray:
    """Each training atom's coefficient: its molecule's, times the atom's weight."""
    out = alpha[train.molecule]
    if train.weight is None:
        return out
    return out * (train.weight if out.ndim == 1 else train.weight[:, None])
