"""`KernelModel`: kernel ridge regression over FCHL19 local environments, as a DeepChem Model.

The choice for small data on CPUs (hundreds to about 20,000 molecules). Regression only.
Saved as JSON settings plus one ``.npz`` of arrays (no pickles); `load_model` restores it.
The search is `search`'s, the solves `solve`'s, the saved files `store`'s and predictions
`trained`'s.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any, Callable, Optional, Union

import numpy as np
import torch

from dc_invariant._deepchem import import_deepchem
from dc_invariant.models.batching import check_labels, transform_scale
from dc_invariant.models.contract import StackedArrays
from dc_invariant.models.elements import as_molecules, unsupported, warn_unsupported
from dc_invariant.models.kernel import nystrom, search, solve, store
from dc_invariant.models.kernel.inputs import (
    element_counts,
    element_index,
    resolve_device,
    stack_dataset,
    stack_geometries,
)
from dc_invariant.models.kernel.kernels import AtomSet, blas_on_one_thread
from dc_invariant.models.kernel.projection import Projection
from dc_invariant.models.kernel.representation import atom_vectors
from dc_invariant.models.kernel.scoring import Holdout
from dc_invariant.models.kernel.search import RELATIVE_REGULARIZATIONS
from dc_invariant.models.kernel.settings import KernelSettings
from dc_invariant.models.kernel.trained import TrainedKernel
from dc_invariant.models.persistence import MODEL_CLASSES
from dc_invariant.molecules import Molecules
from dc_invariant.validation import check_bool, check_task

dc = import_deepchem()

__all__ = ["KernelModel"]

# Molecules whose FCHL19 vectors are computed at once (QM9: 20,000 x 18 atoms x 720 float64
# columns, 2 GB); with more, the projection is fitted on a seeded sample of this many.
_CHUNK = 20_000


class KernelModel(StackedArrays, dc.models.Model):
    r"""Local Gaussian kernel ridge regression on FCHL19 atomic environments.

    A molecule's prediction is a per-element offset ("dressed atoms", least squares on the
    element counts) plus kernel ridge over atom pairs of the same element:

    .. math::

        y(I) = \sum_{i \in I} b_{Z_i} + \sum_J \alpha_J \sum_{i \in I} \sum_{j \in J, Z_j = Z_i}
               \exp(-\lVert x_i - x_j \rVert^2 / 2\sigma^2)

    where :math:`x_i` is atom :math:`i`'s `FCHL19` vector (invariant to permutation,
    translation, rotation and reflection) and :math:`(K + \lambda I)\alpha = y - \text{offsets}`
    is solved by Cholesky, one solve for all tasks. ``sigma`` and ``regularization`` that are
    not given are chosen in ``fit`` by exact leave-one-out error in closed form (offsets
    refitted too; see `dc_invariant.models.kernel.loo`), or on ``fit``'s ``valid`` set:
    ``lambda`` from 1e-10 to 10 times the kernel's mean diagonal, every value at once from one
    eigendecomposition per width, and widths extended past the edge of ``sigmas`` while the
    best lies there (`dc_invariant.models.kernel.search`). A choice still on an edge of its
    range is a ``UserWarning``. Noise-free DFT energies end at small ``lambda``, noisy
    experimental labels at large ones. ``fitted["search"]`` keeps every candidate's error.
    Vectors are centred on their element's training mean (so the GEMM form of the distances
    keeps its digits) and projected on the principal axes holding all but ``pca_tolerance``
    of the variance. Costs of the exact solve: memory ``8 n_train²`` bytes per width and
    time ~n_train² for the kernels, ~n_train³ for the solves. Past 20,000 molecules
    (``solver="auto"``) the Nyström solve (`dc_invariant.models.kernel.nystrom`) fits the
    same model on the kernel columns of ``landmarks`` seeded random training molecules:
    memory ``32 landmarks²`` bytes, time ~n_train·landmarks, predictions as costly as an
    exact model of ``landmarks`` molecules. Its ``sigma`` comes from the search above (on
    ``search_size`` molecules); its ``lambda`` is chosen on ``valid``, or on 1,000 (at most
    a tenth) of the training molecules held out and then fitted on too.

    The settings below are checked (and kept) as a frozen `KernelSettings`, ``settings``;
    ``hyperparameters`` is their JSON form, which `save` writes.

    Parameters
    ----------
    n_tasks : int, default=1
    sigma : float, optional
        Kernel width; searched when not given.
    regularization : float, optional
        :math:`\lambda`, added to the kernel diagonal; searched when not given.
    sigmas : sequence of float, default=(2, 4, 8)
        Starting widths of the search; a width beyond an edge (by the grid's end ratio) is
        tried while the best lies on it, up to four times, then one halfway (geometrically)
        toward the best's better neighbour.
    regularizations : sequence of float, optional
        Candidate :math:`\lambda` values; by default 1e-10 to 10 times the kernel's mean
        diagonal, four a decade.
    search_size : int, default=4000
        With more training molecules than this, widths (and a first ``lambda``) are chosen
        on a seeded subset of this size; ``lambda`` is then walked on the whole set with
        Cholesky leave-one-out, and only the chosen width's kernel is computed for it.
    pca_tolerance : float, default=1e-6
        Share of each element's variance the projection may drop (0 keeps every axis).
    representation : dict, optional
        `FCHL19` settings; fields not given take `FCHL19.tuned`'s values (tuned on QM9
        validation molecules: 0.0251 eV validation MAE at 10,000 training molecules against
        0.0365 eV with qmllib's). ``FCHL19().to_dict()`` gives qmllib's settings.
    memory_mb : int, default=256
        Budget of each work block of the kernel computation.
    device : str or torch.device, optional
        Where the representation, the kernel blocks and the force gradients run; by default
        CUDA when ``torch.cuda.is_available()``, else the CPU (DeepChem's `TorchModel`
        convention). The solves run on the CPU. Results are NumPy arrays. Not a saved
        setting: ``load_model(model_dir, device="cpu")`` picks another one.
    seed : int, default=0
        Seed of the search subset, the landmarks and the hold-out.
    solver : {"auto", "exact", "nystrom"}, default="auto"
        The exact solve up to 20,000 training molecules, the Nyström solve past them.
    landmarks : int, optional
        Landmark molecules of the Nyström solve; by default 20,000 (at most the training
        molecules left after the hold-out).
    conformers : {"first", "average"}, default="first"
        For molecules with several conformers (``ConformerFeaturizer(n_conformers=k)``):
        their first geometry, or the kernel averaged over every pair of geometries (each
        atom weighs 1/k), in training and prediction alike. Averaging 4 ETKDG conformers
        lowered FreeSolv's test MAE on each of 10 random splits (by 8% on average, RMSE 3%)
        and solubility's RMSE by 1%, for 4x the embedding and 16x the kernel's work. Forces
        are those of each molecule's first geometry.
    progress : bool, optional
        A progress bar over the Nyström solve's blocks; None shows one when stderr is a
        terminal. Not a saved setting.
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

    Several geometries per molecule (``ConformerFeaturizer(n_conformers=k)`` gives them):
    ``conformers="average"`` compares molecules by the mean kernel over pairs of geometries.

    >>> def h2_pair(r):
    ...     pair = h2(r)
    ...     return Conformer(pair.positions, pair.features, [1, 1],
    ...                      ensemble=np.stack([pair.positions, h2(r + 0.02).positions]))
    >>> X[:] = [h2_pair(r) for r in lengths]
    >>> averaged = KernelModel(sigma=0.5, regularization=1e-10, conformers="average")
    >>> _ = averaged.fit(dc.data.NumpyDataset(X, (lengths - 0.74) ** 2))
    >>> averaged.hyperparameters["conformers"]
    'average'
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
        regularizations: Optional[Sequence[float]] = None,
        search_size: int = 4_000,
        pca_tolerance: float = 1e-6,
        representation: Optional[dict[str, float]] = None,
        memory_mb: int = 256,
        seed: int = 0,
        solver: str = "auto",
        landmarks: Optional[int] = None,
        conformers: str = "first",
        progress: Optional[bool] = None,
        model_dir: Optional[str] = None,
        device: Union[str, torch.device, None] = None,
    ) -> None:
        #: The checked settings; ``hyperparameters`` is their JSON form, saved by `save`.
        self.settings = KernelSettings(
            n_tasks=n_tasks, sigma=sigma, regularization=regularization, sigmas=sigmas,
            regularizations=regularizations, search_size=search_size,
            pca_tolerance=pca_tolerance, representation=representation, memory_mb=memory_mb,
            seed=seed, solver=solver, landmarks=landmarks, conformers=conformers,
        )  # fmt: skip
        self.progress = check_bool(progress, "progress", optional=True)
        self.device = resolve_device(device)
        super().__init__(model_dir=model_dir)
        self.n_tasks = self.settings.n_tasks
        self.representation = self.settings.fchl19
        self.hyperparameters = self.settings.to_dict()
        self.memory_bytes = self.settings.memory_bytes
        #: What fit chose and measured (elements, sigma, regularization, search table, ...).
        self.fitted: Optional[dict[str, Any]] = None
        self._trained: Optional[TrainedKernel] = None

    # ---- fit -----------------------------------------------------------------------------

    @blas_on_one_thread
    def fit(self, dataset: Any, valid: Any = None) -> float:
        """Fit offsets, choose ``sigma`` and ``regularization`` unless given, and solve.

        Parameters
        ----------
        dataset : dc.data.Dataset
            Training molecules (`Conformer`s) with one label per task each.
        valid : dc.data.Dataset, optional
            Choose on this validation set (fitting on ``dataset`` alone) instead of by
            leave-one-out on ``dataset``. Its molecules with an element not in ``dataset``
            are left out of the choice, with a ``UserWarning``.

        Returns
        -------
        float
            Selection MAE (leave-one-out or on ``valid``, ``y`` units, mean over tasks) of the
            chosen settings; NaN when nothing was searched (both given, or fewer than 10
            molecules).
        """
        start = time.perf_counter()
        X, ids = dataset.X, dataset.ids
        y = check_labels(dataset, self.n_tasks, every_label=True)
        stacked, name = stack_dataset(X, ids)
        keep = None
        if valid is None and not (self.settings.sigma and self.settings.regularization):
            # Chosen on the training molecules: a copy must not score its twin.
            keep, y = _merged_copies(stacked, y, name)
        if keep is not None:
            X, ids, stacked = X[keep], None if ids is None else ids[keep], stacked.select(keep)
            name = _renamed(name, keep)
        elements = np.unique(stacked.atomic_numbers)
        index = element_index(stacked.atomic_numbers, stacked.counts, elements, name)
        every, every_index, parent = self._geometries(X, ids, stacked, index, elements, name)
        projection, sets = self._atom_sets(every, every_index, len(elements))
        sets = _averaged(sets, parent)
        counts = solve.dressed_counts(
            element_counts(index, stacked.molecule, len(y), len(elements)), y
        )
        holdout = None
        if valid is not None:
            holdout = self._holdout(valid, elements, projection, counts.shape[1])
        solver = self.settings.solver_for(len(y))
        if solver == "nystrom":
            return self._fit_nystrom(sets, counts, y, holdout, elements, projection, start)
        choice = search.choose(sets, counts, y, self.settings, holdout)
        search.warn_edges(choice.edges)
        offsets = solve.offsets(counts, y)
        alpha = choice.alpha
        if alpha is None:
            alpha = solve.solve(choice.kernel, choice.regularization, y - counts @ offsets)
        del choice.kernel
        self._elements = elements
        self._trained = TrainedKernel(
            self.representation, projection, sets, offsets, alpha, choice.sigma,
            self.memory_bytes,
        )  # fmt: skip
        selection = ("validation set" if holdout else "leave-one-out") if choice.table else None
        self.fitted = _fitted(
            elements, projection, len(y), choice.sigma, choice.regularization, selection,
            choice.mae, choice.rmse, choice.edges, choice.table, start, solver="exact",
            offsets_constant=counts.shape[1] > len(elements),
        )  # fmt: skip
        return choice.mae

    def _atom_sets(
        self, stacked: Molecules, index: np.ndarray, n_elements: int
    ) -> tuple[Projection, list[AtomSet]]:
        """The projection and the projected training atoms per element, the FCHL19 vectors
        computed `_CHUNK` molecules at a time so that memory holds only projected ones."""
        tolerance, n = self.settings.pca_tolerance, len(stacked)

        def vectors_of(part: Molecules, part_index: np.ndarray) -> torch.Tensor:
            return atom_vectors(
                self.representation, part.positions, part_index, part.counts, n_elements,
                self.device,
            )  # fmt: skip

        if n <= _CHUNK:
            vectors = vectors_of(stacked, index)
            projection = Projection.fit(vectors, index, n_elements, tolerance)
            return projection, projection.atom_sets(vectors, index, stacked.molecule)
        rng = np.random.default_rng(self.settings.seed)
        sample = np.sort(rng.choice(n, _CHUNK, replace=False))
        in_sample = np.isin(stacked.molecule, sample)
        # A rare element the draw missed would have no projection: its molecules join.
        missing = np.setdiff1d(np.arange(n_elements), index[in_sample])
        if len(missing):
            sample = np.union1d(sample, stacked.molecule[np.isin(index, missing)])
            in_sample = np.isin(stacked.molecule, sample)
        vectors = vectors_of(stacked.select(sample), index[in_sample])
        projection = Projection.fit(vectors, index[in_sample], n_elements, tolerance)
        del vectors
        pieces: list[list[AtomSet]] = [[] for _ in range(n_elements)]
        ends = stacked.ends
        for first in range(0, n, _CHUNK):
            last = min(n, first + _CHUNK)
            atoms = slice(int(ends[first - 1]) if first else 0, int(ends[last - 1]))
            part = stacked.range(first, last)
            vectors = vectors_of(part, index[atoms])
            for e, mine in enumerate(projection.atom_sets(vectors, index[atoms], part.molecule)):
                pieces[e].append(AtomSet(mine.vectors, mine.molecule + first))
        sets = [
            AtomSet(torch.cat([a.vectors for a in p]), np.concatenate([a.molecule for a in p]))
            for p in pieces
        ]
        return projection, sets

    def _fit_nystrom(
        self,
        sets: list[AtomSet],
        counts: np.ndarray,
        y: np.ndarray,
        holdout: Optional[Holdout],
        elements: np.ndarray,
        projection: Projection,
        start: float,
    ) -> float:
        """`fit` by the Nyström solve: width from the search, ``lambda`` walked on a
        validation set, coefficients of the landmark molecules."""
        s = self.settings
        choice = search.choose(sets, counts, y, s, holdout, width_only=True)
        offsets = solve.offsets(counts, y)
        if s.regularization:
            regs, relative, first = np.array([s.regularization]), False, 0
        elif s.regularizations is not None:
            regs, relative = np.array(sorted(s.regularizations)), False
            first = len(regs) // 2
        else:
            # A decade below the exact search's choice: with QM9 at 10,000 molecules and
            # 5,000 landmarks the Nystrom optimum lay there (3e-7 against 4e-6).
            regs, relative = np.array(RELATIVE_REGULARIZATIONS), True
            first = max(0, choice.relative - 4)
        target = None if holdout is None else holdout.y - holdout.counts @ offsets
        holding_out = holdout is None and len(regs) > 1
        n_landmarks = nystrom.landmark_count(len(y), s.landmarks, holding_out)
        show = self.progress if self.progress is not None else sys.stderr.isatty()
        result = nystrom.fit(
            sets, y - counts @ offsets, choice.sigma, regs, relative, first, n_landmarks,
            s.seed, self.memory_bytes, holdout, target, show,
        )  # fmt: skip
        edges = list(choice.edges)
        if result.at_edge and not s.regularization:
            edges += search.edges_of_regularization(
                result.regularization, [row["regularization"] for row in result.table]
            )
        search.warn_edges(edges)
        self._elements = elements
        self._trained = TrainedKernel(
            self.representation, projection, result.sets, offsets, result.alpha,
            choice.sigma, self.memory_bytes,
        )  # fmt: skip
        selection = None
        if result.table:
            selection = "validation set" if holdout else "held-out training molecules"
        table = choice.table + [
            {**row, "sigma": choice.sigma, "n_train": len(y), "landmarks": n_landmarks}
            for row in result.table
        ]
        self.fitted = _fitted(
            elements, projection, len(y), choice.sigma, result.regularization, selection,
            result.mae, result.rmse, edges, table, start, solver="nystrom",
            landmarks=n_landmarks, offsets_constant=counts.shape[1] > len(elements),
        )  # fmt: skip
        return result.mae if result.table else np.nan

    def _holdout(
        self, valid: Any, elements: np.ndarray, projection: Projection, n_offsets: int
    ) -> Holdout:
        """The validation set's checked labels, counts (the basis of ``n_offsets`` offsets)
        and projected atoms."""
        y = check_labels(valid, self.n_tasks, every_label=True)
        X, ids = valid.X, valid.ids
        stacked, name = stack_dataset(X, ids)
        skipped = unsupported(stacked, elements)
        if skipped:
            _warn_unsupported(skipped, name, "left out of the choice on the validation set")
            keep = np.setdiff1d(np.arange(len(y)), list(skipped))
            stacked, y, X = stacked.select(keep), y[keep], X[keep]
            ids = None if ids is None else ids[keep]
        index = element_index(stacked.atomic_numbers, stacked.counts, elements, name)
        counts = solve.with_constant(
            element_counts(index, stacked.molecule, len(y), len(elements)), n_offsets
        )
        every, index, parent = self._geometries(X, ids, stacked, index, elements, name)
        vectors = atom_vectors(
            self.representation, every.positions, index, every.counts, len(elements),
            self.device,
        )  # fmt: skip
        sets = projection.atom_sets(vectors, index, every.molecule)
        return Holdout(_averaged(sets, parent), counts, y)

    def _geometries(
        self,
        X: Any,
        ids: Any,
        stacked: Molecules,
        index: np.ndarray,
        elements: np.ndarray,
        name: Callable[[int], str],
    ) -> tuple[Molecules, np.ndarray, Optional[np.ndarray]]:
        """The molecules whose atoms enter the kernel, their atoms' element index and the
        input molecule of each: every geometry when conformers are averaged and some input
        has several, else ``stacked`` itself (parent None)."""
        if self.settings.conformers != "average":
            return stacked, index, None
        geometries = stack_geometries(X, ids)
        if geometries is None:
            return stacked, index, None
        every, parent = geometries
        every_index = element_index(
            every.atomic_numbers, every.counts, elements, lambda k: name(int(parent[k]))
        )
        return every, every_index, parent

    def _check_fitted(self) -> TrainedKernel:
        if self._trained is None:
            raise ValueError("this KernelModel is not fitted: call fit(dataset) or load_model")
        return self._trained

    # ---- predict -------------------------------------------------------------------------

    def unsupported(self, molecules: Any) -> dict[int, str]:
        """Molecules of ``molecules`` (a `Molecules` stack, a dataset or `Conformer`s) this
        model cannot predict, each with a one-line reason.

        A kernel model has nothing to compare an atom of an element it was never trained on
        with: ``{3: "element Na (Z=11) not in the training set"}``. `predict` gives NaN for
        these molecules.
        """
        self._check_fitted()
        return unsupported(as_molecules(molecules), self._elements)

    @blas_on_one_thread
    def predict(self, dataset: Any, transformers: Sequence[Any] = ()) -> np.ndarray:
        """Predictions of shape (n_molecules, n_tasks), with ``transformers`` undone.

        A molecule with an element not in the training set gets NaN (a ``UserWarning``
        counts them and names the elements and the first molecules; `unsupported` lists
        them with reasons): the model has no training atoms to compare such atoms with.
        """
        self._check_fitted()
        stacked, name = stack_dataset(dataset.X, dataset.ids)
        geometries = None
        if self.settings.conformers == "average":
            geometries = stack_geometries(dataset.X, dataset.ids)
        if geometries is None:
            out = self._predict_molecules(stacked, name)
        else:
            out = self._predict_averaged(stacked, name, *geometries)
        return dc.trans.undo_transforms(out, list(transformers)) if transformers else out

    def _predict_averaged(
        self, stacked: Molecules, name: Callable[[int], str], every: Molecules, parent: np.ndarray
    ) -> np.ndarray:
        """Predictions as the mean over each molecule's geometries (the averaged kernel is
        linear in the test molecule's geometries); NaN as in `predict`."""
        out = np.full((len(stacked), self.n_tasks), np.nan)
        skipped = unsupported(stacked, self._elements)
        if skipped:
            _warn_unsupported(skipped, name, "predicted as NaN")
        known = ~np.isin(parent, list(skipped))
        if not known.any():
            return out
        keep = np.flatnonzero(known)
        values = self._predict_molecules(every.select(keep), lambda k: name(int(parent[keep[k]])))
        sums = np.zeros_like(out)
        np.add.at(sums, parent[keep], values)
        present = np.unique(parent[keep])
        out[present] = sums[present] / np.bincount(parent)[present, None]
        return out

    def _predict_molecules(
        self,
        molecules: Molecules,
        name: Callable[[int], str],
        forces_task: Optional[int] = None,
    ) -> np.ndarray:
        """(n_molecules, n_tasks) predictions, or (n_total, 3) forces of ``forces_task``;
        NaN for molecules with an element not in the training set."""
        trained = self._check_fitted()
        skipped = unsupported(molecules, self._elements)
        if skipped:
            _warn_unsupported(skipped, name, "predicted as NaN")
            keep = np.setdiff1d(np.arange(len(molecules)), list(skipped))
            known = molecules.select(keep)
            part = self._predict_molecules(known, lambda k: name(int(keep[k])), forces_task)
            if forces_task is None:
                out = np.full((len(molecules), self.n_tasks), np.nan)
                out[keep] = part
            else:
                out = np.full((len(molecules.atomic_numbers), 3), np.nan)
                out[np.repeat(np.isin(np.arange(len(molecules)), keep), molecules.counts)] = part
            return out
        index = element_index(molecules.atomic_numbers, molecules.counts, self._elements, name)
        if forces_task is not None:
            return trained.forces(molecules.positions, index, molecules.counts, forces_task)
        return trained.energies(molecules.positions, index, molecules.counts)

    @blas_on_one_thread
    def predict_molecules(
        self,
        molecules: Molecules,
        *,
        forces: bool = False,
        task: int = 0,
        batch_atoms: int = 32_768,
    ) -> np.ndarray:
        """Predictions (or forces) for a stack of molecules (the `MoleculeModel` contract;
        `predict_arrays` takes them as plain arrays).

        Features are ignored: the kernel reads elements and geometry only. Molecules with
        an element not in the training set give NaN, as in `predict`.

        Returns
        -------
        np.ndarray
            (n_molecules, n_tasks) predictions, or (n_total, 3) forces ``-dE_task/dR``.
        """
        self._check_fitted()
        if forces:
            check_task(task, self.n_tasks)
        out, first = [], 0
        for part in molecules.batches(batch_atoms):
            out.append(
                self._predict_molecules(
                    part, lambda k, first=first: f"molecule {first + k}",
                    task if forces else None,
                )
            )  # fmt: skip
            first += len(part)
        return np.concatenate(out)

    @blas_on_one_thread
    def predict_forces(
        self, dataset: Any, transformers: Sequence[Any] = (), task: int = 0
    ) -> list[np.ndarray]:
        """Forces ``F = -dE/dR``, one (n_atoms, 3) array per molecule, in y's units per Å
        (linear ``transformers`` applied to y are undone); NaN as in `predict`."""
        self._check_fitted()
        check_task(task, self.n_tasks)
        stacked, name = stack_dataset(dataset.X, dataset.ids)
        scale = transform_scale(list(transformers), self.n_tasks)[task]
        return stacked.split(scale * self._predict_molecules(stacked, name, task))

    # ---- persistence ---------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """Settings and fitted scalars, as JSON-compatible data (the device is not one)."""
        return {
            "class": type(self).__name__,
            "hyperparameters": self.hyperparameters,
            "fitted": self.fitted,
        }

    def save(self) -> None:
        """Write settings (JSON) and arrays (``.npz``, no pickles) to ``model_dir``."""
        trained = self._check_fitted()
        store.write(self.model_dir, self.get_config(), trained.to_arrays(self._elements))

    save_checkpoint = save

    @classmethod
    def load(cls, model_dir: str, **overrides: Any) -> KernelModel:
        """The model saved in ``model_dir`` (as `load_model` does for every model).

        ``overrides`` replace constructor settings that do not change the fitted model:
        ``device`` and ``memory_mb``.
        """
        return store.load(cls, model_dir, overrides)


def _fitted(
    elements: np.ndarray,
    projection: Projection,
    n_train: int,
    sigma: float,
    regularization: float,
    selection: Optional[str],
    mae: float,
    rmse: float,
    edges: list[str],
    table: list[dict[str, Any]],
    start: float,
    **solve: Any,
) -> dict[str, Any]:
    """``KernelModel.fitted``: what fit chose and measured, as JSON-compatible data;
    ``selection`` None when nothing was searched (no selection errors then), ``solve`` the
    solve's own entries."""
    return {
        "elements": [int(z) for z in elements],
        "sigma": sigma,
        "regularization": regularization,
        "selection": selection,
        "selection_mae": mae if selection else None,
        "selection_rmse": rmse if selection else None,
        "edges": edges,
        "search": table,
        "n_train": n_train,
        "dimensions": [int(a.shape[1]) for a in projection.axes],
        **solve,
        "fit_seconds": time.perf_counter() - start,
    }


def _merged_copies(
    stacked: Molecules, y: np.ndarray, name: Callable[[int], str]
) -> tuple[Optional[np.ndarray], np.ndarray]:
    """The molecules to fit (None: all) and their labels, each group of exact copies (same
    atoms, same coordinates: the same SMILES featurized twice) kept once on its mean label.

    Leave-one-out (and the Nyström solve's held-out molecules) would predict each copy from
    its twin: a score near 0 for the narrowest width and no regularization, a fit that
    interpolates the labels' noise (QM9 with noisy labels, each molecule twice: test MAE 0.82
    against 0.47). With the width and regularization given, copies weigh as usual.
    """
    groups: dict[tuple[bytes, bytes], list[int]] = {}
    for k, atoms in enumerate(stacked.slices()):
        key = (stacked.atomic_numbers[atoms].tobytes(), stacked.positions[atoms].tobytes())
        groups.setdefault(key, []).append(k)
    copies = [g for g in groups.values() if len(g) > 1]
    if not copies:
        return None, y
    keep = np.array(sorted(g[0] for g in groups.values()))
    merged = y.copy()
    for group in copies:
        merged[group[0]] = y[group].mean(axis=0)
    shown = "; ".join(", ".join(name(k) for k in g[:3]) for g in copies[:3])
    warnings.warn(
        f"KernelModel: {sum(len(g) - 1 for g in copies)} training molecule(s) are exact copies "
        f"of others ({shown}{'; ...' if len(copies) > 3 else ''}); each is fitted once, on the "
        "mean of its labels (leave-one-out would predict a copy from its twin)",
        UserWarning,
        stacklevel=3,
    )
    return keep, merged[keep]


def _renamed(name: Callable[[int], str], keep: np.ndarray) -> Callable[[int], str]:
    """``name`` of the molecules ``keep``, by their new index."""
    return lambda k: name(int(keep[k]))


def _warn_unsupported(skipped: dict[int, str], name: Callable[[int], str], what: str) -> None:
    warn_unsupported(
        "KernelModel", skipped, what, "a kernel model has no training atoms to compare theirs "
        "with", name, stacklevel=5,
    )  # fmt: skip


MODEL_CLASSES[KernelModel.__name__] = KernelModel


def _averaged(sets: list[AtomSet], parent: Optional[np.ndarray]) -> list[AtomSet]:
    """Atoms of every geometry as atoms of their input molecule, each weighing 1/k (k: the
    molecule's geometries), so that kernel sums are means over pairs of geometries; ``sets``
    unchanged when ``parent`` is None (one geometry per molecule)."""
    if parent is None:
        return sets
    weight = 1.0 / np.bincount(parent)
    return [AtomSet(a.vectors, parent[a.molecule], weight[parent[a.molecule]]) for a in sets]
