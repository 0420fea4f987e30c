"""Import DeepChem on demand and without its import-time log lines."""

from __future__ import annotations

import logging
import sys
from types import ModuleType


def import_deepchem() -> ModuleType:
    """Return the ``deepchem`` module, importing it quietly the first time.

    DeepChem 2.8 logs about 18 warnings while importing (descriptor normalisation, optional
    TensorFlow/JAX/Lightning back-ends). They say nothing about the user's data, so they
    are held back; warnings DeepChem logs later, while it works, are left alone.
    """
    if "deepchem" in sys.modules:
        return sys.modules["deepchem"]
    dc_logger = logging.getLogger("deepchem")
    previous = dc_logger.level
    dc_logger.setLevel(logging.ERROR)
    try:
        import deepchem
    finally:
        dc_logger.setLevel(previous)
    return deepchem
