"""A `KernelModel` on disk: JSON settings plus one ``.npz`` of arrays, never pickles.

Arrays are stored as NumPy on the CPU, and the device is not a saved setting, so a model
fitted on a GPU loads on a machine without one.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from dc_invariant.files import atomic, write_json
from dc_invariant.models.kernel.trained import TrainedKernel
from dc_invariant.models.persistence import CONFIG_FILE, read_config

__all__ = ["ARRAYS_FILE", "load", "read", "write"]

ARRAYS_FILE = "kernel_model.npz"


def write(model_dir: str, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write ``config`` (JSON) and ``arrays`` (``.npz``) to ``model_dir``.

    Each file is written under a temporary name and renamed, so it is complete or absent.
    """
    os.makedirs(model_dir, exist_ok=True)
    with atomic(os.path.join(model_dir, ARRAYS_FILE), "wb") as handle:
        np.savez(handle, **arrays)
    write_json(os.path.join(model_dir, CONFIG_FILE), config, sort_keys=True)


def read(model_dir: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The settings and arrays that `write` left in ``model_dir``."""
    config = read_config(model_dir)
    path = os.path.join(model_dir, ARRAYS_FILE)
    if not os.path.isfile(path) or not config.get("fitted"):
        raise FileNotFoundError(f"{model_dir} holds no fitted KernelModel ({ARRAYS_FILE})")
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    return config, arrays


def load(cls: type, model_dir: str, overrides: dict[str, Any]) -> Any:
    """A ``cls`` (`KernelModel`) restored from ``model_dir``, on the device ``overrides`` name.

    Only settings that leave the fitted model unchanged may be overridden: ``device`` and
    ``memory_mb``.
    """
    unknown = sorted(set(overrides) - {"device", "memory_mb"})
    if unknown:
        raise ValueError(
            f"a KernelModel is loaded with only device= or memory_mb= overrides, got {unknown}"
        )
    config, arrays = read(model_dir)
    settings = dict(config["hyperparameters"])
    # Models saved before the leave-one-out search carry its hold-out share; it changes
    # nothing in a fitted model.
    settings.pop("valid_fraction", None)
    model = cls(**{**settings, **overrides}, model_dir=model_dir)
    model._elements = np.asarray(arrays["elements"], dtype=np.int64)
    model.fitted = config["fitted"]
    model._trained = TrainedKernel.from_arrays(
        arrays, model.representation, model.fitted["sigma"], model.memory_bytes, model.device
    )
    return model
