"""`InvariantModel`: the DeepChem `TorchModel` plumbing shared by every dc_invariant model.

Datasets hold `Conformer` datapoints; this module turns batches of them into tensors (after
checking them), keeps float64 when asked (DeepChem casts to float32), shuffles with a seeded
generator, saves settings as JSON beside the checkpoints, restores with
``torch.load(weights_only=True)``, and computes forces by autograd.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import torch

from dc_invariant._deepchem import import_deepchem
from dc_invariant.conformer import Conformer

dc = import_deepchem()

CONFIG_FILE = "dc_invariant_model.json"
MODES = ("regression", "classification")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}

# Constructor arguments of TorchModel that users may pass through; the rest are ours to set.
_TORCH_MODEL_KWARGS = frozenset(inspect.signature(dc.models.TorchModel.__init__).parameters) - {
    "self",
    "model",
    "loss",
    "output_types",
    "kwargs",
} | {"model_dir"}

#: Every model class that `load_model` may rebuild, by name (filled by subclasses).
MODEL_CLASSES: dict[str, type] = {}


@dataclass
class Batch:
    """Network inputs for a batch of molecules, and how to map per-atom arrays back."""

    inputs: list[np.ndarray]
    n_atoms: np.ndarray
    #: position of the coordinate tensor in ``inputs`` (forces differentiate against it)
    positions_input: int = 0
    #: coordinates are padded (B, n_max, 3) rather than all atoms stacked (n_total, 3)
    padded: bool = True

    def split_atoms(self, values: np.ndarray) -> list[np.ndarray]:
        """Per-molecule arrays (n_atoms, ...) from a padded (B, n_max, ...) or flat array."""
        if self.padded:
            return [values[b, :n] for b, n in enumerate(self.n_atoms)]
        return np.split(values, np.cumsum(self.n_atoms)[:-1])


@dataclass
class Stacked:
    """A validated batch of molecules with all atoms stacked: (n_total, ...) arrays."""

    positions: np.ndarray
    features: np.ndarray
    atomic_numbers: np.ndarray
    counts: np.ndarray

    @property
    def starts(self) -> np.ndarray:
        """Index of each molecule's first atom in the stacked arrays."""
        return np.cumsum(self.counts) - self.counts

    @property
    def molecule(self) -> np.ndarray:
        """Molecule of every stacked atom, shape (n_total,)."""
        return np.repeat(np.arange(len(self.counts)), self.counts)

    def centred_positions(self) -> np.ndarray:
        """Coordinates with each molecule's centroid at the origin, in float64.

        For networks that see only differences: centring before any cast to float32 keeps
        them exact far from the origin (1,000 Å out, float32 keeps only ~1e-4 Å).
        """
        centres = np.add.reduceat(self.positions, self.starts, axis=0) / self.counts[:, None]
        return self.positions - np.repeat(centres, self.counts, axis=0)


def stack_conformers(
    items: Sequence[Any],
    n_features: int,
    name: Callable[[int], str],
    n_atoms_limit: Optional[int] = None,
) -> Stacked:
    """Validate a batch of datapoints and stack their atoms.

    Raises ``ValueError`` naming the bad molecule (``name(k)`` labels item ``k``): not a
    `Conformer`, wrong feature width, no atoms, too many atoms, NaN or infinite values.
    """
    conformers = list(items)
    for k, item in enumerate(conformers):
        if not isinstance(item, Conformer):
            raise ValueError(
                f"molecule {name(k)} is {type(item).__name__}, not a Conformer; an empty array "
                "marks a molecule the featurizer could not handle: drop those before training"
            )
    # Checked as arrays (a Python test per molecule cost as much as the network's work);
    # only a failure pays for finding the molecule and the reason.
    positions = [c.positions for c in conformers]
    features = [c.features for c in conformers]
    counts = np.fromiter(map(len, positions), np.int64, len(conformers))
    widths = np.fromiter((f.shape[1] for f in features), np.int64, len(conformers))
    limit = np.iinfo(np.int64).max if n_atoms_limit is None else n_atoms_limit
    for k in np.flatnonzero((widths != n_features) | (counts == 0) | (counts > limit))[:1]:
        item = conformers[k]
        if widths[k] != n_features:
            raise ValueError(
                f"molecule {name(k)} ({item.smiles!r}) has {widths[k]} features "
                f"per atom, the model expects n_features={n_features}"
            )
        if counts[k] == 0:
            raise ValueError(f"molecule {name(k)} ({item.smiles!r}) has no atoms")
        raise ValueError(
            f"molecule {name(k)} ({item.smiles!r}) has {counts[k]} atoms, more than this "
            f"model's n_atoms={n_atoms_limit} (the dense network's input size is fixed)"
        )
    stacked = Stacked(
        np.concatenate(positions),
        np.concatenate(features),
        np.concatenate([c.atomic_numbers for c in conformers]),
        counts,
    )
    for what, values in (("coordinates", stacked.positions), ("features", stacked.features)):
        if np.isfinite(values).all():
            continue
        finite = np.isfinite(values).all(axis=1)
        k = int(np.searchsorted(np.cumsum(counts), np.flatnonzero(~finite)[0], side="right"))
        raise ValueError(
            f"molecule {name(k)} ({conformers[k].smiles!r}) has NaN or infinite {what}"
        )
    return stacked


def check_hyperparameters(h: dict[str, Any]) -> None:
    """Validate the settings every model shares; subclasses call it before building."""
    for name in ("n_tasks", "n_features", "n_classes", "seed"):
        value = h[name]
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if value < (0 if name == "seed" else 1):
            raise ValueError(f"{name} must be >= {0 if name == 'seed' else 1}, got {value}")
    if h["mode"] not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {h['mode']!r}")
    if h["mode"] == "classification" and h["n_classes"] < 2:
        raise ValueError(f"classification needs n_classes >= 2, got {h['n_classes']}")
    if h["dtype"] not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {h['dtype']!r}")


class InvariantModel(dc.models.TorchModel):
    """Base class: a DeepChem `TorchModel` over datasets of `Conformer` datapoints.

    Subclasses validate their settings with `check_hyperparameters`, build the torch network
    and say how a batch becomes inputs (`_make_batch`).
    The network returns per-molecule outputs of shape (B, n_tasks) in regression mode and
    logits (B, n_tasks, n_classes) in classification mode.
    """

    #: Atoms per batch of `predict_arrays` unless it is given one.
    predict_batch_atoms: int = 32_768

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        MODEL_CLASSES[cls.__name__] = cls

    def __init__(
        self,
        network: torch.nn.Module,
        *,
        hyperparameters: dict[str, Any],
        torch_kwargs: dict[str, Any],
    ) -> None:
        unknown = sorted(set(torch_kwargs) - _TORCH_MODEL_KWARGS)
        if unknown:
            raise TypeError(
                f"unknown keyword argument(s) {unknown} for {type(self).__name__}; "
                f"TorchModel accepts {sorted(_TORCH_MODEL_KWARGS)}"
            )
        # NumPy scalars (np.int64(3) from a grid search) become plain numbers, so the settings
        # file can always be written as JSON.
        self.hyperparameters = {k: _plain(v) for k, v in hyperparameters.items()}
        self.n_tasks = hyperparameters["n_tasks"]
        self.n_features = hyperparameters["n_features"]
        self.mode = hyperparameters["mode"]
        self.n_classes = hyperparameters["n_classes"]
        self.dtype = DTYPES[hyperparameters["dtype"]]
        network = network.to(self.dtype)
        if self.mode == "regression":
            loss: Any = dc.models.losses.L2Loss()
            output_types = ["prediction"]
        else:
            loss = dc.models.losses.SoftmaxCrossEntropy()
            output_types = ["prediction", "loss"]
        self._torch_kwargs = dict(torch_kwargs)
        super().__init__(
            _Head(network, self.mode, self.n_tasks),
            loss=loss,
            output_types=output_types,
            **torch_kwargs,
        )
        self._rng = np.random.default_rng(hyperparameters["seed"])

    # ---- batches -------------------------------------------------------------------------

    def _make_batch(self, stacked: Stacked) -> Batch:
        raise NotImplementedError

    def fit(self, dataset: Any, *args: Any, **kwargs: Any) -> float:
        """DeepChem's ``TorchModel.fit``, after checking that ``dataset`` carries labels.

        DeepChem fills ``y`` with zeros when a dataset is made without labels, and training
        on those reports a loss that looks fine; such a dataset is a ``ValueError`` here.
        """
        _check_labels(dataset, self.n_tasks)
        return super().fit(dataset, *args, **kwargs)

    def _n_atoms_limit(self) -> Optional[int]:
        return None

    def _batches(
        self, dataset: Any, epochs: int, shuffle: bool, pad_to: Optional[int]
    ) -> Iterable[tuple[Batch, np.ndarray, np.ndarray]]:
        # Read once: every access to a DiskDataset's X reloads all of its shards.
        X, y, w, ids = dataset.X, dataset.y, dataset.w, dataset.ids
        n = len(X)
        size = self.batch_size
        for _ in range(epochs):
            order = self._rng.permutation(n) if shuffle else np.arange(n)
            for start in range(0, n, size):
                chosen = order[start : start + size]
                if pad_to and len(chosen) < pad_to:
                    # DeepChem pads training batches to a full batch by repeating samples.
                    chosen = np.resize(chosen, pad_to)
                stacked = stack_conformers(
                    X[chosen],
                    self.n_features,
                    lambda k, chosen=chosen: f"{chosen[k]} (id {ids[chosen[k]]!r})",
                    self._n_atoms_limit(),
                )
                yield (
                    self._make_batch(stacked),
                    _labels(y, chosen, n, self.n_tasks),
                    _labels(w, chosen, n, self.n_tasks),
                )

    def default_generator(
        self,
        dataset: Any,
        epochs: int = 1,
        mode: str = "fit",
        deterministic: bool = True,
        pad_batches: bool = True,
    ) -> Iterable[tuple[list, list, list]]:
        """Batches of ``([inputs...], [labels], [weights])`` built from `Conformer` datasets.

        Training order is shuffled with this model's seeded generator (``seed``), not
        NumPy's global state, so the same seed gives the same training run.
        """
        shuffle = mode == "fit" and not deterministic
        pad_to = self.batch_size if pad_batches and mode == "fit" else None
        for batch, y, w in self._batches(dataset, epochs, shuffle, pad_to):
            if self.mode == "classification":
                y = dc.metrics.to_one_hot(y.flatten(), self.n_classes).reshape(
                    -1, self.n_tasks, self.n_classes
                )
            yield batch.inputs, [y], [w]

    def _prepare_batch(self, batch: tuple[Any, Any, Any]) -> tuple[list, list, list]:
        # DeepChem casts every float64 array to float32; float64 models must stay float64.
        inputs, labels, weights = batch

        def tensors(arrays: Optional[Sequence[np.ndarray]]) -> list[torch.Tensor]:
            if arrays is None:
                return []
            out = []
            for a in arrays:
                if isinstance(a, np.ndarray) and a.dtype.kind == "f":
                    # Cast in NumPy: torch's cast runs on all threads, which costs more
                    # than it saves on arrays this small when the machine is busy.
                    a = a.astype(_NUMPY_DTYPES[self.dtype], copy=False)
                t = torch.as_tensor(a, device=self.device)
                out.append(t.to(self.dtype) if t.is_floating_point() else t)
            return out

        return tensors(inputs), tensors(labels), tensors(weights)

    def _predict(self, *args: Any, **kwargs: Any) -> Any:
        # DeepChem records an autograd graph while predicting; nothing here differentiates
        # it, and without one the networks may reuse memory in place.
        with torch.no_grad(), inference_threads():
            return super()._predict(*args, **kwargs)

    def set_learning_rate(self, learning_rate: float) -> None:
        """Change the optimiser's learning rate from now on (for schedules driven by callbacks)."""
        self._ensure_built()
        self.learning_rate = learning_rate
        for group in self._pytorch_optimizer.param_groups:
            group["lr"] = learning_rate

    def predict_arrays(
        self,
        positions: np.ndarray,
        features: np.ndarray,
        atomic_numbers: np.ndarray,
        counts: np.ndarray,
        *,
        forces: bool = False,
        task: int = 0,
        batch_atoms: Optional[int] = None,
    ) -> np.ndarray:
        """Predictions (or forces) for molecules given as stacked atom arrays.

        The same network as ``predict`` / `predict_forces`, without building a `Conformer`
        per molecule or DeepChem's dataset machinery: the path for many generated copies of
        molecules, such as a symmetry audit's. Batches are bounded by atoms, not molecules,
        so memory stays bounded whatever the molecules' sizes.

        Parameters
        ----------
        positions : np.ndarray of shape (n_total, 3)
            Every molecule's coordinates (Å), molecule after molecule.
        features : np.ndarray of shape (n_total, n_features)
        atomic_numbers : np.ndarray of shape (n_total,)
        counts : np.ndarray of int, shape (n_molecules,)
            Atoms per molecule, in the order they are stacked.
        forces : bool, default=False
            Return forces ``-dE/dR`` of output ``task`` instead of predictions.
        task : int, default=0
        batch_atoms : int, optional
            Atoms per batch (a larger molecule gets a batch of its own); default: the
            model's ``predict_batch_atoms``.

        Returns
        -------
        np.ndarray
            (n_molecules, n_outputs) predictions (class probabilities flattened per
            molecule in classification mode), or (n_total, 3) forces.

        Examples
        --------
        >>> from dc_invariant.models import RotationInvariantModel
        >>> model = RotationInvariantModel(n_features=1, dtype="float64")
        >>> positions = np.array([[0.0, 0, 0], [1.0, 0, 0], [0.0, 0, 0]])  # H2, then H
        >>> arrays = (positions, np.ones((3, 1)), [1, 1, 1], [2, 1])
        >>> model.predict_arrays(*arrays).shape
        (2, 1)
        >>> forces = model.predict_arrays(*arrays, forces=True)
        >>> forces.shape, bool(abs(forces[:2].sum(axis=0)).max() < 1e-12)  # no net force
        ((3, 3), True)
        """
        batch_atoms = self.predict_batch_atoms if batch_atoms is None else batch_atoms
        counts = np.asarray(counts, dtype=np.int64)
        positions = np.asarray(positions, dtype=np.float64)
        features = np.asarray(features, dtype=np.float64)
        atomic_numbers = np.asarray(atomic_numbers, dtype=np.int64)
        n_total = int(counts.sum())
        if (counts < 1).any() or positions.shape != (n_total, 3):
            raise ValueError(
                f"positions must have shape (sum(counts), 3) = ({n_total}, 3) with every count "
                f">= 1, got {positions.shape}"
            )
        if features.shape != (n_total, self.n_features) or atomic_numbers.shape != (n_total,):
            raise ValueError(
                f"features must have shape ({n_total}, {self.n_features}) and atomic_numbers "
                f"({n_total},), got {features.shape} and {atomic_numbers.shape}"
            )
        if not (np.isfinite(positions).all() and np.isfinite(features).all()):
            raise ValueError("positions and features must be finite")
        if forces:
            self._check_forces(task)
        limit = self._n_atoms_limit()
        if limit is not None and counts.max() > limit:
            raise ValueError(f"a molecule has {counts.max()} atoms, more than n_atoms={limit}")
        self._ensure_built()
        self.model.eval()
        ends = np.cumsum(counts)
        out = []
        first = 0
        while first < len(counts):
            before = int(ends[first] - counts[first])
            last = max(first + 1, int(np.searchsorted(ends, before + batch_atoms, side="right")))
            lo, hi = before, int(ends[last - 1])
            stacked = Stacked(
                positions[lo:hi], features[lo:hi], atomic_numbers[lo:hi], counts[first:last]
            )
            batch = self._make_batch(stacked)
            inputs, _, _ = self._prepare_batch((batch.inputs, None, None))
            if forces:
                out.extend(self._forces(batch, inputs, task))
            else:
                with torch.no_grad(), inference_threads():
                    result = self.model(inputs)
                if isinstance(result, list):  # classification: (probabilities, logits)
                    result = result[0]
                out.append(result.cpu().numpy().reshape(last - first, -1))
            first = last
        return np.concatenate(out)

    # ---- forces --------------------------------------------------------------------------

    def predict_forces(
        self, dataset: Any, transformers: Sequence[Any] = (), task: int = 0
    ) -> list[np.ndarray]:
        """Forces ``F = -dE/dR`` on every atom, one (n_atoms, 3) array per molecule.

        Atoms are in each datapoint's own order, without padding. ``transformers`` that were
        applied to ``y`` (e.g. ``NormalizationTransformer``) are undone, so forces are in the
        label's units per Å. Only for regression models. ``dataset`` is a DeepChem dataset, a
        list of `Conformer`s, or one `Conformer` (which gives a list of one array).
        """
        if isinstance(dataset, Conformer):
            dataset = [dataset]
        if not hasattr(dataset, "X"):
            items = list(dataset)
            bad = [i for i, c in enumerate(items) if not isinstance(c, Conformer)]
            if bad:
                raise TypeError(
                    f"predict_forces takes a dataset or Conformers; item {bad[0]} is a "
                    f"{type(items[bad[0]]).__name__} (featurize it with ConformerFeaturizer)"
                )
            objects = np.empty(len(items), dtype=object)
            objects[:] = items
            dataset = dc.data.NumpyDataset(objects)
        self._check_forces(task)
        scale = _transform_scale(transformers, self.n_tasks)[task]
        self._ensure_built()
        self.model.eval()
        forces: list[np.ndarray] = []
        for batch, _, _ in self._batches(dataset, 1, shuffle=False, pad_to=None):
            inputs, _, _ = self._prepare_batch((batch.inputs, None, None))
            forces.extend(self._forces(batch, inputs, task, scale))
        return forces

    def _check_forces(self, task: int) -> None:
        if self.mode != "regression":
            raise ValueError("forces are the gradient of an energy: use a regression model")
        if not 0 <= task < self.n_tasks:
            raise ValueError(f"task must be in [0, {self.n_tasks}), got {task}")

    def _forces(
        self, batch: Batch, inputs: list[torch.Tensor], task: int, scale: float = 1.0
    ) -> list[np.ndarray]:
        """``-scale * dE_task/dR`` for one prepared batch, one (n_atoms, 3) array a molecule."""
        positions = inputs[batch.positions_input].requires_grad_(True)
        (gradient,) = torch.autograd.grad(self.model(inputs)[:, task].sum(), positions)
        return batch.split_atoms(-scale * gradient.detach().cpu().numpy())

    # ---- persistence ---------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """Everything needed to rebuild this model, as JSON-compatible data."""
        torch_settings = {k: v for k, v in self._torch_kwargs.items() if k != "model_dir"}
        return {
            "class": type(self).__name__,
            "hyperparameters": self.hyperparameters,
            "torch_model": _jsonable(torch_settings),
        }

    def save_checkpoint(
        self, max_checkpoints_to_keep: int = 5, model_dir: Optional[str] = None
    ) -> None:
        """Save weights (DeepChem's checkpoint) and the settings file beside them."""
        super().save_checkpoint(max_checkpoints_to_keep, model_dir)
        if max_checkpoints_to_keep == 0:
            return
        folder = model_dir or self.model_dir
        # Serialised before anything is opened, then renamed into place: the settings file is
        # complete or absent, never half-written.
        text = json.dumps(self.get_config(), indent=2, sort_keys=True)
        path = os.path.join(folder, CONFIG_FILE)
        with open(path + ".tmp", "w") as handle:
            handle.write(text)
        os.replace(path + ".tmp", path)

    def restore(
        self,
        checkpoint: Optional[str] = None,
        model_dir: Optional[str] = None,
        strict: Optional[bool] = True,
    ) -> None:
        """Load weights from a checkpoint, with ``torch.load(..., weights_only=True)``."""
        self._ensure_built()
        if checkpoint is None:
            checkpoints = sorted(self.get_checkpoints(model_dir))
            if not checkpoints:
                raise ValueError(f"no checkpoint found in {model_dir or self.model_dir}")
            checkpoint = checkpoints[0]
        data = torch.load(checkpoint, map_location=self.device, weights_only=True)
        self.model.load_state_dict(data["model_state_dict"], strict=bool(strict))
        self._pytorch_optimizer.load_state_dict(data["optimizer_state_dict"])
        self._global_step = data["global_step"]


def load_model(model_dir: str, **overrides: Any) -> Any:
    """Rebuild a saved dc_invariant model from its folder and restore its newest weights.

    Parameters
    ----------
    model_dir : str
        A folder written by ``fit`` / ``save_checkpoint`` of a dc_invariant model.
    **overrides
        TorchModel settings to change (for example ``batch_size``).

    Examples
    --------
    >>> import tempfile
    >>> from dc_invariant.models import RotationInvariantModel
    >>> folder = tempfile.mkdtemp()
    >>> RotationInvariantModel(model_dir=folder, seed=3).save_checkpoint()
    >>> model = load_model(folder)
    >>> type(model).__name__, model.hyperparameters["seed"]
    ('RotationInvariantModel', 3)
    """
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{model_dir} holds no {CONFIG_FILE}: not a saved dc_invariant model"
        )
    with open(path) as handle:
        config = json.load(handle)
    name = config.get("class")
    if name not in MODEL_CLASSES:
        raise ValueError(
            f"{path} names unknown model class {name!r}; known: {sorted(MODEL_CLASSES)}"
        )
    if not issubclass(MODEL_CLASSES[name], InvariantModel):
        # Not a TorchModel (KernelModel): it reads its own files.
        return MODEL_CLASSES[name].load(model_dir, **overrides)
    model = _from_config(config, **{**overrides, "model_dir": model_dir})
    model.restore()
    return model


def _from_config(config: dict[str, Any], **overrides: Any) -> InvariantModel:
    """An untrained model with the settings of `InvariantModel.get_config`."""
    settings = {**config["torch_model"], **overrides}
    return MODEL_CLASSES[config["class"]](**config["hyperparameters"], **settings)


class _Head(torch.nn.Module):
    """Adds DeepChem's classification outputs (probabilities, logits) to a network."""

    def __init__(self, network: torch.nn.Module, mode: str, n_tasks: int) -> None:
        super().__init__()
        self.network = network
        self.mode = mode
        self.n_tasks = n_tasks

    def forward(self, inputs: list[torch.Tensor]) -> Any:
        out = self.network(*inputs)
        if self.mode == "classification":
            logits = out.reshape(out.shape[0], self.n_tasks, -1)
            return [torch.softmax(logits, dim=-1), logits]
        return out


def _plain(value: Any) -> Any:
    """``value`` with NumPy scalars (also inside lists and tuples) as Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _check_labels(dataset: Any, n_tasks: int) -> None:
    y = getattr(dataset, "y", None)
    n = len(dataset)
    if n == 0:
        raise ValueError("cannot fit on an empty dataset")
    if y is None or np.size(y) == 0:
        raise ValueError(
            "the dataset has no labels (y is empty): pass tasks= to the loader, or y= to "
            "NumpyDataset"
        )
    y = np.asarray(y)
    if y.reshape(n, -1).shape[1] != n_tasks:
        raise ValueError(f"the model has n_tasks={n_tasks} but the dataset's y has shape {y.shape}")
    if not np.any(y):
        raise ValueError(
            f"every label of the {n}-molecule dataset is 0: DeepChem fills y with zeros when a "
            "dataset is made without labels; pass y= (or tasks= to the loader)"
        )


def _labels(values: Any, chosen: np.ndarray, n: int, n_tasks: int) -> np.ndarray:
    if values is None or len(values) != n:
        return np.zeros((len(chosen), n_tasks))
    out = np.asarray(values)[chosen]
    return out.reshape(len(chosen), -1)


def _transform_scale(transformers: Sequence[Any], n_tasks: int) -> np.ndarray:
    """d(untransformed y)/d(y) for linear y-transformers such as NormalizationTransformer."""
    if not transformers:
        return np.ones(n_tasks)
    ones = dc.trans.undo_transforms(np.ones((1, n_tasks)), list(transformers))
    zeros = dc.trans.undo_transforms(np.zeros((1, n_tasks)), list(transformers))
    return (ones - zeros).reshape(-1)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        value = _plain(value)
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[key] = value
    return out


#: Threads for the networks' forward passes at inference (no gradients): 1, or 0 to keep
#: torch's own setting (see `inference_threads`).
INFERENCE_THREADS = 1


@contextlib.contextmanager
def inference_threads() -> Iterator[None]:
    """Run torch on `INFERENCE_THREADS` threads inside this context (every prediction does).

    A forward pass is many small operations (pieces of equal-sized molecules, batches of a
    few thousand atoms); with two threads each ends in a barrier, and on a shared machine a
    barrier waits a scheduler tick whenever the other core is busy, or spins: measured with
    other work running, 16x slower predictions (benchmarks/inference.py) and 4x the CPU time
    for a SchNet audit (benchmarks/schnet.py). One thread needs no barrier.
    """
    saved = torch.get_num_threads()
    change = INFERENCE_THREADS > 0 and saved != INFERENCE_THREADS
    if change:
        torch.set_num_threads(INFERENCE_THREADS)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(saved)


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation function called ``name``."""
    functions = {
        "tanh": torch.tanh,
        "relu": torch.relu,
        "silu": torch.nn.functional.silu,
        "softplus": torch.nn.functional.softplus,
    }
    if name not in functions:
        raise ValueError(f"activation must be one of {sorted(functions)}, got {name!r}")
    return functions[name]


class PortableModel:
    """A dc_invariant model as settings and weights, for sending to other processes.

    DeepChem models hold closures that cannot be pickled; this carries the JSON settings
    and the weights (as bytes read back with ``torch.load(weights_only=True)``), and rebuilds
    the model once per process on first use. Optimiser state is not carried: for prediction
    only.
    """

    def __init__(self, model: InvariantModel) -> None:
        import io

        buffer = io.BytesIO()
        torch.save(model.model.state_dict(), buffer)
        self.config = model.get_config()
        self.weights = buffer.getvalue()
        self.dtype = model.dtype
        self._model: Optional[InvariantModel] = None

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config, "weights": self.weights, "dtype": self.dtype}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _model=None)

    def model(self) -> InvariantModel:
        """The rebuilt model (built on first call in this process)."""
        if self._model is None:
            import io

            model = _from_config(self.config)
            model._ensure_built()
            state = torch.load(io.BytesIO(self.weights), map_location="cpu", weights_only=True)
            model.model.load_state_dict(state)
            self._model = model
        return self._model

    def predict_arrays(self, *args: Any, **kwargs: Any) -> np.ndarray:
        """`InvariantModel.predict_arrays` of the rebuilt model."""
        return self.model().predict_arrays(*args, **kwargs)
