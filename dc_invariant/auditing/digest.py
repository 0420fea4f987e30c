"""Digests that tell whether a stored audit was made of the same molecules and the same target.

A resumed audit reuses stored chunks only when the molecules of each chunk and the target are
the ones that produced them. Class names and counts are not enough: a retrained model has the
same class and settings, another CSV can have the same number of rows. The digests here hash
what computes the outputs: the stacked input arrays of a chunk, and the target's weights,
arrays and settings (a function: its byte code, defaults, the values it closes over and the
module-level names it reads; an object of the user's own class: that class's code too).
A target whose state cannot be followed to the end gets a digest that is never equal to
another (`INCOMPLETE`): its audit cannot be resumed, rather than resumed from stale chunks.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import os
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from dc_invariant.molecules import Molecules

__all__ = ["INCOMPLETE", "inputs_digest", "target_digest"]

#: How a digest that could not cover the whole target begins (then why, then a random part).
INCOMPLETE = "incomplete: "

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

# Deeper than this the state is not followed and the digest is `INCOMPLETE`; DeepChem and
# sklearn models (a Pipeline of fitted trees included) keep their state within it.
_MAX_DEPTH = 24
# Functions and classes defined under these folders are libraries (NumPy, torch, DeepChem,
# sklearn, the standard library, this package): their code is the installed version's and
# is named, not hashed (hashing it would also hash the caches their globals hold).
_LIBRARY_FOLDERS = tuple(
    {os.path.realpath(sysconfig.get_paths()[k]) + os.sep for k in ("stdlib", "purelib", "platlib")}
    | {os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep}
)


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
    h = _Hash()
    _feed(h, featurizer, 0, set())
    _feed(h, target, 0, set())
    if h.missing:
        return f"{INCOMPLETE}{h.missing[0]}; {os.urandom(8).hex()}"
    return h.hexdigest()


class _Hash:
    """A blake2b hash that also records what it could not follow."""

    def __init__(self) -> None:
        self._h = hashlib.blake2b(digest_size=16)
        self.missing: list[str] = []
        self.classes: set[type] = set()

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


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
    if id(value) in seen:  # a cycle: this object is being hashed further up
        h.update(f"<{type(value).__qualname__}>".encode())
        return
    if depth > _MAX_DEPTH:
        h.missing.append(f"its state nests deeper than {_MAX_DEPTH} levels")
        return
    seen = seen | {id(value)}
    torch = _torch()
    if torch is not None:
        if isinstance(value, torch.Tensor):
            _feed_array(h, value.detach().cpu().numpy())
            return
        if isinstance(value, torch.nn.Module):
            _feed_module(h, value, depth, seen)
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
    if isinstance(value, functools.partial):
        _feed(h, (value.func, value.args, value.keywords), depth + 1, seen)
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
    _feed_class_code(h, type(value), depth + 1, seen)
    if dataclasses.is_dataclass(value):
        state: Any = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    else:
        # __getstate__ covers C-level objects (sklearn's trees) whose state is not in __dict__.
        state = value.__getstate__() if hasattr(value, "__getstate__") else vars(value)
    _feed(h, _state_only(state), depth + 1, seen)


def _state_only(state: Any) -> Any:
    """``state`` without the entries that say where a model lives rather than what it is."""
    if not isinstance(state, Mapping):
        return state
    return {
        k: v
        for k, v in state.items()
        if k not in _NOT_STATE and not str(k).startswith(_NOT_STATE_PREFIXES)
    }


def _feed_module(h: Any, module: Any, depth: int, seen: set[int]) -> None:
    """A torch module: its weights and buffers, and every submodule's class (with the code of
    the user's own) and plain attributes (an activation chosen by name, a scale)."""
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        _feed_array(h, tensor.detach().cpu().numpy())
    for name, part in module.named_modules():
        h.update(f"module {name} {type(part).__module__}.{type(part).__qualname__}".encode())
        _feed_class_code(h, type(part), depth + 1, seen)
        attributes = {k: v for k, v in vars(part).items() if not k.startswith("_")}
        _feed(h, attributes, depth + 1, seen)


def _feed_class_code(h: Any, cls: type, depth: int, seen: set[int]) -> None:
    """The methods of ``cls`` and its bases that are the user's own (not from an installed
    library), as functions are digested (their code and what they read): a class edited
    between two runs, or a helper its methods call, changes the digest."""
    for klass in cls.__mro__:
        if klass in h.classes or _is_library(klass.__module__):
            continue
        h.classes.add(klass)
        h.update(f"class {klass.__module__}.{klass.__qualname__}".encode())
        for name, member in sorted(vars(klass).items()):
            function = getattr(member, "__func__", member)  # staticmethod, classmethod
            if isinstance(member, property):
                function = member.fget
            if inspect.isfunction(function):
                h.update(name.encode())
                _feed_function(h, function, depth, seen)
            elif not name.startswith("__") and isinstance(member, (bool, int, float, str)):
                h.update(f"{name}={member!r};".encode())


@functools.cache
def _is_library(module_name: Optional[str]) -> bool:
    """Whether the module of this name is installed library code (a module without a file,
    such as ``builtins``, is; ``__main__`` and the user's files are not)."""
    module = sys.modules.get(module_name or "")
    if module is None or module_name == "__main__":
        return False
    path = getattr(module, "__file__", None)
    return path is None or os.path.realpath(path).startswith(_LIBRARY_FOLDERS)


def _feed_function(h: Any, function: Any, depth: int, seen: set[int]) -> None:
    library = _is_library(function.__module__)
    if library and "<" not in function.__qualname__:  # a library's own function, by name
        h.update(f"function {function.__module__}.{function.__qualname__}".encode())
        return
    # A lambda or closure (made in library code too) is what its code and values make it.
    _feed_code(h, function.__code__)
    _feed(h, function.__defaults__, depth + 1, seen)
    _feed(h, function.__kwdefaults__, depth + 1, seen)
    _feed(h, [_cell(c) for c in function.__closure__ or ()], depth + 1, seen)
    if library:
        return
    # The module-level names it reads (helpers, constants, a model kept in a global); of a
    # module of the user's own, the attributes it may read (``helpers.energy``, ``cfg.SCALE``:
    # attribute names are among the code's names), since the module's name says nothing of
    # what an edit changed.
    names = _names(function.__code__)
    read = {}
    for name in sorted(names & function.__globals__.keys()):
        value = function.__globals__[name]
        if inspect.ismodule(value) and not _is_library(value.__name__):
            value = {a: getattr(value, a) for a in sorted(names) if hasattr(value, a)}
        read[name] = value
    _feed(h, read, depth + 1, seen)


def _names(code: Any) -> set[str]:
    """The global and attribute names a code object and the code nested in it read."""
    out = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            out |= _names(const)
    return out


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
