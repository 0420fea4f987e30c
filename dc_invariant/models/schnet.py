"""SchNet: continuous-filter convolutions on interatomic distances (Schütt et al., 2018).

DeepChem 2.8 has no SchNet; this one works on `Conformer` datasets like every other
dc_invariant model, with neighbour lists so that memory follows the number of atom pairs
inside the cutoff rather than a padded n_max² tensor.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import torch

from dc_invariant.conformer import Conformer
from dc_invariant.models.base import Batch, InvariantModel
from dc_invariant.models.batching import check_labels, label_weights
from dc_invariant.models.elements import (
    as_molecules,
    takes_constant,
    unsupported,
    warn_unsupported,
)
from dc_invariant.models.elementwise import exp_, softplus_
from dc_invariant.models.pooling import sum_over_molecules
from dc_invariant.models.runtime import RUNTIME
from dc_invariant.models.settings import SchNetSettings
from dc_invariant.molecules import Molecules
from dc_invariant.neighbors import stacked_neighbor_pairs

__all__ = [
    "Interaction",
    "SCALE_FLOOR",
    "SchNetModel",
    "SchNetNetwork",
    "shifted_softplus",
]


def shifted_softplus(x: torch.Tensor) -> torch.Tensor:
    """``softplus(x) - log 2``: smooth like softplus and zero at zero, as in SchNet."""
    return torch.nn.functional.softplus(x) - math.log(2.0)


class _SSP(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shifted_softplus(x)


def _two_layers(
    mlp: torch.nn.Sequential,
    x: torch.Tensor,
    out: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
) -> torch.Tensor:
    """``mlp(x)`` for ``Linear -> _SSP -> Linear``, with the shift folded into the last bias.

    ``W (softplus(z) - log 2) + b = W softplus(z) + (b - log 2 · Σ_k W_:k)``: the same
    function without a pass over every (pair, filter) value to subtract the constant, the
    costliest element-wise step after the products (benchmarks/schnet.py). With ``out``
    (two tensors of the output's shape, no autograd) the hidden values go into the first
    and the result into the second; the operations are the same, and so are the numbers.
    """
    first, last = mlp[0], mlp[2]
    bias = last.bias - math.log(2.0) * last.weight.sum(dim=1)
    if out is None:
        hidden = torch.nn.functional.softplus(first(x))
        return torch.addmm(bias, hidden, last.weight.T)
    hidden, result = out
    torch.addmm(first.bias, x, first.weight.T, out=hidden)
    softplus_(hidden)
    return torch.addmm(bias, hidden, last.weight.T, out=result)


class Interaction(torch.nn.Module):
    """One SchNet interaction block: a continuous-filter convolution and an atom-wise MLP."""

    def __init__(self, n_atom_basis: int, n_filters: int, n_rbf: int) -> None:
        super().__init__()
        self.filter = torch.nn.Sequential(
            torch.nn.Linear(n_rbf, n_filters), _SSP(), torch.nn.Linear(n_filters, n_filters)
        )
        self.in2f = torch.nn.Linear(n_atom_basis, n_filters, bias=False)
        self.f2out = torch.nn.Sequential(
            torch.nn.Linear(n_filters, n_atom_basis),
            _SSP(),
            torch.nn.Linear(n_atom_basis, n_atom_basis),
        )

    def forward(
        self,
        h: torch.Tensor,
        rbf: torch.Tensor,
        envelope: torch.Tensor,
        i: torch.Tensor,
        j: torch.Tensor,
        work: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> torch.Tensor:
        """The block's update of ``h``; ``work``: two (n_pairs, n_filters) tensors that take
        every (pair, filter) value, for inference without autograd."""
        # Filters depend on distance only, so each unordered pair (i < j) is evaluated once
        # and sends its message both ways: half the cost of the filter network.
        weights = _two_layers(self.filter, rbf, work).mul_(envelope.unsqueeze(-1))
        x = self.in2f(h)
        messages = torch.zeros_like(x)
        for source, target in ((j, i), (i, j)):
            sent = x[source] if work is None else torch.index_select(x, 0, source, out=work[0])
            messages = messages.index_add_(0, target, sent.mul_(weights))
        return _two_layers(self.f2out, messages)


#: Least output scale of the network's part, as a share of the training labels' spread (per
#: atom for sum pooling). Offsets fitted to a handful of molecules can explain the labels
#: exactly; the scale then stays at this floor instead of ~0 (a geometry-blind model).
SCALE_FLOOR = 0.01


class _PairScratch(threading.local):
    """Pair-sized tensors kept from one inference batch to the next, one set per thread.

    Fresh (pairs, n_filters) tensors for every batch are what the allocator handles worst:
    a few MB each, of a different size every batch, so the freed ones stay in the heap as
    fragments and a 3,000-molecule audit's peak drifted between 0.9 and 1.2 GiB from run to
    run. Reused tensors keep the pair working set at the largest batch's, and spare the
    page faults of touching new memory. They grow by a quarter over the largest batch seen,
    so slightly larger batches reuse them too, up to ``RUNTIME.schnet_keep_bytes`` each.
    """

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}

    def __reduce__(self) -> tuple[type, tuple[()]]:
        # A copied or pickled network (Dask sends models to its workers) starts empty.
        return (type(self), ())

    def take(self, name: str, rows: int, columns: int, like: torch.Tensor) -> torch.Tensor:
        """A (rows, columns) tensor of ``like``'s dtype and device, reused where it fits."""
        kept = self.tensors.get(name)
        if (
            kept is not None
            and kept.shape[0] >= rows
            and kept.shape[1] == columns
            and kept.dtype == like.dtype
            and kept.device == like.device
        ):
            return kept[:rows]
        grown = rows + rows // 4
        if grown * columns * like.element_size() > RUNTIME.schnet_keep_bytes:
            return torch.empty(rows, columns, dtype=like.dtype, device=like.device)
        # Made outside inference mode even within it: a tensor made inside could not be
        # written to by a later prediction under plain no_grad.
        with torch.inference_mode(False):
            kept = torch.empty(grown, columns, dtype=like.dtype, device=like.device)
        self.tensors[name] = kept
        return kept[:rows]


class SchNetNetwork(torch.nn.Module):
    """SchNet over all atoms of a batch stacked together, with directed neighbour pairs.

    Inputs: positions (n_total, 3), features (n_total, F), atomic numbers (n_total,), atoms
    per molecule (B,), unordered neighbour pairs ``i < j`` (2, n_pairs). Output: (B, n_outputs).
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        *,
        n_atom_basis: int,
        n_filters: int,
        n_interactions: int,
        n_rbf: int,
        cutoff: float,
        pooling: str,
    ) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.pooling = pooling
        self.embedding = torch.nn.Linear(n_features, n_atom_basis, bias=False)
        spacing = cutoff / (n_rbf - 1)
        self.register_buffer("centers", torch.linspace(0.0, cutoff, n_rbf))
        self.gamma = 0.5 / spacing**2
        self.interactions = torch.nn.ModuleList(
            Interaction(n_atom_basis, n_filters, n_rbf) for _ in range(n_interactions)
        )
        self.readout = torch.nn.Sequential(
            torch.nn.Linear(n_atom_basis, n_atom_basis // 2),
            _SSP(),
            torch.nn.Linear(n_atom_basis // 2, n_outputs),
        )
        # Target statistics (per-element offsets and a scale), fitted on the training set
        # by SchNetModel.fit; stored here so they travel with the checkpoint.
        self.register_buffer("atom_offset", torch.zeros(119, n_outputs))
        # A constant per molecule (sum pooling), for labels a transformer shifted.
        self.register_buffer("molecule_offset", torch.zeros(n_outputs))
        self.register_buffer("scale", torch.ones(n_outputs))
        self.register_buffer("standardized", torch.zeros((), dtype=torch.bool))
        self._scratch = _PairScratch()

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        # Checkpoints saved before the constant existed fitted none: it is 0 for them.
        state_dict.setdefault(prefix + "molecule_offset", torch.zeros_like(self.molecule_offset))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(
        self,
        positions: torch.Tensor,
        features: torch.Tensor,
        atomic_numbers: torch.Tensor,
        counts: torch.Tensor,
        pairs: torch.Tensor,
    ) -> torch.Tensor:
        i, j = pairs[0], pairs[1]
        vectors = positions[j] - positions[i]
        # clamp keeps the gradient finite should two atoms ever coincide
        distances = torch.sqrt((vectors**2).sum(dim=-1).clamp_min(1e-12))
        envelope = 0.5 * (torch.cos(distances * (math.pi / self.cutoff)) + 1.0)
        envelope = envelope * (distances < self.cutoff).to(envelope.dtype)
        h = self.embedding(features)
        work = None
        # Gaussians of far pairs fall below the dtype's least normal number (float32: 4% of
        # QM9's pair values) and are set to zero, which changes no sum they enter: products
        # with subnormal operands run on the CPU's slow microcode path, and the filter
        # network's weight-gradient GEMM took 10 ms instead of 0.15 ms, and a one-thread
        # epoch 2.2x longer (benchmarks/schnet.py).
        tiny = torch.finfo(distances.dtype).tiny
        if torch.is_grad_enabled():
            rbf = torch.exp(-self.gamma * (distances.unsqueeze(-1) - self.centers) ** 2)
            rbf = rbf.masked_fill(rbf < tiny, 0.0)
        else:
            n_pairs, n_filters = len(i), self.interactions[0].in2f.out_features
            rbf = self._scratch.take("rbf", n_pairs, len(self.centers), distances)
            torch.sub(distances.unsqueeze(-1), self.centers, out=rbf)
            exp_(rbf.square_().mul_(-self.gamma))
            rbf.masked_fill_(rbf < tiny, 0.0)
            work = (
                self._scratch.take("hidden", n_pairs, n_filters, distances),
                self._scratch.take("weights", n_pairs, n_filters, distances),
            )
        for block in self.interactions:
            h = h + block(h, rbf, envelope, i, j, work)
        per_atom = _two_layers(self.readout, h) * self.scale + self.atom_offset[atomic_numbers]
        pooled = sum_over_molecules(per_atom, counts)
        if self.pooling == "mean":
            pooled = pooled / counts.unsqueeze(-1).to(pooled.dtype)
        else:
            pooled = pooled + self.molecule_offset
        if not self.training and bool(self.standardized):
            # An element without a fitted offset in a task was in no molecule labelled for
            # it: its atoms would add 0 where the offsets of others add eV. NaN, not a guess.
            unseen = (self.atom_offset == 0)[atomic_numbers]
            if bool(unseen.any()):
                holds = sum_over_molecules(unseen.to(pooled.dtype), counts) > 0
                pooled = pooled.masked_fill(holds, float("nan"))
        return pooled


class SchNetModel(InvariantModel):
    """SchNet, a continuous-filter convolutional network, as a DeepChem model.

    Atoms start from a linear embedding of their features ``x_i``; each of
    ``n_interactions`` blocks updates them with messages from neighbours ``j`` within
    ``cutoff``::

        h_i <- h_i + MLP( Σ_j  W(e(d_ij)) · f_cut(d_ij) ⊙ L(h_j) )

    where ``e(d)`` expands the distance in ``n_rbf`` Gaussians on [0, cutoff],
    ``f_cut(d) = ½(cos(π d / cutoff) + 1)`` brings every filter smoothly to zero at the
    cutoff, and ``W`` is a filter-generating MLP. Per-atom outputs
    ``scale · MLP(h_i) + offset(Z_i)`` are summed (``pooling="sum"``, for extensive targets
    such as energies) or averaged (``"mean"``, intensive targets such as the HOMO-LUMO gap).
    The model sees distances only, so it is invariant to permutations, translations,
    rotations and reflections; forces ``-dE/dR`` (`predict_forces`) are rotation-equivariant.

    Before the first training step of a regression model, ``offset(Z)`` is fitted by least
    squares of the labels on element counts and ``scale`` set to the spread of what remains
    per atom (``standardize=True``), so the network only learns the residual; both are saved
    with the weights. Coordinates are centred per molecule in float64 before the network
    sees them, so float32 models stay accurate far from the origin.

    Reference: K. T. Schütt, H. E. Sauceda, P.-J. Kindermans, A. Tkatchenko, K.-R. Müller,
    "SchNet - A deep learning architecture for molecules and materials",
    J. Chem. Phys. 148, 241722 (2018).

    Parameters
    ----------
    n_atom_basis : int, default=128
        Size of the atom representations.
    n_filters : int, default=128
        Size of the continuous filters.
    n_interactions : int, default=3
    n_rbf : int, default=50
        Gaussians in the distance expansion.
    cutoff : float, default=5.0
        Neighbour radius in Å.
    pooling : {"sum", "mean"}, default="sum"
    standardize : bool, default=True
        Fit per-element offsets and a scale on the first ``fit`` (regression only).
    n_tasks, n_features, mode, n_classes, dtype, seed
        As every model has them: see `ModelSettings`.
    **kwargs
        As for `RotationInvariantModel`.

    Examples
    --------
    >>> import numpy as np
    >>> from dc_invariant import Conformer
    >>> model = SchNetModel(n_features=2, n_atom_basis=16, n_filters=16)
    >>> water = Conformer(np.eye(3), np.array([[0, 1], [1, 0], [1, 0]]), [8, 1, 1])
    >>> model.predict_on_batch(np.array([water])).shape
    (1, 1)
    """

    # Every pair carries n_filters numbers through each interaction, in tensors reused from
    # batch to batch (_PairScratch). With ~8 unordered pairs per atom (QM9) and 128 float64
    # filters, 1,024 atoms make them ~8 MB, and the element-wise passes over them run mostly
    # from cache: 2,048 atoms took 10% longer, 4,096 atoms 19% longer.
    predict_batch_atoms = 1_024
    # The reused tensors are per thread (_PairScratch is a threading.local).
    thread_safe = True

    settings_class = SchNetSettings

    def build_network(self, settings: SchNetSettings) -> torch.nn.Module:
        return SchNetNetwork(
            settings.n_features,
            settings.n_outputs,
            n_atom_basis=settings.n_atom_basis,
            n_filters=settings.n_filters,
            n_interactions=settings.n_interactions,
            n_rbf=settings.n_rbf,
            cutoff=settings.cutoff,
            pooling=settings.pooling,
        )

    def make_batch(self, molecules: Molecules) -> Batch:
        counts = molecules.counts
        positions = molecules.centred_positions()
        pairs = stacked_neighbor_pairs(positions, counts, self.settings.cutoff, directed=False)
        inputs = [positions, molecules.features, molecules.atomic_numbers, counts, pairs]
        return Batch(inputs, counts, padded=False)

    def trained_elements(self) -> Optional[np.ndarray]:
        """Atomic numbers with a fitted offset in every task (those of the molecules
        labelled for each), or None before statistics were fitted (``standardize=False``,
        classification)."""
        network = self.model.network
        if not bool(network.standardized):
            return None
        return np.flatnonzero((network.atom_offset != 0).all(dim=1).cpu().numpy())

    def _unsupported(self, stacked: Molecules) -> dict[int, str]:
        """`unsupported` of a stack: an element in no labelled molecule, or (several tasks)
        in none labelled for one of the tasks."""
        in_every_task = self.trained_elements()
        if in_every_task is None:
            return {}
        in_some = (self.model.network.atom_offset != 0).any(dim=1).cpu().numpy()
        partly = unsupported(stacked, in_every_task, "the training labels of every task")
        return {**partly, **unsupported(stacked, np.flatnonzero(in_some))}

    def unsupported(self, molecules: Any) -> dict[int, str]:
        """Molecules (a `Molecules` stack, a dataset or `Conformer`s) with an element absent
        from the labelled training molecules, each with a reason: their predictions (and
        forces) are NaN, since the element has no offset.

        Examples
        --------
        >>> import deepchem as dc
        >>> from dc_invariant import ConformerFeaturizer
        >>> featurize = ConformerFeaturizer().featurize
        >>> model = SchNetModel(n_atom_basis=8, n_filters=8, n_interactions=1)
        >>> data = dc.data.NumpyDataset(featurize(["C", "CC", "CCO", "CCCO"]), [-17, -30, -40, -52])
        >>> _ = model.fit(data, nb_epoch=1)
        >>> model.unsupported(featurize(["CN", "CCO"]))
        {0: 'element N (Z=7) not in the training set'}
        """
        return self._unsupported(as_molecules(molecules))

    def predict(self, dataset: Any, transformers: Sequence[Any] = (), **kwargs: Any) -> Any:
        """DeepChem's ``predict``; molecules with an element the training labels never held
        are NaN, with a warning naming the elements."""
        self._warn_unsupported(dataset.X)
        return super().predict(dataset, list(transformers), **kwargs)

    def predict_molecules(self, molecules: Molecules, **kwargs: Any) -> np.ndarray:
        self._warn_unsupported(molecules)
        return super().predict_molecules(molecules, **kwargs)

    def predict_forces(self, dataset: Any, *args: Any, **kwargs: Any) -> list[np.ndarray]:
        self._warn_unsupported(getattr(dataset, "X", dataset))
        return super().predict_forces(dataset, *args, **kwargs)

    def _warn_unsupported(self, molecules: Any) -> None:
        if self.trained_elements() is None:
            return
        try:
            stacked = as_molecules(molecules)
        except TypeError:
            return  # not all Conformers: the batch checks name the bad one
        skipped = self._unsupported(stacked)
        if skipped:
            warn_unsupported(
                "SchNetModel", skipped, "predicted as NaN", "no offset was fitted for it",
                stacklevel=3,
            )  # fmt: skip

    def fit(self, dataset: Any, *args: Any, **kwargs: Any) -> float:
        """DeepChem's ``fit``; the first call of a regression model also fits target
        statistics, and a later one the offsets of elements new to it."""
        self._ensure_built()
        if self.settings.standardize and self.mode == "regression":
            y = check_labels(dataset, self.n_tasks)
            weights = label_weights(dataset, self.n_tasks)
            if self.model.network.standardized:
                self._fit_new_offsets(dataset.X, y, weights)
            else:
                self._fit_statistics(dataset.X, y, weights)
        return super().fit(dataset, *args, **kwargs)

    def _design(self, X: Any) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """Element counts per molecule (fractions for mean pooling) and atoms per molecule;
        None when a datapoint is not a Conformer (the batch checks name it)."""
        if len(X) == 0 or not all(isinstance(c, Conformer) for c in X):
            return None
        counts = np.zeros((len(X), 119))
        for row, c in enumerate(X):
            np.add.at(counts[row], c.atomic_numbers, 1.0)
        n_atoms = counts.sum(axis=1, keepdims=True)
        return (counts / n_atoms if self.settings.pooling == "mean" else counts), n_atoms

    def _fit_new_offsets(self, X: Any, y: np.ndarray, weights: np.ndarray) -> None:
        """Offsets of (element, task) pairs that molecules labelled for the task now hold
        and the first fit's did not, fitted (weighted) to what the known offsets leave of
        the labels; the known offsets stay as they are."""
        made = self._design(X)
        if made is None or self.trained_elements() is None:
            return
        design = made[0]
        network = self.model.network
        offsets = network.atom_offset.detach().cpu().numpy().astype(np.float64)
        changed = False
        for task in range(y.shape[1]):
            rows = weights[:, task] > 0
            new = design[rows].any(axis=0) & (offsets[:, task] == 0)
            if not new.any():
                continue
            rows &= design[:, new].any(axis=1)
            constant = float(network.molecule_offset[task])
            rest = y[rows, task] - design[rows] @ offsets[:, task] - constant
            offsets[new, task] = _least_squares(design[rows][:, new], rest, weights[rows, task])
            changed = True
        if changed:
            with torch.no_grad():
                network.atom_offset.copy_(torch.as_tensor(offsets, dtype=network.atom_offset.dtype))

    def _fit_statistics(self, X: Any, y: np.ndarray, weights: np.ndarray) -> None:
        """Offsets and scale per task from the molecules whose label it has, as the loss
        weighs them (weight 0: a missing label is a placeholder, usually 0, the loss skips)."""
        made = self._design(X)
        if made is None:
            return
        design, n_atoms = made
        present = design[(weights > 0).any(axis=1)].any(axis=0)
        offsets = np.zeros((int(present.sum()), y.shape[1]))
        constant = np.zeros(y.shape[1])
        scale, floor = np.ones(y.shape[1]), np.ones(y.shape[1])
        for task in range(y.shape[1]):
            rows = weights[:, task] > 0
            if not rows.any():
                continue
            a, t, w = design[rows][:, present], y[rows, task], weights[rows, task]
            offsets[:, task] = _least_squares(a, t, w)
            residual = t - a @ offsets[:, task]
            if self.settings.pooling == "sum":  # mean pooling holds a constant already
                ones = np.column_stack([a, np.ones(len(a))])
                both = _least_squares(ones, t, w)
                rest = t - ones @ both
                if takes_constant(_weighted_std(residual, w, 0.0), _weighted_std(rest, w, 0.0)):
                    offsets[:, task], constant[task], residual = both[:-1], both[-1], rest
            sizes = n_atoms[rows, 0]
            per_atom = residual if self.settings.pooling == "mean" else residual / sizes
            scale[task] = _weighted_std(per_atom, w)
            # The scale is a buffer training never changes: offsets that explain the labels
            # (a few molecules, one per element mix) would leave it ~0 and the network's
            # part, geometry included, silenced for good. It is held to a share of the
            # labels' spread.
            labels = t if self.settings.pooling == "mean" else t / sizes
            spread = _weighted_std(labels, w)
            typical = np.average(np.abs(labels), weights=w)
            floor[task] = SCALE_FLOOR * (spread if spread > 0 else typical) or 1.0
        if (scale < floor).any():
            warnings.warn(
                "SchNetModel: the per-element offsets alone explain the training labels "
                f"(residual spread {scale.max():.3g}); the network's output scale is held at "
                f"{SCALE_FLOOR:g} of the labels' spread so that it still learns from the "
                "geometry. With so few molecules per element mix, expect little to learn.",
                UserWarning,
                stacklevel=3,
            )
        scale = np.maximum(scale, floor)
        network = self.model.network
        device, dtype = network.atom_offset.device, network.atom_offset.dtype
        with torch.no_grad():
            network.atom_offset.zero_()
            rows = torch.as_tensor(np.flatnonzero(present), device=device)
            network.atom_offset[rows] = torch.as_tensor(offsets, dtype=dtype, device=device)
            network.molecule_offset.copy_(torch.as_tensor(constant, dtype=dtype, device=device))
            network.scale.copy_(torch.as_tensor(scale, dtype=dtype, device=device))
            network.standardized.fill_(True)


def _least_squares(design: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-element offsets fitting ``target`` with each row weighted as the loss weighs it;
    a small ridge keeps the solve stable when two elements always occur together, and gives
    exactly 0 to an element of no row (which `SchNetModel.trained_elements` reads as unseen)."""
    weighted = design * weights[:, None]
    gram = weighted.T @ design + 1e-8 * np.eye(design.shape[1])
    return np.linalg.solve(gram, weighted.T @ target)


def _weighted_std(values: np.ndarray, weights: np.ndarray, mean: Optional[float] = None) -> float:
    """Standard deviation of ``values`` with ``weights`` (all 1: NumPy's ``std``); around
    ``mean`` when given (0: the root mean square)."""
    if mean is None:
        mean = np.average(values, weights=weights)
    return float(np.sqrt(np.average((values - mean) ** 2, weights=weights)))
