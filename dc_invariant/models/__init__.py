"""Trainable invariant models: DeepChem ``TorchModel``s over datasets of `Conformer`s."""

from dc_invariant.models.base import InvariantModel, load_model
from dc_invariant.models.kernel import KernelModel
from dc_invariant.models.schnet import SchNetModel
from dc_invariant.models.tutorial import (
    DenseModel,
    PermutationInvariantModel,
    RotationInvariantModel,
    TranslationInvariantModel,
)

__all__ = [
    "DenseModel",
    "InvariantModel",
    "KernelModel",
    "PermutationInvariantModel",
    "RotationInvariantModel",
    "SchNetModel",
    "TranslationInvariantModel",
    "load_model",
]
