"""Digests that tell whether a stored audit was made of the same molecules and the same target.

A resumed audit reuses stored chunks only when the molecules of each chunk and the target are
the ones that produced them. Class names and counts are not enough: a retrained model has the
same class and settings, another CSV can have the same number of rows. The digests here hash
what computes the outputs: the stacked input arrays of a chunk, and the target's weights,
arrays and settings (a function: its byte code, defaults, the values it closes over and the
module-level names it reads).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dc_invariant.molecules import Molecules

__all__ = ["inputs_digest", "target_digest"]

# Where a model lives on disk or how it logs is not what it computes: a model loaded twice
# from one folder gets a new temporary model_dir each time and must keep its digest.
_NOT_STATE = frozenset(
    {
        "model_dir",
        "model_dir_is_temp",
        "optimizer",
        "_pytorch_optimizer",
        "_lr_schedule",
        "_global_step",
    }
)
_NOT_STATE_PREFIXES = ("_loss", "_output", "_prediction", "_variance", "_other", "_built")

# Deeper than this, an object is hashed by its type alone; DeepChem and sklearn models keep
# their state within a few levels.
_MAX_DEPTH = 8


def inputs_digest(molecules: Molecules, ids: Sequence[str]) -> str:
    """A digest of a chunk's molecules: positions, features, atomic numbers, counts, ids."""
    h = hashlib.blake2b(digest_size=16)
    for array in (molecules.positions, molecules.features, molecules.atomic_numbers):
        _feed_array(h, np.asarray(array))
    _feed_array(h, np.asarray(molecules.counts, dtype=np.int64))
    h.update("\x1f".join(map(str, ids)).encode())
    h.update("\x1f".join(map(str, molecules.smiles)).encode())
    return h.hexdigest()


def target_digest(target: Any, featurizer: Any = None) -> str:
    """A digest of what computes a target's outputs.

    Weights of torch networks (``state_dict``), arrays and settings held by models and
    featurizers; for a function its byte code, defaults, closure and the globals it reads. Equal
    digests mean equal state; a digest that differs for equal state only refuses a resume,
    never reuses a stale one.

    Examples
    --------
    >>> target_digest(lambda r, x: r.sum()) == target_digest(lambda r, x: r.sum())
    True
    >>> target_digest(lambda r, x: r.sum()) == target_digest(lambda r, x: r.mean())
    False
    """
    h = hashlib.blake2b(digest_size=16)
    _feed(h, featurizer, 0, set())
    _feed(h, target, 0, set())
    return h.hexdigest()


def _feed_array(h: Any, array: np.ndarray) -> None:
    h.update(f"a{array.dtype.str}{array.shape}".encode())
    h.update(np.ascontiguousarray(array).tobytes())


def _feed(h: Any, value: Any, depth: int, seen: set[int]) -> None:
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        h.update(f"{type(value).__name__}:{value!r};".encode())
        return
    if isinstance(value, np.generic):
        h.update(f"{value.dtype.str}:{value!r};".encode())
        return
    if isinstance(value, np.ndarray) and value.dtype != object:
        _feed_array(h, value)
        return
    if id(value) in seen or depth > _MAX_DEPTH:
        h.update(f"<{type(value).__qualname__}>".encode())
        return
    seen = seen | {id(value)}
    torch = _torch()
    if torch is not None:
        if isinstance(value, torch.Tensor):
            _feed_array(h, value.detach().cpu().numpy())
            return
        if isinstance(value, torch.nn.Module):
            h.update(f"module {type(value).__qualname__}".encode())
            for name, tensor in sorted(value.state_dict().items()):
                h.update(name.encode())
                _feed_array(h, tensor.detach().cpu().numpy())
            return
        if isinstance(value, (torch.device, torch.dtype)):
            h.update(str(value).encode())
            return
    if isinstance(value, Mapping):
        h.update(b"{")
        for key in sorted(value, key=repr):
            _feed(h, key, depth + 1, seen)
            _feed(h, value[key], depth + 1, seen)
        h.update(b"}")
        return
    if isinstance(value, np.ndarray):  # of objects (datapoints): each by its state
        h.update(f"objects{value.shape}".encode())
        value = value.reshape(-1).tolist()
    if isinstance(value, (list, tuple)):
        h.update(f"{type(value).__name__}[".encode())
        for item in value:
            _feed(h, item, depth + 1, seen)
        h.update(b"]")
        return
    if isinstance(value, (set, frozenset)):
        _feed(h, sorted(value, key=repr), depth + 1, seen)
        return
    if inspect.isfunction(value):
        _feed_function(h, value, depth, seen)
        return
    if inspect.ismodule(value) or inspect.isclass(value) or inspect.isbuiltin(value):
        name = getattr(value, "__qualname__", getattr(value, "__name__", ""))
        h.update(f"{getattr(value, '__module__', '')}.{name}".encode())
        return
    if inspect.ismethod(value):
        h.update(value.__func__.__qualname__.encode())
        _feed(h, value.__self__, depth + 1, seen)
        return
    h.update(f"object {type(value).__module__}.{type(value).__qualname__}".encode())
    if dataclasses.is_dataclass(value):
        state: Any = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    else:
        # __getstate__ covers C-level objects (sklearn's trees) whose state is not in __dict__.
        state = value.__getstate__() if hasattr(value, "__getstate__") else vars(value)
    if isinstance(state, Mapping):
        state = {
            k: v
            for k, v in state.items()
            if k not in _NOT_STATE and not str(k).startswith(_NOT_STATE_PREFIXES)
        }
    _feed(h, state, depth + 1, seen)


def _feed_function(h: Any, function: Any, depth: int, seen: set[int]) -> None:
    _feed_code(h, function.__code__)
    _feed(h, function.__defaults__, depth + 1, seen)
    _feed(h, function.__kwdefaults__, depth + 1, seen)
    _feed(h, [_cell(c) for c in function.__closure__ or ()], depth + 1, seen)
    # The module-level names it reads (helpers, constants, a model kept in a global).
    names = function.__code__.co_names
    _feed(
        h, {n: function.__globals__[n] for n in names if n in function.__globals__}, depth + 1, seen
    )


def _feed_code(h: Any, code: Any) -> None:
    # Byte code, not source: two lambdas on one line share their source text.
    h.update(code.co_code)
    h.update(repr((code.co_names, code.co_varnames)).encode())
    for const in code.co_consts:
        if inspect.iscode(const):  # nested functions and comprehensions: their repr has an address
            _feed_code(h, const)
        else:
            h.update(f"{type(const).__name__}:{const!r};".encode())


def _cell(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # a closure variable not yet assigned
        return None


def _torch() -> Any:
    import sys

    # Only a target that is a torch object can need torch; never import it for a function.
    return sys.modules.get("torch")
