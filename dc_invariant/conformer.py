"""The `Conformer` datapoint: one molecule in 3D."""

from __future__ import annotations

from typing import Optional

import numpy as np

from dc_invariant._types import FloatArray, IntArray

__all__ = ["Conformer"]


class Conformer:
    """One molecule in 3D: coordinates ``R``, per-atom features ``X`` and atomic numbers.

    This is what `ConformerFeaturizer` puts in each entry of a DeepChem dataset's ``X``.
    It is deliberately a plain object (no ``__len__``, ``__getitem__`` or ``__array__``) so
    that NumPy stores it as one element of an object array instead of unpacking it.

    Parameters
    ----------
    positions : np.ndarray of shape (n_atoms, 3)
        Cartesian coordinates in Å, stored as float64.
    features : np.ndarray of shape (n_atoms, n_features)
        Per-atom features, stored as float64; row ``i`` describes the atom at ``positions[i]``.
    atomic_numbers : np.ndarray of shape (n_atoms,)
        Element of each atom, stored as int64.
    smiles : str or None, default=None
        The SMILES the datapoint came from (as given for SMILES input, or the kept fragment's
        when ``fragments="largest"`` dropped others; canonical for a Mol).
    ensemble : np.ndarray of shape (n_conformers, n_atoms, 3) or None, default=None
        All geometries when several conformers were generated; ``ensemble[0]`` equals
        ``positions``. ``None`` for a single conformer.

    Examples
    --------
    >>> import numpy as np
    >>> c = Conformer(np.zeros((2, 3)), np.eye(2), np.array([6, 1]), smiles="[CH]")
    >>> c.n_atoms, c.n_features, c.n_conformers
    (2, 2, 1)
    """

    __slots__ = ("atomic_numbers", "ensemble", "features", "positions", "smiles")

    def __init__(
        self,
        positions: FloatArray,
        features: FloatArray,
        atomic_numbers: IntArray,
        smiles: Optional[str] = None,
        ensemble: Optional[FloatArray] = None,
    ) -> None:
        positions = np.asarray(positions, dtype=np.float64)
        features = np.asarray(features, dtype=np.float64)
        atomic_numbers = np.asarray(atomic_numbers, dtype=np.int64)
        n = positions.shape[0] if positions.ndim == 2 else -1
        if positions.ndim != 2 or positions.shape[1] != 3:
            raise ValueError(f"positions must have shape (n_atoms, 3), got {positions.shape}")
        if features.ndim != 2 or features.shape[0] != n:
            raise ValueError(
                f"features must have shape ({n}, n_features) to match positions, "
                f"got {features.shape}"
            )
        if atomic_numbers.shape != (n,):
            raise ValueError(
                f"atomic_numbers must have shape ({n},) to match positions, "
                f"got {atomic_numbers.shape}"
            )
        if ensemble is not None:
            ensemble = np.asarray(ensemble, dtype=np.float64)
            if ensemble.ndim != 3 or ensemble.shape[1:] != (n, 3):
                raise ValueError(
                    f"ensemble must have shape (n_conformers, {n}, 3), got {ensemble.shape}"
                )
        self.positions = positions
        self.features = features
        self.atomic_numbers = atomic_numbers
        self.smiles = smiles
        self.ensemble = ensemble

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return int(self.positions.shape[0])

    @property
    def n_features(self) -> int:
        """Width ``F`` of the per-atom feature matrix."""
        return int(self.features.shape[1])

    @property
    def n_conformers(self) -> int:
        """Number of geometries held (1 unless an ensemble was generated)."""
        return 1 if self.ensemble is None else int(self.ensemble.shape[0])

    def split_ensemble(self) -> list[Conformer]:
        """One single-geometry `Conformer` per member of the ensemble, in ensemble order.

        Features and atomic numbers are shared (not copied) between the returned datapoints.
        """
        if self.ensemble is None:
            return [self]
        return [
            Conformer(geometry, self.features, self.atomic_numbers, self.smiles)
            for geometry in self.ensemble
        ]

    def __repr__(self) -> str:
        extra = f", n_conformers={self.n_conformers}" if self.ensemble is not None else ""
        return (
            f"Conformer(smiles={self.smiles!r}, n_atoms={self.n_atoms}, "
            f"n_features={self.n_features}{extra})"
        )
