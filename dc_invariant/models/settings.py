"""Hyperparameters of the torch models, one frozen dataclass per model family.

A model's constructor takes these fields as keyword arguments; they are checked here (with
`dc_invariant.validation`) before any network is built, stored as plain Python values, and
saved as JSON beside the checkpoints so that `load_model` rebuilds the same model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from dc_invariant.validation import (
    check_bool,
    check_choice,
    check_int,
    check_positive,
    check_seed,
    store,
)

__all__ = [
    "ACTIVATIONS",
    "DTYPES",
    "DenseSettings",
    "MODES",
    "ModelSettings",
    "PairSettings",
    "SchNetSettings",
    "TutorialSettings",
]

MODES = ("regression", "classification")
DTYPES = ("float32", "float64")
ACTIVATIONS = ("tanh", "relu", "silu", "softplus")


@dataclass(frozen=True, kw_only=True)
class ModelSettings:
    """Settings every model shares.

    Parameters
    ----------
    n_tasks : int, default=1
        Outputs per molecule.
    n_features : int, default=11
        Width of the atom features (``ConformerFeaturizer().n_features`` is 11).
    mode : {"regression", "classification"}, default="regression"
    n_classes : int, default=2
        Classes per task in classification mode.
    dtype : {"float32", "float64"}, default="float32"
    seed : int, default=0
        Seeds the initial weights and the training order.
    """

    n_tasks: int = 1
    n_features: int = 11
    mode: str = "regression"
    n_classes: int = 2
    dtype: str = "float32"
    seed: int = 0

    def __post_init__(self) -> None:
        store(self, "n_tasks", check_int(self.n_tasks, "n_tasks", min_val=1))
        store(self, "n_features", check_int(self.n_features, "n_features", min_val=1))
        check_choice(self.mode, "mode", MODES)
        low = 2 if self.mode == "classification" else 1
        store(self, "n_classes", check_int(self.n_classes, "n_classes", min_val=low))
        check_choice(self.dtype, "dtype", DTYPES)
        store(self, "seed", check_seed(self.seed))

    @property
    def n_outputs(self) -> int:
        """Network outputs: one per task, or one per task and class."""
        return self.n_tasks * (self.n_classes if self.mode == "classification" else 1)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-compatible data (the constructor's keyword arguments)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class TutorialSettings(ModelSettings):
    """The tutorial networks': ``hidden`` units and their ``activation``."""

    hidden: int = 16
    activation: str = "tanh"

    def __post_init__(self) -> None:
        super().__post_init__()
        store(self, "hidden", check_int(self.hidden, "hidden", min_val=1))
        check_choice(self.activation, "activation", ACTIVATIONS)


@dataclass(frozen=True, kw_only=True)
class DenseSettings(TutorialSettings):
    """The dense baseline's fixed input size ``n_atoms``."""

    n_atoms: int = 29

    def __post_init__(self) -> None:
        super().__post_init__()
        store(self, "n_atoms", check_int(self.n_atoms, "n_atoms", min_val=1))


@dataclass(frozen=True, kw_only=True)
class PairSettings(TutorialSettings):
    """The pair networks' optional ``cutoff`` in Å."""

    cutoff: Optional[float] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cutoff is not None:
            store(self, "cutoff", check_positive(self.cutoff, "cutoff (Å)"))


@dataclass(frozen=True, kw_only=True)
class SchNetSettings(ModelSettings):
    """SchNet's sizes, ``cutoff`` (Å), ``pooling`` and target ``standardize``."""

    n_atom_basis: int = 128
    n_filters: int = 128
    n_interactions: int = 3
    n_rbf: int = 50
    cutoff: float = 5.0
    pooling: str = "sum"
    standardize: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("n_atom_basis", "n_filters", "n_rbf"):
            store(self, name, check_int(getattr(self, name), name, min_val=2))
        store(self, "n_interactions", check_int(self.n_interactions, "n_interactions", min_val=1))
        store(self, "cutoff", check_positive(self.cutoff, "cutoff (Å)"))
        check_choice(self.pooling, "pooling", ("sum", "mean"))
        store(self, "standardize", check_bool(self.standardize, "standardize"))
