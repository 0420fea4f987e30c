"""Compute layer of the symmetry audit: sample group elements, run the target, measure changes.

The audit asks of every molecule: does the target's output stay the same when the molecule
is renumbered, moved, turned or mirrored? Group elements are drawn in float64 with a seed;
all transformed copies go through the target in one call, so a model sees one large batch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, Callable, Optional

import numpy as np
from tqdm.auto import tqdm

from dc_invariant._deepchem import import_deepchem, quiet_deepchem_logs
from dc_invariant.audit.report import AuditReport, environment
from dc_invariant.conformer import Conformer
from dc_invariant.symmetry import (
    mixing_permutation,
    random_reflection,
    random_rotation,
    random_translation,
    transform,
)

#: The symmetries an audit checks by default. ``"identity"`` is also accepted, as a control
#: that must always give zero deviation.
SYMMETRIES: tuple[str, ...] = ("permutation", "translation", "rotation", "reflection")
_KNOWN = (*SYMMETRIES, "identity")

#: How outputs should change: ``"invariant"`` not at all; ``"per_atom"`` values permute
#: with the atoms; ``"vector"`` per-atom polar vectors such as forces permute and turn,
#: ``F(gx) = R F(x)``; ``"pseudoscalar"`` flips sign under reflections.
OUTPUTS: tuple[str, ...] = ("invariant", "per_atom", "vector", "pseudoscalar")

#: Default (rtol, atol) by the precision of the target's output.
TOLERANCES: dict[str, tuple[float, float]] = {"float32": (1e-4, 1e-5), "float64": (1e-9, 1e-12)}

# The tutorial's own rotation: 60 degrees about x.
_TUTORIAL_ROTATION = np.array(
    [[1.0, 0.0, 0.0], [0.0, 0.5, -np.sqrt(3) / 2], [0.0, np.sqrt(3) / 2, 0.5]]
)


def group_element(
    symmetry: str, sample: int, conformer: Conformer, rng: np.random.Generator
) -> dict:
    """Keyword arguments of `transform` for sample ``sample`` of ``symmetry``.

    Rotations: the tutorial's 60° about x first, then Haar-random. Reflections: a Householder
    mirror and a rotation times -1 in turn (plain x -> -x is exact in floating point and would
    prove nothing about precision). Translations alternate 10 Å and 1,000 Å, the second to
    expose float32 cancellation. Permutations always move an atom onto another element.
    """
    if symmetry == "identity":
        return {}
    if symmetry == "permutation":
        return {"permutation": mixing_permutation(conformer.atomic_numbers, rng)}
    if symmetry == "translation":
        return {"translation": random_translation(rng, 10.0 if sample % 2 == 0 else 1e3)}
    if symmetry == "rotation":
        return {"rotation": _TUTORIAL_ROTATION if sample == 0 else random_rotation(rng)}
    return {"rotation": random_reflection(rng) if sample % 2 == 0 else -random_rotation(rng)}


def expected_output(output: str, y: np.ndarray, element: dict) -> np.ndarray:
    """What ``y`` should become under the group element, for the declared kind of output."""
    rotation = element.get("rotation")
    order = element.get("permutation")
    if output == "invariant":
        return y
    if output == "pseudoscalar":
        return y * np.sign(np.linalg.det(rotation)) if rotation is not None else y
    if output == "per_atom":
        return y if order is None else y.reshape(len(order), -1)[order].reshape(-1)
    vectors = y.reshape(-1, 3)
    if order is not None:
        vectors = vectors[order]
    if rotation is not None:
        vectors = vectors @ np.asarray(rotation).T
    return vectors.reshape(-1)


def predictor(
    target: Any, output: str = "invariant"
) -> tuple[Callable[[list[Conformer]], list[np.ndarray]], Optional[str]]:
    """A function mapping molecules to one flat output array each, and the target's dtype.

    ``target`` is a dc_invariant or DeepChem model (anything with ``predict(dataset)``), a
    DeepChem featurizer (anything with ``featurize(mols)``: each transformed molecule is
    rebuilt as an RDKit Mol with that geometry and atom order, then featurized), or a
    callable ``f(positions, features) -> array``.
    """
    if hasattr(target, "featurize") and not hasattr(target, "predict"):

        def run_featurizer(conformers: list[Conformer]) -> list[np.ndarray]:
            mols = [mol_from_conformer(c) for c in conformers]
            # DeepChem logs a warning when its outputs differ in size (as raw coordinates
            # do); each molecule is compared only with itself, so that is expected here.
            with quiet_deepchem_logs(), np.errstate(divide="ignore", invalid="ignore"):
                features = target.featurize(mols)
            # An empty output (a featurization DeepChem gave up on) becomes NaN: skipped.
            return [
                np.asarray(f, dtype=np.float64).reshape(-1) if np.size(f) else np.array([np.nan])
                for f in features
            ]

        return run_featurizer, "float64"
    if hasattr(target, "predict"):
        dc = import_deepchem()
        forces = output == "vector" and hasattr(target, "predict_forces")

        def run_model(conformers: list[Conformer]) -> list[np.ndarray]:
            X = np.empty(len(conformers), dtype=object)
            X[:] = conformers
            dataset = dc.data.NumpyDataset(X)
            if forces:
                return [f.reshape(-1) for f in target.predict_forces(dataset)]
            return list(np.asarray(target.predict(dataset)).reshape(len(conformers), -1))

        dtype = getattr(target, "dtype", None)
        return run_model, (str(dtype).replace("torch.", "") if dtype is not None else None)
    if callable(target):

        def run_callable(conformers: list[Conformer]) -> list[np.ndarray]:
            return [np.asarray(target(c.positions, c.features)).reshape(-1) for c in conformers]

        return run_callable, None
    raise TypeError(
        f"target must be a model with predict() or a callable f(positions, features), "
        f"got {type(target).__name__}"
    )


def mol_from_conformer(conformer: Conformer) -> Any:
    """An RDKit Mol with the conformer's atoms, in its order, and its geometry in 3D.

    Connectivity is perceived from the geometry, which is all that geometric featurizers
    (Coulomb matrices, coordinates) read.
    """
    from dc_invariant.datasets import qm9_mol

    return qm9_mol(conformer.atomic_numbers, conformer.positions)


def conformers_from(data: Any) -> tuple[list[Conformer], list[str], list[tuple[str, str]]]:
    """Molecules to audit, their ids, and ``(id, reason)`` for inputs that were skipped.

    ``data``: a DeepChem dataset of `Conformer`s, a list of `Conformer`s, or SMILES strings /
    RDKit Mols (featurized with a default `ConformerFeaturizer`).
    """
    if hasattr(data, "X") and hasattr(data, "ids"):
        items, ids = list(data.X), [str(i) for i in data.ids]
    else:
        items = list(data)
        ids = [item if isinstance(item, str) else str(i) for i, item in enumerate(items)]
    if any(not isinstance(item, (Conformer, np.ndarray)) for item in items):
        from dc_invariant.featurizer import ConformerFeaturizer

        featurizer = ConformerFeaturizer()
        items = list(featurizer.featurize(items, log_failures=False))
        reasons = {i: why for i, _, why in featurizer.failures}
    else:
        reasons = {}
    kept, kept_ids, skipped = [], [], []
    for i, (item, name) in enumerate(zip(items, ids)):
        if isinstance(item, Conformer):
            kept.append(item)
            kept_ids.append(name)
        else:
            skipped.append((name, reasons.get(i, "not featurized (empty datapoint)")))
    return kept, kept_ids, skipped


def audit(
    target: Any,
    data: Any,
    *,
    symmetries: Sequence[str] = SYMMETRIES,
    n_samples: int = 3,
    seed: int = 0,
    rtol: Optional[float] = None,
    atol: Optional[float] = None,
    output: str = "invariant",
    chunk_size: int = 1000,
    progress: bool = False,
    store: Optional[str] = None,
    resume: bool = False,
) -> AuditReport:
    """Check a model or function for invariance under renumbering and rigid motions.

    Parameters
    ----------
    target : model, featurizer or callable
        A dc_invariant / DeepChem model predicting from datasets of `Conformer`s, a DeepChem
        ``MolecularFeaturizer`` (the molecule itself is moved or renumbered, then
        featurized), or a function ``f(positions, features) -> array`` of one molecule.
    data : dataset, list of Conformer, or list of SMILES / RDKit Mols
    symmetries : sequence of str, default=("permutation", "translation", "rotation", "reflection")
        Which to check (``"identity"`` is a control).
    n_samples : int, default=3
        Group elements per molecule and symmetry.
    seed : int, default=0
        Seeds every group element: the same seed gives the same report.
    rtol, atol : float, optional
        A molecule passes when ``|y(gx) - y(x)| <= max(atol, rtol * |y(x)|)`` for every
        output. Defaults by the target's precision (`TOLERANCES`; float32 when unknown for
        models, float64 for callables).
    output : {"invariant", "per_atom", "vector", "pseudoscalar"}, default="invariant"
        How the target's output should transform (`OUTPUTS`). With ``"vector"``, a model
        with ``predict_forces`` is audited on its forces, which must turn with the molecule.
    chunk_size : int, default=1000
        Molecules whose transformed copies go through the target in one call.
    progress : bool, default=False
        Show a progress bar.
    store : str, optional
        Folder where each finished chunk is written as it completes (JSON), so a long audit
        that is interrupted loses at most one chunk.
    resume : bool, default=False
        Continue the audit in ``store``: chunks already there are read, not recomputed. The
        settings must match the stored ones; the report equals an uninterrupted run's.

    Returns
    -------
    AuditReport

    Examples
    --------
    >>> import numpy as np
    >>> from dc_invariant import Conformer
    >>> water = Conformer([[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], np.eye(3), [8, 1, 1])
    >>> spread = lambda r, x: ((r - r.mean(0)) ** 2).sum()
    >>> audit(spread, [water], n_samples=2).holds("rotation")
    True
    """
    unknown = [s for s in symmetries if s not in _KNOWN]
    if unknown or not symmetries:
        raise ValueError(f"symmetries must be drawn from {_KNOWN}, got {list(symmetries)}")
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    run, dtype = predictor(target, output)
    if dtype is None:
        dtype = "float32" if hasattr(target, "predict") else "float64"
    default_rtol, default_atol = TOLERANCES.get(dtype, TOLERANCES["float32"])
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol

    molecules, ids, skipped = conformers_from(data)
    n_inputs = len(molecules) + len(skipped)
    settings = {
        "symmetries": list(symmetries),
        "n_samples": n_samples,
        "seed": seed,
        "rtol": rtol,
        "atol": atol,
        "dtype": dtype,
        "output": output,
        "target": type(target).__name__,
        "versions": environment(),
    }
    done = _open_store(store, resume, settings, chunk_size, n_inputs) if store else {}
    rows: list[dict] = []
    bar = tqdm(total=len(molecules), disable=not progress, desc="audit", unit="mol")
    with bar:
        # Chunks bound the memory of the transformed copies. Each molecule draws its group
        # elements from its own generator (seed, index), so neither the chunk size nor a
        # resumed run changes them.
        for start in range(0, len(molecules), chunk_size):
            part = range(start, min(start + chunk_size, len(molecules)))
            if start in done:
                chunk_rows, chunk_skipped = done[start]
            else:
                chunk_rows, chunk_skipped = _audit_chunk(
                    run, molecules, ids, part, symmetries, n_samples, seed, rtol, atol, output
                )
                if store:
                    _save_chunk(store, start, chunk_rows, chunk_skipped)
            rows.extend(chunk_rows)
            skipped.extend(chunk_skipped)
            bar.update(len(part))
    return AuditReport.from_rows(rows, skipped, settings, n_inputs=n_inputs)


def _open_store(
    store: str, resume: bool, settings: dict, chunk_size: int, n_inputs: int
) -> dict[int, tuple[list[dict], list[tuple[str, str]]]]:
    """Prepare ``store``; return the chunks it already holds when resuming."""
    os.makedirs(store, exist_ok=True)
    path = os.path.join(store, "settings.json")
    key = {k: v for k, v in settings.items() if k != "versions"}
    key.update(chunk_size=chunk_size, n_inputs=n_inputs)
    chunks = sorted(f for f in os.listdir(store) if f.startswith("chunk_") and f.endswith(".json"))
    if not resume:
        if chunks:
            raise ValueError(
                f"{store} already holds audit results; resume it (resume=True, --resume) "
                "or use an empty folder"
            )
        with open(path, "w") as handle:
            json.dump(key, handle, indent=2)
        return {}
    if os.path.isfile(path):
        with open(path) as handle:
            stored = json.load(handle)
        if stored != key:
            changed = sorted(k for k in key if stored.get(k) != key[k])
            raise ValueError(f"cannot resume {store}: settings differ in {changed}")
    else:
        with open(path, "w") as handle:
            json.dump(key, handle, indent=2)
    done = {}
    for name in chunks:
        with open(os.path.join(store, name)) as handle:
            saved = json.load(handle)
        done[int(name[6:-5])] = (saved["rows"], [tuple(s) for s in saved["skipped"]])
    return done


def _save_chunk(store: str, start: int, rows: list[dict], skipped: list) -> None:
    # Write then rename, so an interruption never leaves a half-written chunk behind.
    final = os.path.join(store, f"chunk_{start:09d}.json")
    with open(final + ".tmp", "w") as handle:
        json.dump({"rows": rows, "skipped": skipped}, handle)
    os.replace(final + ".tmp", final)


def _audit_chunk(
    run: Callable[[list[Conformer]], list[np.ndarray]],
    molecules: list[Conformer],
    ids: list[str],
    part: range,
    symmetries: Sequence[str],
    n_samples: int,
    seed: int,
    rtol: float,
    atol: float,
    output: str,
) -> tuple[list[dict], list[tuple[str, str]]]:
    """Rows and skips for the molecules in ``part``, with one call of the target."""
    copies, owners, elements = [], [], []
    for m in part:
        rng = np.random.default_rng([seed, m])
        for symmetry in symmetries:
            for sample in range(n_samples):
                element = group_element(symmetry, sample, molecules[m], rng)
                copies.append(transform(molecules[m], **element))
                owners.append((m, symmetry))
                elements.append(element)
    outputs = run([molecules[m] for m in part] + copies)  # one call: one large batch
    base = dict(zip(part, outputs[: len(part)]))
    moved = outputs[len(part) :]
    bad = {m for m, y in base.items() if not np.isfinite(y).all()}
    bad |= {owners[k][0] for k, y in enumerate(moved) if not np.isfinite(y).all()}
    skipped = [(ids[m], "the target returned NaN or infinity") for m in part if m in bad]
    worst: dict[tuple[int, str], tuple[float, float, bool]] = {}
    for (m, symmetry), element, y_moved in zip(owners, elements, moved):
        if m in bad:
            continue
        expected = expected_output(output, base[m], element)
        difference = np.abs(y_moved - expected)
        scale = np.abs(expected)
        passed = bool((difference <= np.maximum(atol, rtol * scale)).all())
        absolute = float(difference.max())
        # Relative to |y|, floored at atol so that outputs near zero give finite numbers.
        relative = float((difference / np.maximum(scale, atol)).max())
        old = worst.get((m, symmetry), (0.0, 0.0, True))
        worst[(m, symmetry)] = (max(old[0], absolute), max(old[1], relative), old[2] and passed)
    rows = [
        {
            "id": ids[m],
            "smiles": molecules[m].smiles,
            "n_atoms": molecules[m].n_atoms,
            "symmetry": symmetry,
            "abs_deviation": absolute,
            "rel_deviation": relative,
            "passed": passed,
        }
        for (m, symmetry), (absolute, relative, passed) in worst.items()
    ]
    return rows, skipped


def assert_invariant(target: Any, data: Any, **kwargs: Any) -> AuditReport:
    """Run `audit` and raise ``AssertionError`` with the summary if a symmetry is broken.

    Takes the same arguments as `audit`; returns the report when every symmetry holds.
    """
    report = audit(target, data, **kwargs)
    broken = [s for s in report.settings["symmetries"] if not report.holds(s)]
    if broken:
        raise AssertionError(f"broken: {', '.join(broken)}\n{report.format()}")
    return report
