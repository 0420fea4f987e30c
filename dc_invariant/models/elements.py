"""Elements a trained model knows: which molecules hold others, named for people.

A model fitted on some elements has nothing learned for an atom of another (a kernel model
no training atom to compare it with, SchNet no fitted offset): such molecules are predicted
as NaN and named by `unsupported`, which the audit also reads to skip them with the reason.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from dc_invariant.conformer import Conformer
from dc_invariant.molecules import Molecules

__all__ = [
    "CONSTANT_SHARE",
    "as_molecules",
    "element_symbol",
    "takes_constant",
    "unsupported",
    "warn_unsupported",
]

#: Both models start from per-element offsets fitted to the labels. They get a constant per
#: molecule too when it takes away at least this share of what per-element offsets leave
#: (RMS, in some task). Labels a transformer shifted (``NormalizationTransformer`` subtracts
#: their mean, as ``dc.molnet`` loaders do by default) carry one that element offsets cannot
#: hold, and the model learned it instead: 20x the kernel model's error on QM9 (residual RMS
#: 0.2% with the constant). Untransformed labels lose 0.1% (QM9) to 7% (FreeSolv) and are
#: fitted as before.
CONSTANT_SHARE = 0.5


def takes_constant(without: Any, with_constant: Any) -> bool:
    """Whether the offsets get a constant: the residual RMS (per task) the element offsets
    leave ``without`` it and ``with_constant``, against `CONSTANT_SHARE`."""
    return bool(np.any(np.asarray(with_constant) < CONSTANT_SHARE * np.asarray(without)))


def unsupported(
    molecules: Molecules, elements: np.ndarray, where: str = "the training set"
) -> dict[int, str]:
    """Molecules with an element not in ``elements`` (those of ``where``), each with a
    one-line reason.

    Returns
    -------
    dict of int to str
        ``{index: "element Na (Z=11) not in the training set"}`` for each such molecule.
    """
    z = molecules.atomic_numbers
    unknown = ~np.isin(z, elements)
    molecule = molecules.molecule
    out: dict[int, str] = {}
    for k in np.unique(molecule[unknown]):
        zs = np.unique(z[unknown & (molecule == k)])
        names = ", ".join(f"{element_symbol(int(v))} (Z={int(v)})" for v in zs)
        word = "element" if len(zs) == 1 else "elements"
        out[int(k)] = f"{word} {names} not in {where}"
    return out


def element_symbol(z: int) -> str:
    """The element's symbol (RDKit's periodic table), or ``Z<z>`` outside it."""
    from rdkit import Chem

    return Chem.GetPeriodicTable().GetElementSymbol(z) if 0 < z < 119 else f"Z{z}"


def as_molecules(molecules: Any) -> Molecules:
    """``molecules`` stacked: a `Molecules`, a DeepChem dataset of `Conformer`s, or a
    sequence of them (or one). Raises ``TypeError`` for anything else."""
    if isinstance(molecules, Molecules):
        return molecules
    items = getattr(molecules, "X", molecules)
    items = [items] if isinstance(items, Conformer) else list(items)
    bad = [k for k, c in enumerate(items) if not isinstance(c, Conformer)]
    if bad or not items:
        what = type(items[bad[0]]).__name__ if bad else "nothing"
        raise TypeError(f"expected Molecules, a dataset or Conformers, got {what}")
    return Molecules.from_conformers(items)


def warn_unsupported(
    model: str,
    skipped: dict[int, str],
    what: str,
    why: str,
    name: Callable[[int], str] = lambda k: f"molecule {k}",
    stacklevel: int = 2,
) -> None:
    """One ``UserWarning`` for the molecules of `unsupported`: how many, which elements
    and why, the first few by ``name``."""
    reasons = "; ".join(sorted(set(skipped.values())))
    first = "; ".join(name(k) for k in list(skipped)[:3])
    warnings.warn(
        f"{model}: {len(skipped)} molecule(s) are {what}, {reasons} ({why}); first: {first}",
        UserWarning,
        stacklevel=stacklevel + 1,
    )
