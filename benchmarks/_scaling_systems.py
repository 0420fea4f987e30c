"""The systems the scaling benchmark measures: geometry, inputs and ways of summing pairs.

* `liquid_geometry`: ``n_atoms`` atoms at the density of organic matter, none closer than
  1 Å; `system_inputs`: those atoms as ``predict_arrays`` inputs.
* `PATHS`: the four evaluations of ``RotationInvariantModel``'s pair sum that are compared,
  and `model_for`, the model that takes one of them.
* `Case`: what measuring one (path, mode, size) gave; `dense_bytes`: whether to try it.

Imported by ``scaling.py``; not a benchmark itself.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

import dc_invariant.models.tutorial as tutorial
from dc_invariant import ConformerFeaturizer

CUTOFF = 5.0  # Å
DENSITY = 0.1  # atoms per Å³, about that of liquids, polymers and proteins
MIN_DISTANCE = 1.0  # Å
# Elements and their shares in a protein (hydrogens included), for the features.
ELEMENTS = (1, 6, 7, 8, 16)
ELEMENT_SHARES = (0.50, 0.31, 0.085, 0.10, 0.005)

# The dense path holds about six (n, n, hidden) float32 tensors at once.
HIDDEN = 16
DENSE_TENSORS = 6
DENSE_LIMIT_BYTES = 6e9

# The memory target: prediction and forces of this many atoms within this peak RSS.
TARGET_ATOMS = 5_000
TARGET_MIB = 2048.0


@dataclass(frozen=True)
class PairPath:
    """One way of evaluating the pair sum."""

    label: str
    cutoff: Optional[float]
    #: value for tutorial.DENSE_PAIR_ATOMS in the measuring process; None keeps the library's
    dense_pair_atoms: Optional[int]


# "masked" is what the default cutoff model uses up to DENSE_PAIR_ATOMS atoms: its crossover
# with "neighbour" is the one that places that threshold.
PATHS = {
    "dense": PairPath("dense pairs (cutoff=None)", None, None),
    "masked": PairPath(
        "dense pairs x envelope (cutoff=5, dense at every size)", CUTOFF, sys.maxsize
    ),
    "neighbour": PairPath("neighbour lists (cutoff=5, DENSE_PAIR_ATOMS=0)", CUTOFF, 0),
    "default": PairPath(
        f"default cutoff model (dense up to {tutorial.DENSE_PAIR_ATOMS} atoms)", CUTOFF, None
    ),
}
MODES = ("predict", "forces")
COLUMNS = {
    "dense": "dense",
    "masked": "dense x envelope",
    "neighbour": "neighbour list",
    "default": "default cutoff",
}


@dataclass
class Case:
    """What one (path, mode, n_atoms) measurement gave; ``note`` says why it has no numbers."""

    seconds: float = math.nan
    runs: int = 0
    peak_mib: float = math.nan  # high-water RSS above the RSS after imports and warm-up
    process_mib: float = math.nan  # high-water RSS of the whole process
    note: str = ""


def liquid_geometry(n_atoms: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n_atoms`` atoms at `DENSITY` in a cube, none closer than `MIN_DISTANCE`.

    Atoms sit in randomly chosen cells of a cubic grid, each displaced by at most ``jitter``
    cell widths per axis; atoms in neighbouring cells are then at least
    ``spacing * (1 - 2 * jitter)`` apart, which the jitter is chosen to keep above
    `MIN_DISTANCE`, so no rejection loop is needed.

    Parameters
    ----------
    n_atoms : int
    seed : int, default=0

    Returns
    -------
    positions : np.ndarray of shape (n_atoms, 3)
        Coordinates (Å).
    atomic_numbers : np.ndarray of int64, shape (n_atoms,)
    """
    rng = np.random.default_rng([seed, n_atoms])
    side = (n_atoms / DENSITY) ** (1 / 3)
    cells = round(n_atoms ** (1 / 3))
    if cells**3 < n_atoms:
        cells += 1
    spacing = side / cells
    jitter = min(0.25, (1 - MIN_DISTANCE / spacing) / 2)
    if jitter <= 0:
        raise ValueError(f"{n_atoms} atoms: grid spacing {spacing:.2f} Å is below {MIN_DISTANCE}")
    grid = np.stack(np.meshgrid(*[np.arange(cells)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    chosen = grid[rng.choice(len(grid), n_atoms, replace=False)]
    positions = (chosen + 0.5 + rng.uniform(-jitter, jitter, (n_atoms, 3))) * spacing
    atomic_numbers = rng.choice(np.array(ELEMENTS, dtype=np.int64), n_atoms, p=ELEMENT_SHARES)
    return positions, atomic_numbers


def system_inputs(n_atoms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``predict_arrays`` inputs for the `liquid_geometry` of ``n_atoms`` (one molecule).

    Features come from ``ConformerFeaturizer().featurize_arrays``, so they have the default
    model's 11 columns.
    """
    positions, numbers = liquid_geometry(n_atoms)
    conformer = ConformerFeaturizer().featurize_arrays([numbers], [positions])[0]
    return positions, conformer.features, numbers, np.array([n_atoms])


def model_for(path: PairPath) -> Any:
    """``RotationInvariantModel(seed=0)`` summing pairs as ``path`` says.

    Sets ``tutorial.DENSE_PAIR_ATOMS`` for the whole process where ``path`` asks to: call it
    only in a process that measures this one path.
    """
    from dc_invariant.models import RotationInvariantModel

    if path.dense_pair_atoms is not None:
        # Runs only in the measuring process, which ends after this one case.
        tutorial.DENSE_PAIR_ATOMS = path.dense_pair_atoms
    return RotationInvariantModel(seed=0, cutoff=path.cutoff)


def dense_bytes(n_atoms: int) -> float:
    """Estimated bytes of the dense path's pair tensors for one molecule of ``n_atoms``."""
    return float(n_atoms) ** 2 * HIDDEN * 4 * DENSE_TENSORS
