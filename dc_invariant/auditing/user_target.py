"""The command line's ``--target MODULE:FACTORY`` and ``--featurizer NAME``.

``--target`` imports the user's module (a Python file or an importable module) and calls
the factory there. Importing a file runs its code, exactly as ``python FILE`` or pytest
would: point it only at code you trust. Nothing else is evaluated; names are looked up,
never executed as expressions.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from typing import Any, Optional

from dc_invariant._deepchem import import_deepchem

__all__ = ["TargetError", "deepchem_featurizer", "load_target"]


class TargetError(ValueError):
    """A ``--target`` or ``--featurizer`` that cannot be used, with the reason."""


def load_target(spec: str) -> tuple[Optional[Any], Any]:
    """``(featurizer, target)`` from ``"path/to/file.py:factory"`` or ``"package.module:factory"``.

    The factory is called without arguments and returns a model (anything with
    ``predict``), a featurizer (``featurize``), a callable ``f(positions, features)``, or a
    ``(featurizer, model)`` pair; the featurizer is None unless a pair was returned.
    """
    where, colon, name = spec.rpartition(":")
    if not colon or not where or not name.isidentifier():
        raise TargetError(
            f"--target must be MODULE:FACTORY (a .py file or module, a colon, a function "
            f"name), got {spec!r}"
        )
    # Most target files import DeepChem; imported here first, its import-time log lines
    # are held back instead of burying our one-line errors.
    import_deepchem()
    with _importable_folder(where):
        module = _import(where)
        factory = getattr(module, name, None)
        if factory is None:
            raise TargetError(f"--target: {where} has no {name!r}")
        if not callable(factory):
            raise TargetError(f"--target: {where}:{name} is not a function")
        try:
            made = factory()
        except Exception as err:  # the user's code: report it, never a traceback
            raise TargetError(
                f"--target: {where}:{name}() raised {type(err).__name__}: {err}"
            ) from err
    return _unpack(made, f"{where}:{name}()")


@contextlib.contextmanager
def _importable_folder(where: str) -> Iterator[None]:
    """A target file's own folder on ``sys.path`` while it is imported and its factory runs
    (a factory may import a helper beside it), as when the file is run with python."""
    if not _is_file(where):
        yield
        return
    folder = os.path.dirname(os.path.abspath(where))
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        sys.path.remove(folder)


def _is_file(where: str) -> bool:
    return where.endswith(".py") or os.sep in where or "/" in where


def _import(where: str) -> Any:
    if _is_file(where):
        path = os.path.abspath(where)
        if not os.path.isfile(path):
            raise TargetError(f"--target: no such file: {where}")
        # Named from the path by a stable hash (Python's hash() is salted per process): a
        # resumed audit digests the target's classes by their module's name.
        module_name = f"_dc_invariant_target_{hashlib.sha256(path.encode()).hexdigest()[:16]}"
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise TargetError(f"--target: {where} is not a Python file")
        module = importlib.util.module_from_spec(loader_spec)
        # Registered first, as Python's own import does: dataclasses (and pickling) look
        # the module up by name while it runs.
        sys.modules[module_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[module_name]
            raise TargetError(
                f"--target: importing {where} raised {type(err).__name__}: {err}"
            ) from err
        return module
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as err:
        raise TargetError(f"--target: no module named {where!r} ({err})") from err
    except Exception as err:
        raise TargetError(
            f"--target: importing {where} raised {type(err).__name__}: {err}"
        ) from err


def _unpack(made: Any, source: str) -> tuple[Optional[Any], Any]:
    if isinstance(made, tuple):
        if len(made) != 2 or not hasattr(made[0], "featurize") or not hasattr(made[1], "predict"):
            raise TargetError(
                f"--target: {source} returned a tuple; it must be a (featurizer, model) pair, "
                "a featurizer with featurize() and a model with predict()"
            )
        return made[0], made[1]
    if hasattr(made, "predict") or hasattr(made, "featurize") or callable(made):
        return None, made
    raise TargetError(
        f"--target: {source} returned {type(made).__name__}; it must return a model, a "
        "featurizer, a function f(positions, features) or a (featurizer, model) pair"
    )


def deepchem_featurizer(name: str) -> Any:
    """The DeepChem featurizer class ``name`` (in ``deepchem.feat``), built without arguments."""
    from dc_invariant._deepchem import import_deepchem

    dc = import_deepchem()
    cls = getattr(dc.feat, name, None) if name.isidentifier() else None
    if not isinstance(cls, type) or not issubclass(cls, dc.feat.Featurizer):
        raise TargetError(
            f"--featurizer {name!r} is not a featurizer in deepchem.feat (e.g. "
            "CircularFingerprint, MATFeaturizer, WeaveFeaturizer, RDKitDescriptors)"
        )
    try:
        return cls()
    except TypeError as err:
        raise TargetError(
            f"--featurizer {name} needs arguments ({err}); build it in a --target factory"
        ) from err
