"""One chunk of an audit: its molecules, their transformed copies and the control, through
the target in one call, compared into per-molecule rows.

A `ChunkTask` carries everything a chunk needs, so it runs in this process, a worker process
or on a Dask cluster alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from dc_invariant.auditing.copies import BLOCK, audit_batch
from dc_invariant.auditing.deviation import compare, segment_reduce
from dc_invariant.auditing.featurizing import describe
from dc_invariant.auditing.rebuild import Lineage, own_lineage
from dc_invariant.auditing.report import COLUMNS, CONTROL
from dc_invariant.auditing.settings import AuditSettings
from dc_invariant.auditing.targets import Outputs, TargetFailed, predictor, run_isolating
from dc_invariant.molecules import Molecules, segment_arange, starts_of

__all__ = ["FLOOR_ULPS", "NOISE_FACTOR", "ChunkTask", "audit_chunk", "control_moved"]

#: The control's distortion counts as moving an output when it exceeds this multiple of the
#: largest deviation measured among the molecule's passing symmetry copies...
NOISE_FACTOR = 2.0
#: ...and this many units in the last place of the output's precision, at the output's size.
FLOOR_ULPS = 4

# Outputs a rigid motion leaves as they are: one that changed reads the geometry. A vector
# or pseudoscalar that fails to turn or flip may be a constant that reads nothing.
_UNMOVED = ("invariant", "per_atom")
# Symmetries that move atoms without renumbering them: an output they change reads the
# coordinates.
_RIGID = ("translation", "rotation", "reflection")


#: What a chunk gives back: its columns, its skips, and the `TargetFailed` when the target
#: raised on every one of its molecules.
ChunkResult = tuple[dict[str, list], list[tuple[str, str]], Optional[TargetFailed]]


@dataclass
class ChunkTask:
    """One chunk of an audit, complete: it runs on any process (`audit_chunk`)."""

    target: Any
    featurizer: Any
    settings: AuditSettings
    molecules: Molecules
    ids: list[str]
    first: int  # index of the chunk's first molecule in the audit
    # The auditing process's `RUNTIME` and kernel choices, for a chunk run in another
    # process (None: run where they are in force): each worker would otherwise choose its
    # own, and round some numbers otherwise than a serial run.
    runtime: Optional[dict[str, Any]] = None


def audit_chunk(task: ChunkTask) -> ChunkResult:
    """Audit the molecules of one chunk (`_audit_chunk`) under the task's runtime settings."""
    if task.runtime is None:
        return _audit_chunk(task)
    from dc_invariant.models.elementwise import adopted
    from dc_invariant.models.runtime import runtime_settings

    with runtime_settings(task.runtime["settings"]), adopted(task.runtime["kernels"]):
        return _audit_chunk(task)


def _audit_chunk(task: ChunkTask) -> ChunkResult:
    """Audit the molecules of one chunk.

    Returns per-(molecule, symmetry) columns, the positive control's rows among them
    (symmetry `CONTROL`), ``(id, reason)`` skips, and the `TargetFailed` when the target
    raised on every molecule of the chunk (else None). Runs anywhere: it depends only on its
    task, which is what lets chunks go to other processes.
    """
    settings, molecules, ids = task.settings, task.molecules, task.ids
    symmetries, n_samples, seed = list(settings.symmetries), settings.n_samples, settings.seed
    run = predictor(task.target, settings.output, task.featurizer)
    batch, copies, control = audit_batch(
        molecules, task.first // BLOCK, symmetries, n_samples, seed
    )
    n, n_copies = len(molecules), len(copies.owner)
    lineage = Lineage(
        np.concatenate([np.arange(n), copies.owner, control.owner]),
        np.concatenate([own_lineage(molecules).order, copies.order, control.order]),
    )
    unsupported = getattr(task.target, "unsupported", None)
    excluded = dict(unsupported(molecules)) if callable(unsupported) else {}
    # One call: the molecules and all their copies are one large batch for the target.
    try:
        outputs = run_isolating(
            run, batch, lineage, excluded, name=describe(task.target, task.featurizer)
        )
    except TargetFailed as failed:
        # Every molecule of this chunk raised: skipped here, with their errors. `audit`
        # stops only when every chunk did, so the chunk size never decides.
        skipped = [(ids[m], failed.reasons.get(m, str(failed))) for m in range(n)]
        return {name: [] for name in COLUMNS}, skipped, failed
    base = np.arange(n)
    mine = _subset(outputs, np.concatenate([base, n + np.arange(n_copies)]))
    rtol, atol = settings.rtol, settings.atol
    absolute, relative, passed, finite = compare(
        settings.output, *mine, n, copies, molecules.counts, rtol, atol
    )
    theirs = _subset(outputs, np.concatenate([base, n + n_copies + base]))
    control_deviation = compare(settings.output, *theirs, n, control, molecules.counts, rtol, atol)

    n_sym = len(symmetries)
    shape = (n, n_sym, n_samples)
    # A molecule without a finite output of its own is skipped; a copy that lost it (NaN,
    # infinity, an error) while its molecule kept it has broken the symmetry.
    bad = ~finite[:n]
    lost = ~finite[n:]
    absolute[lost] = relative[lost] = np.inf
    passed[lost] = False
    copy_absolute = absolute.reshape(shape)
    copy_passed = passed.reshape(shape)
    absolute = copy_absolute.max(axis=2)
    relative = relative.reshape(shape).max(axis=2)
    passed = copy_passed.all(axis=2)
    # A single atom cannot be renumbered: permutation is n/a there, not passed. Atoms all of
    # one element are still checked: renumbering them reorders their positions, which an
    # order-reading target notices (tests/test_pipelines.py, N#N).
    checked = np.ones(shape[:2], dtype=bool)
    if "permutation" in symmetries:
        checked[molecules.counts < 2, symmetries.index("permutation")] = False
    scale = segment_reduce(np.maximum, np.abs(mine[0]), mine[1], 0.0)[:n]
    rigid = [symmetries.index(s) for s in symmetries if s in _RIGID]
    same_input = (
        outputs.same_input[n + n_copies :] if outputs.same_input is not None else np.zeros(n, bool)
    )
    stayed = same_input | ~control_moved(
        control_deviation[0],
        copy_absolute,
        copy_passed & checked[:, :, None],
        scale,
        atol,
        settings.dtype,
        broken=(
            ~passed[:, rigid].all(axis=1)
            if rigid and settings.output in _UNMOVED
            else np.zeros(n, bool)
        ),
    )
    # Moving a single atom is rigid, so the control needs two; a copy the target failed on
    # leaves the control unmeasured rather than the molecule unaudited.
    control_ok = (molecules.counts >= 2) & control_deviation[3][n:]
    absolute = np.column_stack([absolute, control_deviation[0]])
    relative = np.column_stack([relative, control_deviation[1]])
    passed = np.column_stack([passed, stayed])
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
    # Failed copies are in the rows (deviation inf); a failed control copy only leaves the
    # control unmeasured.
    reasons = {k: why for k, why in outputs.failures.items() if k < n}
    skipped = [
        (ids[m], reasons.get(int(m), "the target returned NaN or infinity"))
        for m in np.flatnonzero(bad)
    ]
    return columns, skipped, None


def control_moved(
    deviation: np.ndarray,
    copy_deviation: np.ndarray,
    copy_passed: np.ndarray,
    scale: np.ndarray,
    atol: float,
    dtype: str,
    broken: np.ndarray,
) -> np.ndarray:
    """Whether the control's distortion moved each molecule's output beyond its noise.

    The noise of a molecule is measured, not assumed: the largest deviation among its
    symmetry copies that passed (renumbered, moved or turned copies whose outputs should
    equal its own, and differ only by the target's rounding), times `NOISE_FACTOR`, and at
    least `FLOOR_ULPS` units of the output's precision at the output's size. Judging
    against the invariance tolerance instead calls a trained energy model blind: a 0.05 Å
    distortion moves a ~75 eV energy by ~6 meV, under float32's relative tolerance 1e-4.
    A molecule that breaks a rigid-motion symmetry reads its coordinates by definition. (A
    pipeline whose featurizer gives the distorted copy exactly the original's features has
    not moved, whatever its model's rounding: `audit_chunk` checks that first.)

    Parameters
    ----------
    deviation : np.ndarray of shape (n,)
        Largest absolute change of each molecule's output under the distortion.
    copy_deviation, copy_passed : np.ndarray of shape (n, n_symmetries, n_samples)
        Largest absolute deviation of each symmetry copy, and whether it passed.
    scale : np.ndarray of shape (n,)
        Largest absolute output value of each molecule.
    atol : float
        The audit's absolute tolerance (the size below which outputs count as zero).
    dtype : {"float32", "float64"}
        Precision of the target's outputs.
    broken : np.ndarray of bool, shape (n,)
        Molecules that broke a rigid-motion symmetry.

    Returns
    -------
    np.ndarray of bool, shape (n,)
    """
    noise = np.where(copy_passed, copy_deviation, 0.0).reshape(len(deviation), -1).max(axis=1)
    floor = FLOOR_ULPS * np.finfo(dtype).eps * np.maximum(scale, atol)
    with np.errstate(invalid="ignore"):
        return broken | (deviation > np.maximum(NOISE_FACTOR * noise, floor))


def _subset(outputs: Outputs, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flat values and lengths of the molecules ``index`` of ``outputs``."""
    offsets = starts_of(outputs.lengths)
    lengths = outputs.lengths[index]
    return outputs.values[segment_arange(offsets[index], lengths)], lengths
