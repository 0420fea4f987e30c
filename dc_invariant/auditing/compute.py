"""Compute layer of the symmetry audit: sample group elements, run the target, measure changes.

The audit asks of every molecule: does the target's output stay the same when the molecule
is renumbered, moved, turned or mirrored? Group elements are drawn in float64 with a seed;
all transformed copies go through the target in one call, so a model sees one large batch.
`chunk` audits one chunk; this module splits the work, runs it and keeps the results.
"""

from __future__ import annotations

import contextlib
import copy
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any, Optional

from tqdm.auto import tqdm

from dc_invariant.auditing.chunk import NOISE_FACTOR, ChunkTask, audit_chunk
from dc_invariant.auditing.copies import DISTORTION
from dc_invariant.auditing.digest import inputs_digest, target_digest
from dc_invariant.auditing.featurizing import describe
from dc_invariant.auditing.inputs import AuditInput, prepare
from dc_invariant.auditing.report import COLUMNS, AuditReport
from dc_invariant.auditing.settings import SYMMETRIES, AuditSettings
from dc_invariant.auditing.store import StoredChunk, check_chunk, open_store, save_chunk
from dc_invariant.auditing.targets import TargetFailed, check_target, target_dtype
from dc_invariant.auditing.words import environment
from dc_invariant.molecules import Molecules
from dc_invariant.parallel import check_workers, connected, map_ordered

__all__ = ["assert_invariant", "audit", "runs_in_threads"]


# Over 100 lines: its docstring is the audit's reference; the body is 30 lines.
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
    that reads the geometry must change its output by more than the numerical noise
    measured on that molecule (`control_moved`); if no molecule's output moves, the report
    says the target is geometry-blind (`AuditReport.geometry_blind`) and its rigid-motion
    verdicts hold trivially.

    A molecule the target cannot take is skipped with the reason, never the whole audit:
    one a model declares it cannot predict (``target.unsupported(molecules)``, e.g. an
    element a `KernelModel` never saw), or one on which the target raises (the batch is
    halved until the error is pinned to its molecule). A target that raises on every
    molecule is broken: `TargetFailed` (or `PipelineMismatch` for a model that cannot read
    its featurizer's output).

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
        output (for vectors, ``|y(x)|`` is each atom's vector length). Defaults by the
        target's precision (`TOLERANCES`; float32 when unknown for models, float64 for
        callables; DeepChem torch models are float32 unless converted).
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
        settings, the target (a digest of its weights, arrays or code) and each stored
        chunk's molecules (a digest of their arrays and ids) must match, else ``ValueError``;
        the report equals an uninterrupted run's.
    n_jobs : int, default=1
        Local workers for the chunks (and processes for featurizing SMILES); -1 for all
        cores. dc_invariant's torch models run on threads of this process, each with one
        torch thread; other targets on worker processes.
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
    settings = AuditSettings(
        symmetries=symmetries,
        n_samples=n_samples,
        seed=seed,
        rtol=rtol,
        atol=atol,
        output=output,
        chunk_size=chunk_size,
    )
    check_workers(n_jobs, scheduler)
    check_target(target, output, featurizer)
    settings = settings.for_dtype(target_dtype(target, featurizer))
    # One connection for featurizing and auditing alike, closed after if opened here.
    with connected(scheduler) as client:
        prepared = prepare(data, n_jobs=n_jobs, scheduler=client)
        return _audit_prepared(
            target, featurizer, prepared, settings, progress, store, resume, n_jobs, client
        )


def _audit_prepared(
    target: Any,
    featurizer: Any,
    prepared: AuditInput,
    settings: AuditSettings,
    progress: bool,
    store: Optional[str],
    resume: bool,
    n_jobs: int,
    scheduler: Any,
) -> AuditReport:
    molecules, ids = prepared.molecules, prepared.ids
    size = settings.chunk_size
    starts = range(0, len(molecules), size)
    report_settings = {
        **settings.to_dict(),
        "target": describe(target, featurizer),
        "control_distortion": DISTORTION,
        "control_noise_factor": NOISE_FACTOR,
        "versions": environment(),
    }

    def chunk(start: int) -> tuple[Molecules, list[str]]:
        return Molecules.from_conformers(molecules[start : start + size]), ids[start : start + size]

    done: dict[int, StoredChunk] = {}
    if store:
        report_settings["target_digest"] = target_digest(target, featurizer)
        done = open_store(store, resume, report_settings, size, prepared.n_inputs)
        for start in sorted(done):
            if start not in starts:
                raise ValueError(f"cannot resume {store}: it holds more molecules than given")
            check_chunk(store, start, done[start], inputs_digest(*chunk(start)))
    threads = scheduler is None and n_jobs != 1 and runs_in_threads(target, featurizer)
    here = threads or (n_jobs == 1 and scheduler is None)
    remote = target if here else _portable(target)
    runtime = None if here else _runtime()
    digests: dict[int, str] = {}  # of the chunks in flight, for the store

    def tasks() -> Iterator[tuple[ChunkTask]]:
        for start in starts:
            if start in done:
                continue
            part, part_ids = chunk(start)
            if store:
                digests[start] = inputs_digest(part, part_ids)
            yield (ChunkTask(remote, featurizer, settings, part, part_ids, start, runtime),)

    hold: Any = contextlib.nullcontext()
    initializer = None
    if threads:
        from dc_invariant.models.runtime import one_torch_thread_each, pin_one_torch_thread

        hold, initializer = one_torch_thread_each(), pin_one_torch_thread
    results = map_ordered(
        audit_chunk,
        tasks(),
        n_jobs=n_jobs,
        scheduler=scheduler,
        threads=threads,
        initializer=initializer,
    )
    columns: dict[str, list] = {name: [] for name in COLUMNS}
    skipped = list(prepared.skipped)
    failures: list[TargetFailed] = []  # chunks on every molecule of which the target raised
    failed = 0
    bar = tqdm(total=len(molecules), disable=not progress, desc="audit", unit="mol")
    with bar, hold:
        for start in starts:
            if start in done:
                chunk_columns, chunk_skipped = done[start].columns, done[start].skipped
            else:
                chunk_columns, chunk_skipped, failure = next(results)
                if failure is not None:
                    failures.append(failure)  # not stored: a resume runs it again
                    failed += len(chunk_skipped)
                elif store:
                    save_chunk(store, start, chunk_columns, chunk_skipped, digests.pop(start))
            for name in COLUMNS:
                columns[name].extend(chunk_columns[name])
            skipped.extend(tuple(s) for s in chunk_skipped)
            bar.update(min(size, len(molecules) - start))
    if failures and len(failures) == len(starts):
        first = failures[0]
        message = re.sub(r"every molecule \(\d+\)", f"every molecule ({failed})", str(first))
        raise TargetFailed(message) from first.__cause__
    return AuditReport.from_rows(
        columns, skipped, report_settings, n_inputs=prepared.n_inputs, clashes=prepared.clashes
    )


def runs_in_threads(target: Any, featurizer: Any = None) -> bool:
    """Whether `audit` with ``n_jobs`` above 1 runs this target's chunks on threads of this
    process: dc_invariant's torch models that declare ``thread_safe`` (the built-in ones),
    whose predictions spend their time in NumPy and torch kernels that release the GIL and
    share nothing between calls (SchNet keeps its scratch tensors per thread).

    Threads start at once and copy nothing: all of QM9 ran 1.54x faster on two cores than
    on one (`benchmarks/audit.py`). Other targets (your own `InvariantModel` subclass unless
    it declares ``thread_safe = True``, DeepChem models, featurizers, functions) are not
    known to be safe side by side and go to processes.

    Examples
    --------
    >>> from dc_invariant.models import RotationInvariantModel
    >>> runs_in_threads(RotationInvariantModel()), runs_in_threads(lambda r, x: r.sum())
    (True, False)
    """
    # Looked up, not imported: a target of that class has imported it already.
    base = sys.modules.get("dc_invariant.models.base")
    return (
        featurizer is None
        and base is not None
        and isinstance(target, base.InvariantModel)
        and type(target).thread_safe
    )


def _portable(target: Any) -> Any:
    """The target as it travels to worker processes.

    A dc_invariant torch model goes as settings and weights, not as a pickle of the
    DeepChem object (which holds unpicklable closures); anything else (a `KernelModel`, a
    function, a featurizer) is pickled as it is.
    """
    if hasattr(target, "predict_molecules") and hasattr(
        getattr(target, "model", None), "state_dict"
    ):
        from dc_invariant.models.persistence import PortableModel

        return PortableModel(target)
    if getattr(target, "model_dir_is_temp", False):
        # A DeepChem Model deletes its temporary model_dir when collected; a copy unpickled in
        # a worker must not delete the caller's.
        target = copy.copy(target)
        target.model_dir_is_temp = False
    return target


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


def _runtime() -> Optional[dict[str, Any]]:
    """This process's `RUNTIME` and element-wise kernel choices, for chunks run elsewhere;
    None when no dc_invariant model was imported (nothing else reads them)."""
    if "dc_invariant.models.runtime" not in sys.modules:
        return None
    from dataclasses import asdict

    from dc_invariant.models.elementwise import resolved
    from dc_invariant.models.runtime import RUNTIME

    return {"settings": asdict(RUNTIME), "kernels": resolved()}
