"""The tutorial's four networks as trainable DeepChem models.

Each network computes exactly what its `dc_invariant.reference` twin computes, for a whole
batch at once. The invariant three work on the batch's atoms stacked together (and, for the
pair networks, on the list of every molecule's atom pairs), so no padding ever enters a sum
and a molecule's prediction does not depend on what it is batched with. The dense baseline
needs a fixed input size, so it alone pads every molecule to ``n_atoms``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from dc_invariant.conformer import pad_batch
from dc_invariant.models.base import (
    Batch,
    InvariantModel,
    Stacked,
    activation,
    check_hyperparameters,
)
from dc_invariant.neighbors import all_pairs
from dc_invariant.reference import Weights


class _TwoLayer(torch.nn.Module):
    """Shared head: ``layer2(pool(act(layer1(inputs))))`` with the tutorial's shapes."""

    def __init__(self, n_inputs: int, hidden: int, n_outputs: int, act: str) -> None:
        super().__init__()
        self.layer1 = torch.nn.Linear(n_inputs, hidden)
        self.layer2 = torch.nn.Linear(hidden, n_outputs)
        self.act = activation(act)


class DenseNetwork(_TwoLayer):
    """All atoms' ``[r, x]`` flattened into one input vector of a fixed size."""

    def __init__(self, n_atoms: int, n_features: int, hidden: int, n_outputs: int, act: str):
        super().__init__(n_atoms * (3 + n_features), hidden, n_outputs, act)

    def forward(self, positions: torch.Tensor, features: torch.Tensor, mask: torch.Tensor):
        inputs = torch.cat([positions, features], dim=-1).flatten(1)
        return self.layer2(self.act(self.layer1(inputs)))


def _pool(values: torch.Tensor, molecule: torch.Tensor, n_molecules: int) -> torch.Tensor:
    """Sum rows of ``values`` into their molecules: (n_rows, H) -> (n_molecules, H)."""
    pooled = torch.zeros(n_molecules, values.shape[1], dtype=values.dtype, device=values.device)
    return pooled.index_add_(0, molecule, values)


def _molecule_of_atoms(counts: torch.Tensor) -> torch.Tensor:
    return torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)


class PermutationNetwork(_TwoLayer):
    """Per-atom hidden layer on ``[r_i, x_i]``, summed over each molecule's atoms."""

    def __init__(self, n_features: int, hidden: int, n_outputs: int, act: str):
        super().__init__(3 + n_features, hidden, n_outputs, act)

    def forward(self, positions: torch.Tensor, features: torch.Tensor, counts: torch.Tensor):
        hidden = self.act(self.layer1(torch.cat([positions, features], dim=-1)))
        return self.layer2(_pool(hidden, _molecule_of_atoms(counts), len(counts)))


class _PairNetwork(_TwoLayer):
    """Per-pair hidden layer on ``[g(r_j - r_i), x_j]``, summed over each molecule's pairs."""

    geometry_width: ClassVar[int]

    def __init__(self, n_features: int, hidden: int, n_outputs: int, act: str):
        super().__init__(self.geometry_width + n_features, hidden, n_outputs, act)

    def pair_geometry(self, differences: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self,
        positions: torch.Tensor,
        features: torch.Tensor,
        counts: torch.Tensor,
        pairs: torch.Tensor,
    ):
        i, j = pairs[0], pairs[1]
        geometry = self.pair_geometry(positions[j] - positions[i])
        w = self.layer1.weight  # (hidden, geometry_width + F)
        # Linear([g_ij, x_j]) = g_ij W_g + x_j W_x + b: the x_j part is computed once per atom
        # instead of once per pair.
        per_atom = features @ w[:, self.geometry_width :].T
        pre = geometry @ w[:, : self.geometry_width].T + per_atom[j] + self.layer1.bias
        molecule = _molecule_of_atoms(counts)[i]
        return self.layer2(_pool(self.act(pre), molecule, len(counts)))


class TranslationNetwork(_PairNetwork):
    """Pairs see difference vectors ``r_j - r_i``: permutation and translation invariant."""

    geometry_width = 3

    def pair_geometry(self, differences: torch.Tensor) -> torch.Tensor:
        return differences


class RotationNetwork(_PairNetwork):
    """Pairs see squared distances ``|r_j - r_i|²``: invariant to all of E(3)."""

    geometry_width = 1

    def pair_geometry(self, differences: torch.Tensor) -> torch.Tensor:
        return (differences**2).sum(dim=-1, keepdim=True)


class _TutorialModel(InvariantModel):
    def __init__(
        self,
        *,
        n_tasks: int = 1,
        n_features: int = 11,
        hidden: int = 16,
        activation: str = "tanh",
        mode: str = "regression",
        n_classes: int = 2,
        dtype: str = "float32",
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        hyperparameters = {
            "n_tasks": n_tasks,
            "n_features": n_features,
            "hidden": hidden,
            "activation": activation,
            "mode": mode,
            "n_classes": n_classes,
            "dtype": dtype,
            "seed": seed,
        }
        hyperparameters.update(self._extra_hyperparameters(kwargs))
        check_hyperparameters(hyperparameters)
        n_outputs = n_tasks * (n_classes if mode == "classification" else 1)
        with torch.random.fork_rng(devices=[]):
            # Seed only this network's initial weights; the global torch state is untouched.
            torch.manual_seed(seed)
            network = self._network(hyperparameters, n_outputs)
        super().__init__(network, hyperparameters=hyperparameters, torch_kwargs=kwargs)

    def _extra_hyperparameters(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _network(self, h: dict[str, Any], n_outputs: int) -> torch.nn.Module:
        raise NotImplementedError

    def _make_batch(self, stacked: Stacked) -> Batch:
        return Batch(
            [stacked.positions, stacked.features, stacked.counts], stacked.counts, padded=False
        )

    def load_reference_weights(self, weights: Weights) -> None:
        """Copy weights of the matching `dc_invariant.reference` function into this model.

        Only for single-task regression, where the reference's ``w2`` (hidden,) and scalar
        ``b2`` fit the output layer.
        """
        if self.n_tasks != 1 or self.mode != "regression":
            raise ValueError("reference weights fit single-task regression models only")
        self._ensure_built()
        network = self.model.network
        values = {
            "layer1.weight": np.asarray(weights.w1).T,
            "layer1.bias": np.asarray(weights.b1),
            "layer2.weight": np.asarray(weights.w2).reshape(1, -1),
            "layer2.bias": np.array([weights.b2]),
        }
        state = network.state_dict()
        for name, value in values.items():
            if tuple(state[name].shape) != value.shape:
                raise ValueError(
                    f"{name} has shape {tuple(state[name].shape)} in this model but the "
                    f"reference weights give {value.shape}"
                )
            state[name] = torch.as_tensor(value, dtype=self.dtype)
        network.load_state_dict(state)


class DenseModel(_TutorialModel):
    """The tutorial's dense baseline: no invariance at all.

    All atoms' coordinates and features are flattened into one vector, so the model is
    defined for a fixed atom count ``n_atoms``; smaller molecules are zero-padded to it and a
    larger one is a ``ValueError``.

    Parameters
    ----------
    n_atoms : int, default=29
        Input size in atoms (29 covers QM9 with hydrogens).
    n_tasks, n_features, hidden, activation, mode, n_classes, dtype, seed
        As in `RotationInvariantModel`.
    **kwargs
        Passed to DeepChem's ``TorchModel`` (``batch_size``, ``learning_rate``,
        ``model_dir``, ...); unknown names raise ``TypeError``.
    """

    def __init__(self, *, n_atoms: int = 29, **kwargs: Any) -> None:
        self._n_atoms = n_atoms
        super().__init__(**kwargs)

    def _extra_hyperparameters(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(self._n_atoms, (int, np.integer)) or self._n_atoms < 1:
            raise ValueError(f"n_atoms must be a positive int, got {self._n_atoms!r}")
        return {"n_atoms": int(self._n_atoms)}

    def _n_atoms_limit(self) -> int:
        return self._n_atoms

    def _network(self, h: dict[str, Any], n_outputs: int) -> torch.nn.Module:
        return DenseNetwork(h["n_atoms"], h["n_features"], h["hidden"], n_outputs, h["activation"])

    def _make_batch(self, stacked: Stacked) -> Batch:
        positions, features, mask = pad_batch(stacked.conformers, n_max=self._n_atoms)
        return Batch([positions, features, mask], stacked.counts)


class PermutationInvariantModel(_TutorialModel):
    """Per-atom network with sum pooling: invariant to atom order only.

    Parameters as in `RotationInvariantModel`.
    """

    def _network(self, h: dict[str, Any], n_outputs: int) -> torch.nn.Module:
        return PermutationNetwork(h["n_features"], h["hidden"], n_outputs, h["activation"])


class _PairModel(_TutorialModel):
    def _make_batch(self, stacked: Stacked) -> Batch:
        inputs = [stacked.positions, stacked.features, stacked.counts, all_pairs(stacked.counts)]
        return Batch(inputs, stacked.counts, padded=False)


class TranslationInvariantModel(_PairModel):
    """Pair network on difference vectors: invariant to atom order and translations.

    Parameters as in `RotationInvariantModel`.
    """

    def _network(self, h: dict[str, Any], n_outputs: int) -> torch.nn.Module:
        return TranslationNetwork(h["n_features"], h["hidden"], n_outputs, h["activation"])


class RotationInvariantModel(_PairModel):
    """Pair network on squared distances: invariant to atom order, translations, rotations
    and reflections (so blind to mirror images).

    For molecule ``m`` with atoms ``i, j`` (all ordered pairs, ``i == j`` included, as in the
    tutorial): ``y = W2 · Σ_ij act(W1 [|r_j - r_i|², x_j] + b1) + b2``.

    Parameters
    ----------
    n_tasks : int, default=1
        Outputs per molecule.
    n_features : int, default=11
        Width of the atom features (``ConformerFeaturizer().n_features`` is 11).
    hidden : int, default=16
        Hidden units.
    activation : {"tanh", "relu", "silu", "softplus"}, default="tanh"
    mode : {"regression", "classification"}, default="regression"
    n_classes : int, default=2
        Classes per task in classification mode.
    dtype : {"float32", "float64"}, default="float32"
    seed : int, default=0
        Seeds the initial weights and the training order.
    **kwargs
        Passed to DeepChem's ``TorchModel`` (``batch_size``, ``learning_rate``,
        ``model_dir``, ...); unknown names raise ``TypeError``.

    Examples
    --------
    >>> import numpy as np
    >>> from dc_invariant import Conformer
    >>> model = RotationInvariantModel(n_features=2)
    >>> water = Conformer(np.eye(3), np.array([[0, 1], [1, 0], [1, 0]]), [8, 1, 1])
    >>> model.predict_on_batch(np.array([water])).shape
    (1, 1)
    """

    def _network(self, h: dict[str, Any], n_outputs: int) -> torch.nn.Module:
        return RotationNetwork(h["n_features"], h["hidden"], n_outputs, h["activation"])
