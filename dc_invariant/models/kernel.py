"""`KernelModel`: kernel ridge regression over FCHL19 local environments, as a DeepChem Model.

The choice for small data on CPUs (hundreds to about 20,000 molecules). Regression only.
Saved as JSON settings plus one ``.npz`` of arrays (no pickles); `load_model` restores it.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from typing import Any, Callable, Optional

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from dc_invariant._deepchem import import_deepchem
from dc_invariant.files import atomic, write_json
from dc_invariant.models import kernel_ridge
from dc_invariant.models.batching import transform_scale
from dc_invariant.models.fchl import FCHL19
from dc_invariant.models.kernel_data import (
    Projection,
    check_labels,
    element_index,
    representation,
    stack_dataset,
)
from dc_invariant.models.local_kernel import AtomSet, atom_sums, kernel_matrices, sum_gradients
from dc_invariant.models.persistence import CONFIG_FILE, MODEL_CLASSES, read_config

dc = import_deepchem()

ARRAYS_FILE = "kernel_model.npz"
#: Settings `KernelModel.load` may change: they leave the fitted function alone.
_LOAD_OVERRIDES = frozenset({"memory_mb"})


def _torch_threads_only(method: Callable) -> Callable:
    """Run with NumPy's BLAS on one thread: the heavy work runs on torch's threads, and
    OpenBLAS threads started beside them contend (a 720x720 eigh took 4 s instead of 0.2 s)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with threadpool_limits(limits=1, user_api="blas"):
            return method(*args, **kwargs)

    return wrapper


class KernelModel(dc.models.Model):
    r"""Local Gaussian kernel ridge regression on FCHL19 atomic environments.

    A molecule's prediction is a per-element offset ("dressed atoms", least squares on the
    element counts) plus kernel ridge over atom pairs of the same element:

    .. math::

        y(I) = \sum_{i \in I} b_{Z_i} + \sum_J \alpha_J \sum_{i \in I} \sum_{j \in J, Z_j = Z_i}
               \exp(-\lVert x_i - x_j \rVert^2 / 2\sigma^2)

    where :math:`x_i` is atom :math:`i`'s `FCHL19` vector (invariant to permutation,
    translation, rotation and reflection) and :math:`(K + \lambda I)\alpha = y - \text{offsets}`
    is solved by Cholesky, one solve for all tasks. ``sigma`` and ``regularization`` that are
    not given are chosen in ``fit`` on a seeded validation split of the training set.
    Vectors are centred on their element's training mean (so the GEMM form of the distances
    keeps its digits) and projected on the principal axes holding all but ``pca_tolerance``
    of the variance. Costs: memory ``8 n_train² x len(sigmas)`` bytes and time ~n_train² for
    the kernels, ~n_train³ for the solve; beyond about 20,000 molecules use `SchNetModel`.

    Parameters
    ----------
    n_tasks : int, default=1
    sigma : float, optional
        Kernel width; chosen from ``sigmas`` when not given.
    regularization : float, optional
        :math:`\lambda`, added to the kernel diagonal; chosen from ``regularizations``.
    sigmas, regularizations : sequence of float
        Candidates of the validation search.
    valid_fraction : float, default=0.1
        Share of the training set held out by the search.
    search_size : int, default=2000
        With more training molecules than this, widths are compared on a seeded subset of
        this size and only the chosen width's kernel is computed for the whole set (where
        ``regularization`` is chosen).
    pca_tolerance : float, default=1e-6
        Share of each element's variance the projection may drop (0 keeps every axis).
    representation : dict, optional
        `FCHL19` settings (defaults: qmllib's).
    memory_mb : int, default=256
        Budget of each work block of the kernel computation.
    seed : int, default=0
        Seed of the validation split.
    model_dir : str, optional
        Folder for `save`; a temporary folder by default.

    Examples
    --------
    >>> import deepchem as dc
    >>> from dc_invariant import Conformer
    >>> def h2(r):
    ...     return Conformer([[0.0, 0, 0], [r, 0, 0]], np.ones((2, 1)), [1, 1])
    >>> lengths = np.linspace(0.6, 1.2, 25)
    >>> X = np.empty(25, dtype=object)
    >>> X[:] = [h2(r) for r in lengths]
    >>> model = KernelModel(sigma=0.5, regularization=1e-10)
    >>> _ = model.fit(dc.data.NumpyDataset(X, (lengths - 0.74) ** 2))
    >>> test = np.empty(1, dtype=object)
    >>> test[0] = h2(0.9)
    >>> bool(abs(model.predict(dc.data.NumpyDataset(test))[0, 0] - 0.16**2) < 1e-3)
    True
    """

    mode = "regression"
    dtype = "float64"

    def __init__(
        self,
        n_tasks: int = 1,
        *,
        sigma: Optional[float] = None,
        regularization: Optional[float] = None,
        sigmas: Sequence[float] = (2.0, 4.0, 8.0),
        regularizations: Sequence[float] = (1e-8, 1e-6, 1e-4),
        valid_fraction: float = 0.1,
        search_size: int = 2000,
        pca_tolerance: float = 1e-6,
        representation: Optional[dict[str, float]] = None,
        memory_mb: int = 256,
        seed: int = 0,
        model_dir: Optional[str] = None,
    ) -> None:
        if not isinstance(n_tasks, (int, np.integer)) or isinstance(n_tasks, bool) or n_tasks < 1:
            raise ValueError(f"n_tasks must be an int >= 1, got {n_tasks!r}")
        for name, values in (("sigmas", sigmas), ("regularizations", regularizations)):
            if len(values) == 0 or min(values) <= 0:
                raise ValueError(f"{name} must be positive numbers, got {list(values)}")
        for name, value in (("sigma", sigma), ("regularization", regularization)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if not 0 < valid_fraction < 1:
            raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
        if search_size < 10:
            raise ValueError(f"search_size must be >= 10, got {search_size}")
        if not 0 <= pca_tolerance < 1:
            raise ValueError(f"pca_tolerance must be in [0, 1), got {pca_tolerance}")
        super().__init__(model_dir=model_dir)
        self.n_tasks = int(n_tasks)
        self.representation = FCHL19(**(representation or {}))
        self.hyperparameters = {
            "n_tasks": self.n_tasks,
            "sigma": None if sigma is None else float(sigma),
            "regularization": None if regularization is None else float(regularization),
            "sigmas": [float(s) for s in sigmas],
            "regularizations": [float(r) for r in regularizations],
            "valid_fraction": float(valid_fraction),
            "search_size": int(search_size),
            "pca_tolerance": float(pca_tolerance),
            "representation": self.representation.to_dict(),
            "memory_mb": int(memory_mb),
            "seed": int(seed),
        }
        self.memory_bytes = int(memory_mb) * 2**20
        #: What fit chose and measured (elements, sigma, regularization, search table, ...).
        self.fitted: Optional[dict[str, Any]] = None
        self._arrays: dict[str, np.ndarray] = {}

    # ---- fit -----------------------------------------------------------------------------

    @_torch_threads_only
    def fit(self, dataset: Any) -> float:
        """Fit offsets, choose ``sigma`` and ``regularization`` unless given, and solve.

        Returns
        -------
        float
            Validation MAE of the chosen settings (``y`` units, mean over tasks); NaN when
            nothing was searched (both given, or fewer than 10 molecules).
        """
        start = time.perf_counter()
        X, ids = dataset.X, dataset.ids
        y = check_labels(X, dataset.y, dataset.w, ids, self.n_tasks)
        stacked, name = stack_dataset(X, ids)
        elements = np.unique(stacked.atomic_numbers)
        index = element_index(stacked.atomic_numbers, stacked.counts, elements, name)
        vectors = representation(
            self.representation, stacked.positions, index, stacked.counts, len(elements)
        )
        projection = Projection.fit(
            vectors, index, len(elements), self.hyperparameters["pca_tolerance"]
        )
        sets = projection.atom_sets(vectors, index, stacked.molecule)
        del vectors
        counts = _element_counts(index, stacked.molecule, len(y), len(elements))
        h = self.hyperparameters
        sigmas = [h["sigma"]] if h["sigma"] else h["sigmas"]
        regs = [h["regularization"]] if h["regularization"] else h["regularizations"]
        table: list[dict[str, Any]] = []
        if len(sigmas) > 1 and len(y) > h["search_size"]:
            # Widths are compared on a seeded subset: each width over the full set costs
            # another pass over n_train² atom pairs, and the best width moves little with n.
            sub = np.sort(
                np.random.default_rng(h["seed"]).choice(len(y), h["search_size"], replace=False)
            )
            kernels = kernel_matrices(
                _subset(sets, sub), None, len(sub), len(sub), sigmas, self.memory_bytes
            )
            (_, sigma, _), table = kernel_ridge.search(
                kernels, counts[sub], y[sub], sigmas, regs, h["valid_fraction"], h["seed"]
            )
            for row in table:
                row["n_train"] = len(sub)
            sigmas = [sigma]
        kernels = kernel_matrices(sets, None, len(y), len(y), sigmas, self.memory_bytes)
        score, sigma, reg = np.nan, sigmas[0], regs[0]
        if (len(sigmas) > 1 or len(regs) > 1) and len(y) >= 10:
            (score, sigma, reg), rows = kernel_ridge.search(
                kernels, counts, y, sigmas, regs, h["valid_fraction"], h["seed"]
            )
            table += [{**row, "n_train": len(y)} for row in rows]
        kernel = kernels[sigmas.index(sigma)]
        del kernels
        offsets = kernel_ridge.offsets(counts, y)
        alpha = kernel_ridge.solve(kernel, reg, y - counts @ offsets)
        arrays = {"elements": elements, "offsets": offsets, "alpha": alpha}
        for e, atoms in enumerate(sets):
            arrays[f"mean_{e}"] = projection.means[e]
            arrays[f"axes_{e}"] = projection.axes[e]
            arrays[f"vectors_{e}"] = atoms.vectors
            arrays[f"molecule_{e}"] = atoms.molecule
        self._restore(arrays)
        self.fitted = {
            "elements": [int(z) for z in elements],
            "sigma": float(sigma),
            "regularization": float(reg),
            "valid_mae": None if np.isnan(score) else float(score),
            "search": table,
            "n_train": len(y),
            "dimensions": [int(a.shape[1]) for a in projection.axes],
            "fit_seconds": time.perf_counter() - start,
        }
        return float(score)

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self._arrays = arrays
        self._elements = np.asarray(arrays["elements"], dtype=np.int64)
        n = len(self._elements)
        self._projection = Projection(
            [arrays[f"mean_{e}"] for e in range(n)], [arrays[f"axes_{e}"] for e in range(n)]
        )
        self._train = [AtomSet(arrays[f"vectors_{e}"], arrays[f"molecule_{e}"]) for e in range(n)]

    def _check_fitted(self) -> None:
        if self.fitted is None:
            raise ValueError("this KernelModel is not fitted: call fit(dataset) or load_model")

    # ---- predict -------------------------------------------------------------------------

    @_torch_threads_only
    def predict(self, dataset: Any, transformers: Sequence[Any] = ()) -> np.ndarray:
        """Predictions of shape (n_molecules, n_tasks), with ``transformers`` undone."""
        self._check_fitted()
        stacked, name = stack_dataset(dataset.X, dataset.ids)
        out = self._predict_stacked(stacked.positions, stacked.atomic_numbers, stacked.counts, name)
        return dc.trans.undo_transforms(out, list(transformers)) if transformers else out

    def _predict_stacked(
        self,
        positions: np.ndarray,
        atomic_numbers: np.ndarray,
        counts: np.ndarray,
        name: Callable[[int], str],
        forces_task: Optional[int] = None,
    ) -> np.ndarray:
        """(n_molecules, n_tasks) predictions, or (n_total, 3) forces of ``forces_task``."""
        index = element_index(atomic_numbers, counts, self._elements, name)
        molecule = np.repeat(np.arange(len(counts)), counts)
        alpha, sigma = self._arrays["alpha"], self.fitted["sigma"]
        if forces_task is not None:
            return self._forces(positions, index, counts, alpha[:, forces_task], sigma)
        vectors = representation(self.representation, positions, index, counts, len(self._elements))
        sets = self._projection.atom_sets(vectors, index, molecule)
        out = _element_counts(index, molecule, len(counts), len(self._elements))
        out = out @ self._arrays["offsets"]
        for atoms, train in zip(sets, self._train):
            if len(atoms.molecule) == 0:
                continue
            per_atom = atom_sums(atoms, train, alpha[train.molecule], sigma, self.memory_bytes)
            for t in range(self.n_tasks):
                out[:, t] += np.bincount(atoms.molecule, per_atom[:, t], minlength=len(counts))
        return out

    def _forces(
        self,
        positions: np.ndarray,
        index: np.ndarray,
        counts: np.ndarray,
        alpha: np.ndarray,
        sigma: float,
    ) -> np.ndarray:
        """``-dE/dR``: kernel gradients in closed form, chained through FCHL19 by autograd."""
        coords = torch.tensor(positions, dtype=torch.float64, requires_grad=True)
        vectors = self.representation(coords, index, counts, len(self._elements))
        surrogate = torch.zeros((), dtype=torch.float64)
        for e, train in enumerate(self._train):
            mask = torch.from_numpy(index == e)
            if not bool(mask.any()):
                continue
            mean = torch.from_numpy(self._projection.means[e])
            axes = torch.from_numpy(self._projection.axes[e])
            projected = (vectors[mask] - mean) @ axes
            atoms = AtomSet(projected.detach().numpy(), np.zeros(int(mask.sum()), np.int64))
            gradient = sum_gradients(atoms, train, alpha[train.molecule], sigma, self.memory_bytes)
            surrogate = surrogate + (projected * torch.from_numpy(gradient)).sum()
        if not surrogate.requires_grad:
            return np.zeros_like(positions)
        (grad,) = torch.autograd.grad(surrogate, coords)
        return -grad.numpy()

    @_torch_threads_only
    def predict_arrays(
        self,
        positions: np.ndarray,
        features: np.ndarray,
        atomic_numbers: np.ndarray,
        counts: np.ndarray,
        *,
        forces: bool = False,
        task: int = 0,
        batch_atoms: int = 32_768,
    ) -> np.ndarray:
        """Predictions (or forces) for molecules given as stacked atom arrays.

        The same interface as `InvariantModel.predict_arrays` (the symmetry audit's path);
        ``features`` are accepted and ignored: the kernel reads elements and geometry only.

        Returns
        -------
        np.ndarray
            (n_molecules, n_tasks) predictions, or (n_total, 3) forces ``-dE_task/dR``.
        """
        self._check_fitted()
        counts = np.asarray(counts, dtype=np.int64)
        positions = np.asarray(positions, dtype=np.float64)
        atomic_numbers = np.asarray(atomic_numbers, dtype=np.int64)
        n_total = int(counts.sum())
        if (counts < 1).any() or positions.shape != (n_total, 3):
            raise ValueError(
                f"positions must have shape (sum(counts), 3) = ({n_total}, 3) with every count "
                f">= 1, got {positions.shape}"
            )
        if atomic_numbers.shape != (n_total,) or not np.isfinite(positions).all():
            raise ValueError(f"atomic_numbers must have shape ({n_total},) and positions be finite")
        if forces and not 0 <= task < self.n_tasks:
            raise ValueError(f"task must be in [0, {self.n_tasks}), got {task}")
        ends = np.cumsum(counts)
        out, first = [], 0
        while first < len(counts):
            lo = int(ends[first] - counts[first])
            last = max(first + 1, int(np.searchsorted(ends, lo + batch_atoms, side="right")))
            hi = int(ends[last - 1])
            out.append(
                self._predict_stacked(
                    positions[lo:hi],
                    atomic_numbers[lo:hi],
                    counts[first:last],
                    lambda k, first=first: f"molecule {first + k}",
                    task if forces else None,
                )
            )
            first = last
        return np.concatenate(out)

    @_torch_threads_only
    def predict_forces(
        self, dataset: Any, transformers: Sequence[Any] = (), task: int = 0
    ) -> list[np.ndarray]:
        """Forces ``F = -dE/dR``, one (n_atoms, 3) array per molecule, in y's units per Å
        (linear ``transformers`` applied to y are undone)."""
        self._check_fitted()
        if not 0 <= task < self.n_tasks:
            raise ValueError(f"task must be in [0, {self.n_tasks}), got {task}")
        stacked, name = stack_dataset(dataset.X, dataset.ids)
        scale = transform_scale(list(transformers), self.n_tasks)[task]
        forces = self._predict_stacked(
            stacked.positions, stacked.atomic_numbers, stacked.counts, name, task
        )
        return np.split(scale * forces, np.cumsum(stacked.counts)[:-1])

    # ---- persistence ---------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """Settings and fitted scalars, as JSON-compatible data."""
        return {
            "class": type(self).__name__,
            "hyperparameters": self.hyperparameters,
            "fitted": self.fitted,
        }

    def save(self) -> None:
        """Write settings (JSON) and arrays (``.npz``, no pickles) to ``model_dir``.

        Each file is written under a temporary name and renamed, so it is complete or absent.
        """
        self._check_fitted()
        os.makedirs(self.model_dir, exist_ok=True)
        arrays = os.path.join(self.model_dir, ARRAYS_FILE)
        with atomic(arrays, "wb") as handle:
            np.savez(handle, **self._arrays)
        write_json(os.path.join(self.model_dir, CONFIG_FILE), self.get_config(), sort_keys=True)

    save_checkpoint = save

    @classmethod
    def load(cls, model_dir: str, **overrides: Any) -> KernelModel:
        """The model saved in ``model_dir`` (as `load_model` does for every model).

        ``overrides`` may change settings that leave the function alone (``memory_mb``).
        """
        unknown = sorted(set(overrides) - _LOAD_OVERRIDES)
        if unknown:
            raise TypeError(f"a saved KernelModel cannot override {unknown}")
        config = read_config(model_dir)
        path = os.path.join(model_dir, ARRAYS_FILE)
        if not os.path.isfile(path) or not config.get("fitted"):
            raise FileNotFoundError(f"{model_dir} holds no fitted KernelModel ({ARRAYS_FILE})")
        model = cls(**{**config["hyperparameters"], **overrides}, model_dir=model_dir)
        with np.load(path, allow_pickle=False) as data:
            model._restore({key: data[key] for key in data.files})
        model.fitted = config["fitted"]
        return model


def _subset(sets: list[AtomSet], molecules: np.ndarray) -> list[AtomSet]:
    """The atoms of the chosen (sorted) molecules, renumbered 0 .. len(molecules) - 1."""
    out = []
    for atoms in sets:
        keep = np.isin(atoms.molecule, molecules)
        out.append(AtomSet(atoms.vectors[keep], np.searchsorted(molecules, atoms.molecule[keep])))
    return out


def _element_counts(
    index: np.ndarray, molecule: np.ndarray, n_molecules: int, n_elements: int
) -> np.ndarray:
    """Atoms of each element per molecule, (n_molecules, n_elements) float64."""
    flat = np.bincount(molecule * n_elements + index, minlength=n_molecules * n_elements)
    return flat.reshape(n_molecules, n_elements).astype(np.float64)


MODEL_CLASSES[KernelModel.__name__] = KernelModel
