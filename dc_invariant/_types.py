"""Type aliases shared across the package (kept tiny so importing it is free)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from rdkit.Chem import Mol
else:
    Mol = Any

FloatArray = npt.NDArray[np.floating]
IntArray = npt.NDArray[np.integer]
BoolArray = npt.NDArray[np.bool_]
MolInput = Union[str, "Mol"]

__all__ = ["BoolArray", "FloatArray", "IntArray", "Mol", "MolInput"]
