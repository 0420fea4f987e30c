"""Compute layer of the symmetry audit: sample group elements, run the target, measure changes.

The audit asks of every molecule: does the target's output stay the same when the molecule
is renumbered, moved, turned or mirrored? Group elements are drawn in float64 with a seed;
all transformed copies go through the target in one call, so a model sees one large batch.
(Over 300 lines: `audit`'s docstring is its reference, a third of the module.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
from tqdm.auto import tqdm

from dc_invariant.auditing.copies import (
    BLOCK,
    DISTORTION,
    draw_control,
    draw_copies,
    merge_copies,
)
from dc_invariant.auditing.deviation import compare
from dc_invariant.auditing.featurizing import describe
from dc_invariant.auditing.inputs import prepare
from dc_invariant.auditing.rebuild import Lineage, own_lineage
from dc_invariant.auditing.report import COLUMNS, CONTROL, AuditReport
from dc_invariant.auditing.store import open_store, save_chunk
from dc_invariant.auditing.targets import Outputs, predictor
from dc_invariant.auditing.words import environment
from dc_invariant.conformer import Conformer
from dc_invariant.molecules import Molecules, segment_arange, starts_of
from dc_invariant.parallel import check_workers, connected, map_ordered
from dc_invariant.validation import (
    check_choice,
    check_int,
    check_names,
    check_seed,
    check_tolerance,
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


def audit(
    target: Any,
    data: Any,
    *,
    featurizer: Any = None,
    symmetries: Sequence[str] = SYMMETRIES,
    n_samples: int = 3,
    seed: int = 0,
    rtol: Optional[float] = None,
    atol: Optional[float] = None,
    output: str = "invariant",
    chunk_size: int = 1024,
    progress: bool = False,
    store: Optional[str] = None,
    resume: bool = False,
    n_jobs: int = 1,
    scheduler: Any = None,
) -> AuditReport:
    """Check a model or function for invariance under renumbering and rigid motions.

    Every audit also runs a positive control: each molecule is distorted a little (a
    seeded, non-rigid displacement of every atom, `DISTORTION` Å per coordinate). A target
    that reads the geometry must change its output; if none changes, the report says the
    target is geometry-blind (`AuditReport.geometry_blind`) and its rigid-motion verdicts
    hold trivially.

    Parameters
    ----------
    target : model, featurizer or callable
        A dc_invariant / DeepChem model predicting from datasets of `Conformer`s, a DeepChem
        ``MolecularFeaturizer`` (the molecule itself is moved or renumbered, then
        featurized), or a function ``f(positions, features) -> array`` of one molecule.
        With ``featurizer``: any model with ``predict(dataset)`` (a DeepChem ``TorchModel``
        or ``SklearnModel``, or your own) that reads that featurizer's output.
    data : dataset, list of Conformer, list of SMILES / RDKit Mols, or AuditInput
        What `prepare` accepts, or its result (to featurize once for several targets).
    featurizer : DeepChem featurizer, optional
        Audit the pipeline ``target.predict(NumpyDataset(featurizer.featurize(mols)))``:
        each molecule and each moved or renumbered copy is rebuilt as an RDKit Mol (its
        chemistry from its SMILES, its atom order and coordinates from the copy). A
        molecule the featurizer fails on is skipped with DeepChem's reason.
    symmetries : sequence of str, default=("permutation", "translation", "rotation", "reflection")
        Which to check (``"identity"`` is a control).
    n_samples : int, default=3
        Group elements per molecule and symmetry.
    seed : int, default=0
        Seeds every group element: the same seed gives the same report, however the work
        is chunked or distributed.
    rtol, atol : float, optional
        A molecule passes when ``|y(gx) - y(x)| <= max(atol, rtol * |y(x)|)`` for every
        output. Defaults by the target's precision (`TOLERANCES`; float32 when unknown for
        models, float64 for callables; DeepChem torch models are float32 unless converted).
    output : {"invariant", "per_atom", "vector", "pseudoscalar"}, default="invariant"
        How the target's output should transform (`OUTPUTS`). With ``"vector"``, a model
        with ``predict_forces`` is audited on its forces, which must turn with the molecule.
    chunk_size : int, default=1024
        Molecules whose transformed copies go through the target in one call (rounded up to
        a multiple of 64, the block of molecules that shares a random-number stream).
    progress : bool, default=False
        Show a progress bar.
    store : str, optional
        Folder where each finished chunk is written as it completes (JSON), so a long audit
        that is interrupted loses at most the chunks in flight.
    resume : bool, default=False
        Continue the audit in ``store``: chunks already there are read, not recomputed. The
        settings must match the stored ones; the report equals an uninterrupted run's.
    n_jobs : int, default=1
        Local worker processes for the chunks (and for featurizing SMILES); -1 for all cores.
    scheduler : dask.distributed.Client or str, optional
        Run the chunks (and featurization) on this Dask cluster instead (a client or a
        scheduler address). The report is the same as a serial run's.

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
    symmetries = check_names(symmetries, "symmetries")
    unknown = [s for s in symmetries if s not in _KNOWN]
    if unknown or not symmetries or len(set(symmetries)) != len(symmetries):
        raise ValueError(f"symmetries must be distinct names drawn from {_KNOWN}, got {symmetries}")
    n_samples = check_int(n_samples, "n_samples", min_val=1)
    seed = check_seed(seed)
    rtol, atol = check_tolerance(rtol, "rtol"), check_tolerance(atol, "atol")
    check_choice(output, "output", OUTPUTS)
    chunk_size = check_int(chunk_size, "chunk_size", min_val=1)
    check_workers(n_jobs, scheduler)
    if isinstance(scheduler, str):
        # Connect to an address once, for featurizing and auditing alike, and close after.
        with connected(scheduler) as client:
            return audit(
                target, data, symmetries=symmetries, n_samples=n_samples, seed=seed,
                rtol=rtol, atol=atol, output=output, chunk_size=chunk_size, progress=progress,
                store=store, resume=resume, n_jobs=n_jobs, scheduler=client,
                featurizer=featurizer,
            )  # fmt: skip
    chunk_size = -(-chunk_size // BLOCK) * BLOCK
    _, dtype = predictor(target, output, featurizer)
    if dtype is None:
        dtype = "float32" if hasattr(target, "predict") else "float64"
    default_rtol, default_atol = TOLERANCES.get(dtype, TOLERANCES["float32"])
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol

    prepared = prepare(data, n_jobs=n_jobs, scheduler=scheduler)
    molecules, ids = prepared.molecules, prepared.ids
    skipped, n_inputs = list(prepared.skipped), prepared.n_inputs
    settings = {
        "symmetries": list(symmetries),
        "n_samples": n_samples,
        "seed": seed,
        "rtol": rtol,
        "atol": atol,
        "dtype": dtype,
        "output": output,
        "target": describe(target, featurizer),
        "control_distortion": DISTORTION,
        "versions": environment(),
    }
    done = open_store(store, resume, settings, chunk_size, n_inputs) if store else {}
    starts = range(0, len(molecules), chunk_size)
    # A model travels to worker processes as settings and weights, not as a pickle of the
    # DeepChem object (which holds unpicklable closures).
    remote = target
    if (n_jobs != 1 or scheduler is not None) and hasattr(target, "predict_arrays"):
        from dc_invariant.models.persistence import PortableModel

        remote = PortableModel(target)
    options = (list(symmetries), n_samples, seed, rtol, atol, output, featurizer)
    tasks = (
        (remote, _stack(molecules, s, chunk_size), ids[s : s + chunk_size], s, *options)
        for s in starts
        if s not in done
    )
    results = map_ordered(audit_chunk, tasks, n_jobs=n_jobs, scheduler=scheduler)
    columns: dict[str, list] = {name: [] for name in COLUMNS}
    bar = tqdm(total=len(molecules), disable=not progress, desc="audit", unit="mol")
    with bar:
        for start in starts:
            if start in done:
                chunk_columns, chunk_skipped = done[start]
            else:
                chunk_columns, chunk_skipped = next(results)
                if store:
                    save_chunk(store, start, chunk_columns, chunk_skipped)
            for name in COLUMNS:
                columns[name].extend(chunk_columns[name])
            skipped.extend(tuple(s) for s in chunk_skipped)
            bar.update(min(chunk_size, len(molecules) - start))
    return AuditReport.from_rows(
        columns, skipped, settings, n_inputs=n_inputs, clashes=prepared.clashes
    )


def _stack(molecules: list[Conformer], start: int, size: int) -> Molecules:
    return Molecules.from_conformers(molecules[start : start + size])


def audit_chunk(
    target: Any,
    molecules: Molecules,
    ids: list[str],
    first: int,
    symmetries: list[str],
    n_samples: int,
    seed: int,
    rtol: float,
    atol: float,
    output: str,
    featurizer: Any = None,
) -> tuple[dict[str, list], list[tuple[str, str]]]:
    """Audit the molecules of one chunk (``first`` is the index of its first molecule).

    Returns per-(molecule, symmetry) columns, the positive control's rows among them
    (symmetry `CONTROL`), and ``(id, reason)`` skips. Runs anywhere: it depends only on its
    arguments, which is what lets chunks go to other processes.
    """
    run, _ = predictor(target, output, featurizer)
    starts = range(0, len(molecules), BLOCK)
    parts = [molecules.select(np.arange(b, min(b + BLOCK, len(molecules)))) for b in starts]
    block = [(first + b) // BLOCK for b in starts]
    copies = merge_copies(
        [draw_copies(p, k, symmetries, n_samples, seed) for p, k in zip(parts, block)], starts
    )
    control = merge_copies([draw_control(p, k, seed) for p, k in zip(parts, block)], starts)
    n, n_copies = len(molecules), len(copies.owner)
    batch = Molecules.concatenate([molecules, copies.molecules, control.molecules])
    lineage = Lineage(
        np.concatenate([np.arange(n), copies.owner, control.owner]),
        np.concatenate([own_lineage(molecules).order, copies.order, control.order]),
    )
    # One call: the molecules and all their copies are one large batch for the target.
    outputs = run(batch, lineage)
    base = np.arange(n)
    mine = _subset(outputs, np.concatenate([base, n + np.arange(n_copies)]))
    absolute, relative, passed, finite = compare(
        output, *mine, n, copies, molecules.counts, rtol, atol
    )
    theirs = _subset(outputs, np.concatenate([base, n + n_copies + base]))
    control_deviation = compare(output, *theirs, n, control, molecules.counts, rtol, atol)

    n_sym = len(symmetries)
    shape = (n, n_sym, n_samples)
    bad = ~finite[:n] | ~finite[n:].reshape(n, -1).all(axis=1)
    absolute = absolute.reshape(shape).max(axis=2)
    relative = relative.reshape(shape).max(axis=2)
    passed = passed.reshape(shape).all(axis=2)
    # A single atom cannot be renumbered: permutation is n/a there, not passed. Atoms all of
    # one element are still checked: renumbering them reorders their positions, which an
    # order-reading target notices (tests/test_pipelines.py, N#N).
    checked = np.ones(shape[:2], dtype=bool)
    if "permutation" in symmetries:
        checked[molecules.counts < 2, symmetries.index("permutation")] = False
    # Moving a single atom is rigid, so the control needs two; a copy the target failed on
    # leaves the control unmeasured rather than the molecule unaudited.
    control_ok = (molecules.counts >= 2) & control_deviation[3][n:]
    absolute = np.column_stack([absolute, control_deviation[0]])
    relative = np.column_stack([relative, control_deviation[1]])
    passed = np.column_stack([passed, control_deviation[2]])
    checked = np.column_stack([checked, control_ok])
    absolute[~checked] = relative[~checked] = np.nan
    passed &= checked
    keep = np.flatnonzero(~bad)
    mol = np.repeat(keep, n_sym + 1)
    columns = {
        "id": [ids[m] for m in mol],
        "smiles": [molecules.smiles[m] for m in mol],
        "n_atoms": molecules.counts[mol].tolist(),
        "symmetry": [*symmetries, CONTROL] * len(keep),
        "abs_deviation": absolute[keep].reshape(-1).tolist(),
        "rel_deviation": relative[keep].reshape(-1).tolist(),
        "passed": passed[keep].reshape(-1).tolist(),
        "checked": checked[keep].reshape(-1).tolist(),
    }
    reasons: dict[int, str] = {}
    for k, why in sorted(outputs.failures.items(), reverse=True):
        if k >= n + n_copies:
            continue  # a failed control copy only leaves the control unmeasured
        # The molecule's own failure wins over one of its copies'.
        reasons[k if k < n else int(copies.owner[k - n])] = (
            why if k < n else f"{why} (on a transformed copy)"
        )
    skipped = [
        (ids[m], reasons.get(int(m), "the target returned NaN or infinity"))
        for m in np.flatnonzero(bad)
    ]
    return columns, skipped


def _subset(outputs: Outputs, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flat values and lengths of the molecules ``index`` of ``outputs``."""
    offsets = starts_of(outputs.lengths)
    lengths = outputs.lengths[index]
    return outputs.values[segment_arange(offsets[index], lengths)], lengths


def assert_invariant(target: Any, data: Any, **kwargs: Any) -> AuditReport:
    """Run `audit` and raise ``AssertionError`` with the summary if a symmetry is broken.

    Takes the same arguments as `audit` (``featurizer=`` included); returns the report when
    every symmetry holds. A symmetry no molecule could test (every molecule skipped, or a
    single atom for permutation) raises too: a gate that checked nothing must not pass.
    """
    report = audit(target, data, **kwargs)
    symmetries = report.settings["symmetries"]
    broken = [s for s in symmetries if report.checked(s) and not report.holds(s)]
    unchecked = [s for s in symmetries if not report.checked(s)]
    if broken or unchecked:
        problems = [f"broken: {', '.join(broken)}"] if broken else []
        problems += [f"not checked on any molecule: {', '.join(unchecked)}"] if unchecked else []
        raise AssertionError(f"{'; '.join(problems)}\n{report.format()}")
    return report
