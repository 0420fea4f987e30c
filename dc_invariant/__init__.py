"""dc_invariant: permutation-, translation- and rotation-invariant modelling for DeepChem.

Public names are resolved on first use, so ``import dc_invariant`` imports neither DeepChem
nor PyTorch and prints nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "AuditReport": "dc_invariant.auditing",
    "Conformer": "dc_invariant.conformer",
    "ConformerFeaturizer": "dc_invariant.featurizer",
    "DenseModel": "dc_invariant.models",
    "FeaturizationError": "dc_invariant.embedding",
    "KernelModel": "dc_invariant.models",
    "Molecules": "dc_invariant.molecules",
    "MoleculeModel": "dc_invariant.models",
    "PermutationInvariantModel": "dc_invariant.models",
    "RotationInvariantModel": "dc_invariant.models",
    "SchNetModel": "dc_invariant.models",
    "SensitivityReport": "dc_invariant.sensitivity",
    "TranslationInvariantModel": "dc_invariant.models",
    "assert_invariant": "dc_invariant.auditing",
    "audit": "dc_invariant.auditing",
    "check_model": "dc_invariant.auditing",
    "conformer_sensitivity": "dc_invariant.sensitivity",
    "load_model": "dc_invariant.models",
    "load_qm9": "dc_invariant.datasets",
    "pad_batch": "dc_invariant.molecules",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dc_invariant' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
