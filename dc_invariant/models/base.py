"""`InvariantModel`: the DeepChem `TorchModel` glue shared by every dc_invariant network.

A subclass names its settings (`settings`), builds its torch network from them
(``build_network``) and says how a checked batch of molecules becomes network inputs
(``make_batch``). Everything else is here: seeded weights and training order, float64 kept
when asked (DeepChem casts to float32), predictions in fixed atom-bounded batches on one
thread, forces by autograd, and JSON settings beside the checkpoints.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import warnings
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Optional

import numpy as np
import torch

from dc_invariant._deepchem import import_deepchem
from dc_invariant.files import write_json
from dc_invariant.models.batching import Batch, check_labels, dataset_batches
from dc_invariant.models.persistence import (
    CONFIG_FILE,
    MODEL_CLASSES,
    from_config,
    jsonable,
    read_config,
    unsaved,
)
from dc_invariant.models.prediction import PredictionMixin, inference_threads
from dc_invariant.models.runtime import training_threads
from dc_invariant.models.settings import ModelSettings
from dc_invariant.molecules import Molecules
from dc_invariant.validation import check_int, check_positive

__all__ = ["DTYPES", "InvariantModel"]

dc = import_deepchem()

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


class InvariantModel(PredictionMixin, dc.models.TorchModel):
    """Base class: a DeepChem `TorchModel` over datasets of `Conformer` datapoints.

    Subclass it to bring your own network: set ``settings_class`` (a frozen dataclass
    derived from `ModelSettings`), and implement ``build_network(settings)`` and
    ``make_batch(molecules)`` (and ``thread_safe = True`` where neither keeps state between
    calls, for the audit's threads). The constructor takes the settings' fields and DeepChem's
    ``TorchModel`` arguments (``batch_size``, ``learning_rate``, ``model_dir``, ``device``,
    ...) as keywords; unknown names raise ``TypeError``. The network returns per-molecule
    outputs of shape (B, n_outputs): one per task in regression, logits per task and class
    in classification. Training, prediction, forces, saving and `load_model` then work as
    for the built-in models, and the audit checks the new network like any other.

    Examples
    --------
    A network on each molecule's sum of squared distances to its centroid (invariant, and
    blind to everything but size):

    >>> from dataclasses import dataclass
    >>> import torch
    >>> from dc_invariant.models import Batch, ModelSettings
    >>> @dataclass(frozen=True, kw_only=True)
    ... class SpreadSettings(ModelSettings):
    ...     scale: float = 1.0
    >>> class SpreadNetwork(torch.nn.Module):
    ...     def __init__(self, n_outputs):
    ...         super().__init__()
    ...         self.out = torch.nn.Linear(1, n_outputs)
    ...     def forward(self, positions, counts):
    ...         molecule = torch.repeat_interleave(torch.arange(len(counts)), counts)
    ...         spread = torch.zeros(len(counts), 1, dtype=positions.dtype)
    ...         spread.index_add_(0, molecule, (positions**2).sum(1, keepdim=True))
    ...         return self.out(spread)
    >>> class SpreadModel(InvariantModel):
    ...     settings_class = SpreadSettings
    ...     def build_network(self, settings):
    ...         return SpreadNetwork(settings.n_outputs)
    ...     def make_batch(self, molecules):
    ...         centred = molecules.centred_positions() * self.settings.scale
    ...         return Batch([centred, molecules.counts], molecules.counts, padded=False)
    >>> from dc_invariant import Conformer, audit
    >>> water = Conformer(np.eye(3), np.ones((3, 11)), [8, 1, 1])
    >>> model = SpreadModel(scale=0.5, dtype="float64")
    >>> model.predict_on_batch(np.array([water])).shape
    (1, 1)
    >>> audit(model, [water], n_samples=1).holds("rotation")
    True

    Its ``make_batch`` and network keep nothing on ``self`` between calls, so it may say so
    and be audited on threads (``n_jobs`` above 1) like the built-in models:

    >>> from dc_invariant.auditing.compute import runs_in_threads
    >>> class SafeSpreadModel(SpreadModel):
    ...     thread_safe = True
    >>> runs_in_threads(model), runs_in_threads(SafeSpreadModel())
    (False, True)
    """

    settings_class: ClassVar[type[ModelSettings]] = ModelSettings
    #: Whether the audit may run this model's predictions on several threads of one process
    #: at once (`audit` with ``n_jobs`` above 1): only where ``make_batch`` and the network
    #: keep nothing between calls (no cache or scratch buffer on ``self`` shared by two
    #: calls). The built-in models declare it; a subclass of this base that does not goes to
    #: worker processes, safe whatever it keeps.
    thread_safe: ClassVar[bool] = False
    #: Atoms per batch of ``predict`` and of `predict_arrays` unless it is given one.
    predict_batch_atoms: int = 32_768

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        MODEL_CLASSES[cls.__name__] = cls
        # help() and inspect show the settings, not a bare **kwargs.
        parameters = [
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
            for f in dataclasses.fields(cls.settings_class)
        ]
        parameters.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
        cls.__signature__ = inspect.Signature(parameters)

    def __init__(self, **kwargs: Any) -> None:
        names = {f.name for f in dataclasses.fields(self.settings_class)}
        settings = self.settings_class(**{k: kwargs.pop(k) for k in list(kwargs) if k in names})
        unknown = sorted(set(kwargs) - _TORCH_MODEL_KWARGS)
        if unknown:
            raise TypeError(
                f"unknown keyword argument(s) {unknown} for {type(self).__name__}; it takes "
                f"{sorted(names)} and TorchModel's {sorted(_TORCH_MODEL_KWARGS)}"
            )
        _check_torch_values(kwargs)
        #: The model's settings, checked and frozen.
        self.settings = settings
        self.hyperparameters = settings.to_dict()
        self.n_tasks = settings.n_tasks
        self.n_features = settings.n_features
        self.mode = settings.mode
        self.n_classes = settings.n_classes
        self.dtype = DTYPES[settings.dtype]
        with torch.random.fork_rng(devices=[]):
            # Seed only this network's initial weights; the global torch state is untouched.
            torch.manual_seed(settings.seed)
            network = self.build_network(settings).to(self.dtype)
        if self.mode == "regression":
            loss: Any = dc.models.losses.L2Loss()
            output_types = ["prediction"]
        else:
            loss = dc.models.losses.SoftmaxCrossEntropy()
            output_types = ["prediction", "loss"]
        self._torch_kwargs = dict(kwargs)
        super().__init__(
            _Head(network, self.mode, self.n_tasks),
            loss=loss,
            output_types=output_types,
            **kwargs,
        )
        self._rng = np.random.default_rng(settings.seed)

    def build_network(self, settings: Any) -> torch.nn.Module:
        """The torch network for ``settings``, with ``settings.n_outputs`` outputs."""
        raise NotImplementedError

    def make_batch(self, molecules: Molecules) -> Batch:
        raise NotImplementedError

    def _n_atoms_limit(self) -> Optional[int]:
        return None

    # ---- training ------------------------------------------------------------------------

    def fit(self, dataset: Any, *args: Any, **kwargs: Any) -> float:
        """DeepChem's ``TorchModel.fit``, after checking that ``dataset`` carries labels."""
        check_labels(dataset, self.n_tasks)
        return super().fit(dataset, *args, **kwargs)

    def fit_generator(self, generator: Iterable[Any], *args: Any, **kwargs: Any) -> float:
        """DeepChem's ``TorchModel.fit_generator`` on ``RUNTIME.training_threads`` torch
        threads, without a warning about its bookkeeping.

        DeepChem 2.8 adds each batch's loss tensor, still attached to the graph, to a running
        sum that it converts to a float every ``log_frequency`` steps; torch warns about that
        conversion every time, although the value is right.
        """
        with warnings.catch_warnings(), training_threads():
            warnings.filterwarnings(
                "ignore",
                message="Converting a tensor with requires_grad=True to a scalar",
                category=UserWarning,
            )
            return super().fit_generator(generator, *args, **kwargs)

    def _batches(
        self,
        dataset: Any,
        epochs: int,
        shuffle: bool,
        pad_to: Optional[int],
        batch_atoms: Optional[int] = None,
    ) -> Iterable[tuple[Batch, np.ndarray, np.ndarray]]:
        for molecules, y, w in dataset_batches(
            dataset,
            batch_size=self.batch_size,
            n_features=self.n_features,
            n_tasks=self.n_tasks,
            epochs=epochs,
            rng=self._rng if shuffle else None,
            pad_to=pad_to,
            n_atoms_limit=self._n_atoms_limit(),
            batch_atoms=batch_atoms,
        ):
            yield self.make_batch(molecules), y, w

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
        # A prediction does not depend on its batch-mates (beyond the last bits of a product's
        # rounding), so prediction batches are bounded by atoms (memory) rather than
        # molecules: fewer, fuller batches of equal-sized molecules.
        batch_atoms = None if mode == "fit" else self.predict_batch_atoms
        for batch, y, w in self._batches(dataset, epochs, shuffle, pad_to, batch_atoms):
            if self.mode == "classification":
                _check_classes(y, w, self.n_classes)
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

    def set_learning_rate(self, learning_rate: float) -> None:
        """Change the optimiser's learning rate from now on (for schedules driven by callbacks)."""
        self._ensure_built()
        self.learning_rate = learning_rate
        for group in self._pytorch_optimizer.param_groups:
            group["lr"] = learning_rate

    # ---- prediction ----------------------------------------------------------------------

    def _predict(self, *args: Any, **kwargs: Any) -> Any:
        # DeepChem records an autograd graph while predicting; nothing here differentiates
        # it, and without one the networks may reuse memory in place.
        with torch.no_grad(), inference_threads():
            return super()._predict(*args, **kwargs)

    # ---- persistence ---------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """Everything needed to rebuild this model, as JSON-compatible data."""
        return {
            "class": type(self).__name__,
            "hyperparameters": self.hyperparameters,
            "torch_model": jsonable(self._torch_settings()),
        }

    def _torch_settings(self) -> dict[str, Any]:
        """The ``TorchModel`` keywords this model was made with, but where it lives."""
        return {k: v for k, v in self._torch_kwargs.items() if k != "model_dir"}

    def save_checkpoint(
        self, max_checkpoints_to_keep: int = 5, model_dir: Optional[str] = None
    ) -> None:
        """Save weights (DeepChem's checkpoint) and the settings file beside them."""
        super().save_checkpoint(max_checkpoints_to_keep, model_dir)
        if max_checkpoints_to_keep == 0:
            return
        path = os.path.join(model_dir or self.model_dir, CONFIG_FILE)
        left_out = unsaved(self._torch_settings())
        if left_out:
            warnings.warn(
                f"{type(self).__name__}: {', '.join(left_out)} cannot be written to the "
                f"settings file (only numbers, strings and DeepChem's own optimizers and "
                "learning-rate schedules can); load_model will use DeepChem's defaults for "
                "them, which matters if training goes on",
                UserWarning,
                stacklevel=2,
            )
        write_json(path, self.get_config(), sort_keys=True)

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
        # The checkpoint's optimizer state carries the settings it was saved with (rate,
        # betas); this model's own (load_model's overrides) must stay, and only the
        # optimizer's memory (Adam's moments) come back.
        optimizer = self._pytorch_optimizer
        settings = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        optimizer.load_state_dict(data["optimizer_state_dict"])
        for group, own in zip(optimizer.param_groups, settings):
            group.update(own)
        self._global_step = data["global_step"]
        if self._lr_schedule is not None and self._global_step:
            # A schedule starts at step 0; training goes on where the checkpoint stopped.
            # Replayed, not set: StepLR's rate is recursive, a product over its steps.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch: "step() before optimizer.step()"
                for _ in range(self._global_step):
                    self._lr_schedule.step()

    @classmethod
    def load(cls, model_dir: str, **overrides: Any) -> InvariantModel:
        """The model saved in ``model_dir``, with its newest weights (see `load_model`)."""
        model = from_config(read_config(model_dir), **{**overrides, "model_dir": model_dir})
        model.restore()
        return model


def _check_torch_values(kwargs: dict[str, Any]) -> None:
    """The numbers among DeepChem's own keywords, checked as the model's are: DeepChem takes
    ``batch_size=True`` as batches of one and ``learning_rate=True`` as a rate of 1."""
    for name in ("batch_size", "log_frequency"):
        if name in kwargs:
            check_int(kwargs[name], name, min_val=1)
    rate = kwargs.get("learning_rate")
    if rate is not None and not hasattr(rate, "_create_pytorch_schedule"):  # a schedule is fine
        check_positive(rate, "learning_rate")


def _check_classes(y: np.ndarray, w: np.ndarray, n_classes: int) -> None:
    """A ``ValueError`` unless every weighted label is a class index: DeepChem's one-hot
    encoding would send -1 to the last class and 0.7 to class 0 without a word."""
    labels = np.asarray(y).reshape(len(y), -1)
    labelled = np.broadcast_to(np.asarray(w).reshape(len(y), -1), labels.shape) != 0
    values = np.unique(labels[labelled])
    bad = values[(values != np.round(values)) | (values < 0) | (values >= n_classes)]
    if len(bad):
        raise ValueError(
            f"classification labels must be class indices 0..{n_classes - 1}, got "
            f"{', '.join(f'{v:g}' for v in bad[:5])}"
        )


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
