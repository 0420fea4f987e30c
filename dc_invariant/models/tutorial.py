"""The tutorial's four networks as trainable DeepChem models (the networks themselves are in
`tutorial_networks`). The dense baseline needs a fixed input size, so it alone pads every
molecule to ``n_atoms``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dc_invariant.models.base import Batch, InvariantModel
from dc_invariant.models.settings import DenseSettings, PairSettings, TutorialSettings
from dc_invariant.models.tutorial_networks import (
    DenseNetwork,
    PermutationNetwork,
    RotationNetwork,
    TranslationNetwork,
)
from dc_invariant.molecules import Molecules, segment_arange
from dc_invariant.neighbors import stacked_neighbor_pairs
from dc_invariant.reference import Weights

__all__ = [
    "DENSE_PAIR_ATOMS",
    "DenseModel",
    "PermutationInvariantModel",
    "RotationInvariantModel",
    "TranslationInvariantModel",
]

#: With a cutoff, molecules above this many atoms use neighbour lists; smaller ones use the
#: dense pair tensor (masked by the envelope), which is faster at this size (see
#: benchmarks/scaling.py for the crossover).
DENSE_PAIR_ATOMS = 64


class _TutorialModel(InvariantModel):
    settings_class = TutorialSettings
    # Their kernels' scratch is allocated per call, and the in-place kernel choice is made
    # once under a lock (`elementwise`).
    thread_safe = True

    def make_batch(self, molecules: Molecules) -> Batch:
        return Batch(
            [molecules.positions, molecules.features, molecules.counts],
            molecules.counts,
            padded=False,
        )

    def load_reference_weights(self, weights: Weights) -> None:
        """Copy weights of the matching `dc_invariant.reference` function into this model.

        Only for single-task regression, where the reference's ``w2`` (hidden,) and scalar
        ``b2`` fit the output layer, with the reference's tanh and no cutoff: otherwise the
        weights would load into a different function.
        """
        if self.n_tasks != 1 or self.mode != "regression":
            raise ValueError("reference weights fit single-task regression models only")
        changed = [
            f"{name}={getattr(self.settings, name)!r}"
            for name, reference in (("activation", "tanh"), ("cutoff", None))
            if getattr(self.settings, name, reference) != reference
        ]
        if changed:
            raise ValueError(
                f"the reference computes with activation='tanh' and no cutoff; this model has "
                f"{', '.join(changed)}, so its outputs would not be the reference's"
            )
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

    settings_class = DenseSettings

    def _n_atoms_limit(self) -> int:
        return self.settings.n_atoms

    def build_network(self, settings: DenseSettings) -> torch.nn.Module:
        return DenseNetwork(
            settings.n_atoms,
            settings.n_features,
            settings.hidden,
            settings.n_outputs,
            settings.activation,
        )

    def make_batch(self, molecules: Molecules) -> Batch:
        positions, features, mask = molecules.padded(self.settings.n_atoms)
        return Batch([positions, features, mask], molecules.counts)


class PermutationInvariantModel(_TutorialModel):
    """Per-atom network with sum pooling: invariant to atom order only.

    Parameters as in `RotationInvariantModel`.
    """

    def build_network(self, settings: TutorialSettings) -> torch.nn.Module:
        return PermutationNetwork(
            settings.n_features, settings.hidden, settings.n_outputs, settings.activation
        )


class _PairModel(_TutorialModel):
    settings_class = PairSettings
    network_class: type

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.settings.cutoff is None:
            # Every pair is then evaluated densely in bounded pieces, so a batch holds only
            # per-atom arrays (~100 bytes an atom): larger batches cost no memory and leave
            # fewer, fuller groups of equal-sized molecules (10% faster on 10,000 QM9
            # molecules). With a cutoff, large molecules' pair lists grow with the batch.
            self.predict_batch_atoms = 262_144

    def build_network(self, settings: PairSettings) -> torch.nn.Module:
        return self.network_class(
            settings.n_features,
            settings.hidden,
            settings.n_outputs,
            settings.activation,
            settings.cutoff,
        )

    def make_batch(self, molecules: Molecules) -> Batch:
        # The full-QM9 audit found a molecule whose float32 prediction moved by 2.6e-4
        # (relative) 1,000 Å from the origin before pair models were centred.
        inputs: list[Any] = [
            molecules.centred_positions(),
            molecules.features,
            molecules.counts,
        ]
        if self.settings.cutoff is not None:
            inputs += list(_neighbor_inputs(molecules, self.settings.cutoff))
        return Batch(inputs, molecules.counts, padded=False)


def _neighbor_inputs(molecules: Molecules, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Pair list of the molecules above `DENSE_PAIR_ATOMS` atoms, and which those are.

    Each atom's pair with itself is included, as in the dense sum (its envelope is 1).
    """
    sparse = molecules.counts > DENSE_PAIR_ATOMS
    chosen = np.flatnonzero(sparse)
    close = stacked_neighbor_pairs(molecules.positions, molecules.counts, cutoff, molecules=chosen)
    atoms = segment_arange(molecules.starts[chosen], molecules.counts[chosen])
    return np.concatenate([close, np.stack([atoms, atoms])], axis=1), sparse


class TranslationInvariantModel(_PairModel):
    """Pair network on difference vectors: invariant to atom order and translations.

    Parameters (``cutoff`` included) as in `RotationInvariantModel`.
    """

    network_class = TranslationNetwork


class RotationInvariantModel(_PairModel):
    """Pair network on squared distances: invariant to atom order, translations, rotations
    and reflections (so blind to mirror images).

    For molecule ``m`` with atoms ``i, j`` (all ordered pairs, ``i == j`` included, as in the
    tutorial): ``y = W2 · Σ_ij act(W1 [|r_j - r_i|², x_j] + b1) + b2``.

    With a ``cutoff`` each pair's term is weighted by the envelope
    ``f(d) = (1 - d²/cutoff²)²`` (zero beyond the cutoff, smooth, 1 for ``i == j``), and
    molecules above `DENSE_PAIR_ATOMS` atoms sum over neighbour lists, so time and memory
    grow with the pairs inside the cutoff (about linearly in n_atoms) instead of n_atoms².
    That is a different function from the tutorial's; without a cutoff the model is exactly
    the tutorial's network.

    Parameters
    ----------
    hidden : int, default=16
        Hidden units.
    activation : {"tanh", "relu", "silu", "softplus"}, default="tanh"
    cutoff : float or None, default=None
        Pair cutoff in Å (see above); None sums over all pairs.
    n_tasks, n_features, mode, n_classes, dtype, seed
        As every model has them: see `ModelSettings`.
    **kwargs
        Passed to DeepChem's ``TorchModel`` (``batch_size``, ``learning_rate``,
        ``model_dir``, ``device``, ...); unknown names raise ``TypeError``.

    Examples
    --------
    >>> import numpy as np
    >>> from dc_invariant import Conformer
    >>> model = RotationInvariantModel(n_features=2)
    >>> water = Conformer(np.eye(3), np.array([[0, 1], [1, 0], [1, 0]]), [8, 1, 1])
    >>> model.predict_on_batch(np.array([water])).shape
    (1, 1)
    """

    network_class = RotationNetwork
