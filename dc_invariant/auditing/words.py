"""How the audit's words and numbers are printed, shared by the text table and the HTML page,
and what every report records about the software that produced it."""

from __future__ import annotations

import platform

import numpy as np

__all__ = ["OUTPUT_WORDS", "deviation", "environment"]

#: What each ``output`` kind means, as the table and the page say it.
OUTPUT_WORDS = {
    "invariant": "outputs must not change",
    "per_atom": "per-atom outputs must permute with the atoms",
    "vector": "forces (per-atom vectors) must permute and turn with the molecule",
    "pseudoscalar": "outputs must flip sign under reflections",
}


def deviation(value: float) -> str:
    """A deviation for a table: ``1.23e-05``; ``inf`` where a copy lost its output (its
    size changed, it was not finite, or the target raised); ``-`` where nothing was
    measured."""
    if np.isnan(value):
        return "-"
    return f"{value:.2e}" if np.isfinite(value) else "inf"


def environment() -> dict[str, str]:
    """Library versions that can change an audit's numbers."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("dc_invariant", "numpy", "torch", "deepchem", "rdkit"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out
