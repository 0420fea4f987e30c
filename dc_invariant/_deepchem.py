"""Import DeepChem on demand and without its import-time log lines."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from types import ModuleType

__all__ = ["import_deepchem", "quiet_deepchem_logs"]


@contextlib.contextmanager
def quiet_deepchem_logs() -> Iterator[None]:
    """Hold back DeepChem's log lines below ERROR for the duration of the block."""
    dc_logger = logging.getLogger("deepchem")
    previous = dc_logger.level
    dc_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        dc_logger.setLevel(previous)


def import_deepchem() -> ModuleType:
    """Return the ``deepchem`` module, importing it quietly the first time.

    DeepChem 2.8 logs about 18 warnings while importing (descriptor normalisation, optional
    TensorFlow/JAX/Lightning back-ends). They say nothing about the user's data, so they
    are held back; warnings DeepChem logs later, while it works, are left alone.
    """
    if "deepchem" in sys.modules:
        return sys.modules["deepchem"]
    with quiet_deepchem_logs():
        import deepchem
    return deepchem
