"""Saved models: JSON settings beside the weights, rebuilt by `load_model`; no pickles.

Every model class registers itself in `MODEL_CLASSES` by name and implements a classmethod
``load(model_dir, **overrides)``; the settings file names the class, so one `load_model`
restores any of them. `PortableModel` carries a torch model to other processes the same way.
"""

from __future__ import annotations

import inspect
import io
import json
import os
from typing import Any, Optional

import numpy as np
import torch

from dc_invariant.files import read_json

__all__ = [
    "CONFIG_FILE",
    "MODEL_CLASSES",
    "PortableModel",
    "from_config",
    "jsonable",
    "load_model",
    "plain",
    "read_config",
    "torch_settings",
    "unsaved",
]

CONFIG_FILE = "dc_invariant_model.json"

#: Every model class that `load_model` may rebuild, by name (filled as classes are defined).
MODEL_CLASSES: dict[str, type] = {}


def plain(value: Any) -> Any:
    """``value`` with NumPy scalars (also inside lists and tuples) as Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


# A DeepChem optimizer or learning-rate schedule in a settings file: its class name (looked
# up in ``deepchem.models.optimizers`` only, never imported by a path from the file) and the
# arguments that rebuild it.
_OPTIMIZER = "deepchem_optimizer"
_UNSAVED = object()


def jsonable(values: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that JSON can hold: numbers, strings, and DeepChem's
    optimizers and learning-rate schedules as their settings (a ``torch.device`` is not
    saved; see `unsaved` for what else is left out)."""
    out = {}
    for key, value in values.items():
        encoded = _encode(value)
        if encoded is not _UNSAVED:
            out[key] = encoded
    return out


def unsaved(values: dict[str, Any]) -> list[str]:
    """The names of the entries `jsonable` leaves out, but for the device (a model saved on
    a GPU machine must load on a CPU one)."""
    return [k for k, v in values.items() if k != "device" and _encode(v) is _UNSAVED]


def _encode(value: Any) -> Any:
    value = plain(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if type(value).__module__ == "deepchem.models.optimizers":
        settings = {}
        variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        for name, parameter in inspect.signature(type(value).__init__).parameters.items():
            if name == "self" or parameter.kind in variadic:
                continue
            encoded = _encode(getattr(value, name, _UNSAVED))
            if encoded is _UNSAVED:
                return _UNSAVED
            settings[name] = encoded
        return {_OPTIMIZER: type(value).__name__, "settings": settings}
    return _UNSAVED


def _decode(value: Any) -> Any:
    if not (isinstance(value, dict) and _OPTIMIZER in value):
        return value
    from dc_invariant._deepchem import import_deepchem

    optimizers = import_deepchem().models.optimizers
    cls = getattr(optimizers, str(value[_OPTIMIZER]), None)
    kinds = (optimizers.Optimizer, optimizers.LearningRateSchedule)
    if not (isinstance(cls, type) and issubclass(cls, kinds)):
        raise ValueError(f"the settings file names no DeepChem optimizer {value[_OPTIMIZER]!r}")
    return cls(**{k: _decode(v) for k, v in value["settings"].items()})


def torch_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The ``TorchModel`` keyword arguments of a settings file, optimizers rebuilt."""
    return {k: _decode(v) for k, v in config["torch_model"].items()}


def read_config(model_dir: str) -> dict[str, Any]:
    """The settings file of a saved model, with its class checked."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{model_dir} holds no {CONFIG_FILE}: not a saved dc_invariant model"
        )
    try:
        config = read_json(path)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}): the saved model is damaged") from err
    name = config.get("class") if isinstance(config, dict) else None
    if name not in MODEL_CLASSES:
        public = sorted(n for n in MODEL_CLASSES if not n.startswith("_"))
        raise ValueError(f"{path} names unknown model class {name!r}; known: {public}")
    return config


def load_model(model_dir: str, **overrides: Any) -> Any:
    """Rebuild a saved dc_invariant model from its folder and restore its newest weights.

    Parameters
    ----------
    model_dir : str
        A folder written by ``fit`` / ``save_checkpoint`` (torch models) or ``save``
        (`KernelModel`).
    **overrides
        Settings to change that do not alter the function (for example ``batch_size``, or
        ``device`` to load a model trained on a GPU onto the CPU).

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
    config = read_config(model_dir)
    return MODEL_CLASSES[config["class"]].load(model_dir, **overrides)


def from_config(config: dict[str, Any], **overrides: Any) -> Any:
    """An untrained torch model with the settings of ``InvariantModel.get_config``."""
    settings = {**torch_settings(config), **overrides}
    return MODEL_CLASSES[config["class"]](**config["hyperparameters"], **settings)


class PortableModel:
    """A dc_invariant torch model as settings and weights, for sending to other processes.

    DeepChem models hold closures that cannot be pickled; this carries the JSON settings
    and the weights (as bytes read back with ``torch.load(weights_only=True)``), and rebuilds
    the model once per process on first use. Optimiser state is not carried: for
    prediction only.
    """

    def __init__(self, model: Any) -> None:
        buffer = io.BytesIO()
        torch.save(model.model.state_dict(), buffer)
        self.config = model.get_config()
        self.weights = buffer.getvalue()
        self.dtype = model.dtype
        # The class itself (pickled by reference) rather than its registered name: a
        # worker process may not have imported the module that registered a user's class.
        self.model_class = type(model)
        self._model: Optional[Any] = None

    def __getstate__(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "weights": self.weights,
            "dtype": self.dtype,
            "model_class": self.model_class,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _model=None)

    def model(self) -> Any:
        """The rebuilt model (built on first call in this process)."""
        if self._model is None:
            settings = torch_settings(self.config)
            model = self.model_class(**self.config["hyperparameters"], **settings)
            state = torch.load(io.BytesIO(self.weights), map_location="cpu", weights_only=True)
            model.model.load_state_dict(state)
            self._model = model
        return self._model

    @property
    def n_tasks(self) -> int:
        """The rebuilt model's ``n_tasks``."""
        return int(self.config["hyperparameters"].get("n_tasks", 1))

    def predict_molecules(self, molecules: Any, **options: Any) -> np.ndarray:
        """``predict_molecules`` of the rebuilt model (the `MoleculeModel` contract)."""
        return self.model().predict_molecules(molecules, **options)

    def unsupported(self, molecules: Any) -> dict[int, str]:
        """The rebuilt model's `unsupported` (none for a model without one): the audit skips
        those molecules with that reason, on workers as in this process."""
        own = getattr(self.model(), "unsupported", None)
        return dict(own(molecules)) if callable(own) else {}
