"""Trainable invariant models over datasets of `Conformer`s: the tutorial's networks and
SchNet (DeepChem ``TorchModel``s), and the `KernelModel` (kernel ridge regression)."""

from dc_invariant.models.base import Batch, InvariantModel
from dc_invariant.models.contract import MoleculeModel
from dc_invariant.models.kernel import KernelModel, KernelSettings
from dc_invariant.models.persistence import load_model
from dc_invariant.models.runtime import RUNTIME, Runtime
from dc_invariant.models.schnet import SchNetModel
from dc_invariant.models.settings import ModelSettings
from dc_invariant.models.tutorial import (
    DenseModel,
    PermutationInvariantModel,
    RotationInvariantModel,
    TranslationInvariantModel,
)

__all__ = [
    "RUNTIME",
    "Batch",
    "DenseModel",
    "InvariantModel",
    "KernelModel",
    "KernelSettings",
    "ModelSettings",
    "MoleculeModel",
    "PermutationInvariantModel",
    "RotationInvariantModel",
    "Runtime",
    "SchNetModel",
    "TranslationInvariantModel",
    "load_model",
]
