"""Scaling of RotationInvariantModel's pair sum with system size, and of throughput with data size.

One run measures:

1. **Pair paths versus n_atoms.** One system of n atoms at the density of organic matter
   (0.1 atoms/Å³: a jittered grid in a cube, no two atoms closer than 1 Å, elements drawn
   H/C/N/O/S as in a protein). Prediction and forces (``predict_arrays(..., forces=True)``)
   through four evaluations of the pair sum: dense (n, n) pair tensors (``cutoff=None``, the
   peer); the same tensors weighted by the cutoff envelope (``cutoff=5.0``, dense at every
   size); neighbour lists at every size (``cutoff=5.0`` with
   ``dc_invariant.models.tutorial.DENSE_PAIR_ATOMS = 0``); and the default cutoff model, which
   uses the second up to ``DENSE_PAIR_ATOMS`` atoms and the third above. Every case runs in a
   fresh process (forked from a server that has only imported the library), so its peak
   memory, ``ru_maxrss`` less the process's RSS after imports and one 8-atom warm-up call, is
   its own. The dense paths are skipped where their pair tensors would need more than 6 GB.
   The crossovers, the sizes above which neighbour lists are faster than either dense path,
   are interpolated on the log-log curves.
2. **The issue's memory target:** prediction and forces of one 5,000-atom system with the
   cutoff model within 2,048 MiB peak RSS (the whole process, imports included).
3. **Throughput versus number of molecules.** QM9 molecules as RDKit Mols with their DFT
   conformers: ``ConformerFeaturizer(record_smiles=False)`` and
   ``dc_invariant.auditing.audit(RotationInvariantModel(seed=0), conformers)``, each with one and
   two worker processes (pools warmed before the clock runs). One process already runs torch
   on every core's thread, while joblib gives each of two workers one thread: the audit's
   two-worker speed-up compares processes against threads, not one core against two.

Times are the best of several runs of `time.perf_counter` (more for fast cases, at least two
per pair-path case). Output: Markdown tables on stdout, PNG plots in ``--out`` and, with
``--json PATH``, result rows for ``benchmarks/run_all.py`` (see ``benchmarks/_rows.py``).
The machine's load average is printed before and after: other processes slow some runs more
than others.

Usage::

    python benchmarks/scaling.py [--quick] [--out DIR] [--json PATH]

On two cores ``--quick`` (atoms up to 3,000; 1,000 and 5,000 molecules) takes one to three
minutes and the full run five to ten, depending on what else runs.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import torch
from _rows import result_row, write_rows
from scipy.spatial import cKDTree

import dc_invariant.models.tutorial as tutorial
from dc_invariant import ConformerFeaturizer
from dc_invariant.conformer import Conformer
from dc_invariant.neighbors import neighbor_pairs

SIZES = (10, 30, 100, 300, 1000, 3000, 10_000)
QUICK_SIZES = (10, 30, 100, 300, 1000, 3000)
MOLECULES = (1_000, 10_000, 100_000)
QUICK_MOLECULES = (1_000, 5_000)

CUTOFF = 5.0  # Å
DENSITY = 0.1  # atoms per Å³, about that of liquids, polymers and proteins
MIN_DISTANCE = 1.0  # Å
# Elements and their shares in a protein (hydrogens included), for the features.
ELEMENTS = (1, 6, 7, 8, 16)
ELEMENT_SHARES = (0.50, 0.31, 0.085, 0.10, 0.005)

# The dense path holds about six (n, n, hidden) float32 tensors at once.
HIDDEN = 16
DENSE_TENSORS = 6
DENSE_LIMIT_BYTES = 6e9

TARGET_ATOMS = 5_000
TARGET_MIB = 2048.0
WARM_ATOMS = 8
# Below this, a high-water mark above the baseline says more about the allocator than the case.
MEMORY_RESOLUTION_MIB = 1.0


@dataclass(frozen=True)
class PairPath:
    """One way of evaluating the pair sum."""

    label: str
    cutoff: Optional[float]
    #: value for tutorial.DENSE_PAIR_ATOMS in the measuring process; None keeps the library's
    dense_pair_atoms: Optional[int]


# "masked" is what the default cutoff model uses up to DENSE_PAIR_ATOMS atoms: its crossover
# with "neighbour" is the one that places that threshold.
PATHS = {
    "dense": PairPath("dense pairs (cutoff=None)", None, None),
    "masked": PairPath(
        "dense pairs x envelope (cutoff=5, dense at every size)", CUTOFF, sys.maxsize
    ),
    "neighbour": PairPath("neighbour lists (cutoff=5, DENSE_PAIR_ATOMS=0)", CUTOFF, 0),
    "default": PairPath(
        f"default cutoff model (dense up to {tutorial.DENSE_PAIR_ATOMS} atoms)", CUTOFF, None
    ),
}
MODES = ("predict", "forces")
COLUMNS = {
    "dense": "dense",
    "masked": "dense x envelope",
    "neighbour": "neighbour list",
    "default": "default cutoff",
}


@dataclass
class Case:
    """What one (path, mode, n_atoms) measurement gave; ``note`` says why it has no numbers."""

    seconds: float = math.nan
    runs: int = 0
    peak_mib: float = math.nan  # high-water RSS above the RSS after imports and warm-up
    process_mib: float = math.nan  # high-water RSS of the whole process
    note: str = ""


@dataclass
class Throughput:
    """Molecules per second of one task with one and two workers."""

    task: str
    molecules: int
    rate_1: float
    rate_2: float

    @property
    def speedup(self) -> float:
        return self.rate_2 / self.rate_1


# ---- measuring -------------------------------------------------------------------------------


def best_time(
    run: Callable[[], Any], budget_s: float, max_runs: int, min_runs: int = 1
) -> tuple[float, int]:
    """Shortest of ``min_runs`` to ``max_runs`` wall times of ``run``.

    Runs stop once ``budget_s`` is spent and at least ``min_runs`` were made.

    Returns
    -------
    seconds : float
    runs : int
    """
    times: list[float] = []
    while len(times) < min_runs or (len(times) < max_runs and sum(times) < budget_s):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times), len(times)


def max_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def liquid_geometry(n_atoms: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n_atoms`` atoms at `DENSITY` in a cube, none closer than `MIN_DISTANCE`.

    Atoms sit in randomly chosen cells of a cubic grid, each displaced by at most ``jitter``
    cell widths per axis; atoms in neighbouring cells are then at least
    ``spacing * (1 - 2 * jitter)`` apart, which the jitter is chosen to keep above
    `MIN_DISTANCE`, so no rejection loop is needed.

    Parameters
    ----------
    n_atoms : int
    seed : int, default=0

    Returns
    -------
    positions : np.ndarray of shape (n_atoms, 3)
        Coordinates (Å).
    atomic_numbers : np.ndarray of int64, shape (n_atoms,)
    """
    rng = np.random.default_rng([seed, n_atoms])
    side = (n_atoms / DENSITY) ** (1 / 3)
    cells = round(n_atoms ** (1 / 3))
    if cells**3 < n_atoms:
        cells += 1
    spacing = side / cells
    jitter = min(0.25, (1 - MIN_DISTANCE / spacing) / 2)
    if jitter <= 0:
        raise ValueError(f"{n_atoms} atoms: grid spacing {spacing:.2f} Å is below {MIN_DISTANCE}")
    grid = np.stack(np.meshgrid(*[np.arange(cells)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    chosen = grid[rng.choice(len(grid), n_atoms, replace=False)]
    positions = (chosen + 0.5 + rng.uniform(-jitter, jitter, (n_atoms, 3))) * spacing
    atomic_numbers = rng.choice(np.array(ELEMENTS, dtype=np.int64), n_atoms, p=ELEMENT_SHARES)
    return positions, atomic_numbers


def system_inputs(n_atoms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``predict_arrays`` inputs for the `liquid_geometry` of ``n_atoms`` (one molecule).

    Features come from ``ConformerFeaturizer().featurize_arrays``, so they have the default
    model's 11 columns.
    """
    positions, numbers = liquid_geometry(n_atoms)
    conformer = ConformerFeaturizer().featurize_arrays([numbers], [positions])[0]
    return positions, conformer.features, numbers, np.array([n_atoms])


def _model(path: PairPath) -> Any:
    from dc_invariant.models import RotationInvariantModel

    if path.dense_pair_atoms is not None:
        # Runs only in the measuring process, which ends after this one case.
        tutorial.DENSE_PAIR_ATOMS = path.dense_pair_atoms
    return RotationInvariantModel(seed=0, cutoff=path.cutoff)


def measure_case(path_key: str, mode: str, n_atoms: int, budget_s: float, max_runs: int) -> Case:
    """Time one evaluation and record its peak memory; run in a fresh process.

    Parameters
    ----------
    path_key : {"dense", "masked", "neighbour", "default"}
    mode : {"predict", "forces"}
    n_atoms : int
    budget_s, max_runs
        As in `best_time`.

    Returns
    -------
    Case
    """
    model = _model(PATHS[path_key])
    forces = mode == "forces"
    # Torch's thread pool and the first-call set-up of the path are costs of a process, not
    # of a size: a tiny call pays them before the baseline is read.
    model.predict_arrays(*system_inputs(WARM_ATOMS), forces=forces)
    inputs = system_inputs(n_atoms)
    baseline = max_rss_mib()
    # At least two runs, even for the slowest cases: one run alone is at the mercy of the
    # other processes on the machine (dense, 3,000 atoms: 1.1 to 1.9 s from call to call).
    seconds, runs = best_time(
        lambda: model.predict_arrays(*inputs, forces=forces), budget_s, max_runs, min_runs=2
    )
    peak = max_rss_mib()
    return Case(seconds, runs, peak - baseline, peak)


def measure_target(n_atoms: int) -> tuple[float, float, float]:
    """Predict, then forces, for one ``n_atoms`` system with the default cutoff model.

    Returns
    -------
    process_mib : float
        Peak RSS of the whole process (imports included), MiB.
    increment_mib : float
        Peak RSS above the RSS after imports and model construction, MiB.
    seconds : float
        Wall time of both calls.
    """
    model = _model(PATHS["default"])
    inputs = system_inputs(n_atoms)
    baseline = max_rss_mib()
    start = time.perf_counter()
    model.predict_arrays(*inputs)
    model.predict_arrays(*inputs, forces=True)
    seconds = time.perf_counter() - start
    peak = max_rss_mib()
    return peak, peak - baseline, seconds


def _child(connection: Any, function: Callable[..., Any], args: tuple) -> None:
    try:
        connection.send(("ok", function(*args)))
    except Exception as error:  # noqa: BLE001 - any failure becomes a table cell in the parent
        connection.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        connection.close()


def in_fresh_process(context: Any, function: Callable[..., Any], *args: Any) -> tuple[Any, str]:
    """``function(*args)`` in a new process; returns ``(result, "")`` or ``(None, why not)``."""
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(send, function, args))
    process.start()
    send.close()
    try:
        status, payload = receive.recv()
    except EOFError:  # killed, e.g. by the kernel's out-of-memory killer
        process.join()
        return None, f"failed (process exit code {process.exitcode})"
    process.join()
    return (payload, "") if status == "ok" else (None, f"failed ({payload})")


def process_context() -> Any:
    """A start method whose processes begin with the library imported but nothing run.

    A forkserver imports the modules once; every case then forks from it in milliseconds
    instead of spending seconds on importing torch and DeepChem as a spawned process would.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # torch._dynamo too: DeepChem builds an Adam optimiser on a model's first call, even for
    # prediction, and that imports it (1.5 s).
    context.set_forkserver_preload(
        ["dc_invariant.models", "dc_invariant.featurizer", "torch._dynamo"]
    )
    return context


def dense_bytes(n_atoms: int) -> float:
    """Estimated bytes of the dense path's pair tensors for one molecule of ``n_atoms``."""
    return float(n_atoms) ** 2 * HIDDEN * 4 * DENSE_TENSORS


def pair_section(
    context: Any, sizes: Sequence[int], budget_s: float, max_runs: int
) -> dict[tuple[str, str, int], Case]:
    """Every (path, mode, size) case, each in its own process."""
    cases: dict[tuple[str, str, int], Case] = {}
    for n in sizes:
        for mode in MODES:
            for key in PATHS:
                if key in ("dense", "masked") and dense_bytes(n) > DENSE_LIMIT_BYTES:
                    cases[key, mode, n] = Case(note="skipped (n² memory)")
                    continue
                case, why = in_fresh_process(
                    context, measure_case, key, mode, n, budget_s, max_runs
                )
                cases[key, mode, n] = case if case is not None else Case(note=why)
    return cases


def crossover(sizes: Sequence[int], dense: Sequence[float], listed: Sequence[float]) -> str:
    """The size above which neighbour lists stay faster than a dense path, as a phrase.

    Interpolated linearly in log(n) against log(time ratio) between the two sizes that
    bracket it, among the sizes where both paths ran.
    """
    both = [(n, d, s) for n, d, s in zip(sizes, dense, listed) if np.isfinite(d) and np.isfinite(s)]
    if not both:
        return "not measured"
    faster = [s < d for _, d, s in both]
    k = len(faster)
    while k > 0 and faster[k - 1]:
        k -= 1
    if k == len(both):
        return f"not faster at {both[-1][0]:,} atoms, the largest size both ran"
    if k == 0:
        return f"faster at every size, from {both[0][0]:,} atoms"
    (n0, d0, s0), (n1, d1, s1) = both[k - 1], both[k]
    r0, r1 = math.log(s0 / d0), math.log(s1 / d1)
    n = math.exp(math.log(n0) + (math.log(n1) - math.log(n0)) * r0 / (r0 - r1))
    return f"faster above about {n:,.0f} atoms (between {n0:,} and {n1:,})"


# ---- throughput ------------------------------------------------------------------------------


def throughput_section(
    sizes: Sequence[int], budget_s: float, max_runs: int
) -> tuple[list[Throughput], str]:
    """Featurization and audit rates, one and two workers, on nested random QM9 subsets.

    Returns
    -------
    rows : list of Throughput
    note : str
        What was featurized (sample size, atoms per molecule, failures).
    """
    from dc_invariant.auditing import audit
    from dc_invariant.datasets import qm9_mol, read_qm9_table
    from dc_invariant.models import RotationInvariantModel

    table = read_qm9_table(limit=max(sizes), seed=0)
    mols = [qm9_mol(z, r) for z, r in zip(table["atomic_numbers"], table["positions"])]
    sizes = sorted({min(n, len(mols)) for n in sizes})
    # Nested random subsets: QM9's id order runs from small to large molecules.
    order = np.random.default_rng(0).permutation(len(mols))
    subsets = {n: np.sort(order[:n]) for n in sizes}
    model = RotationInvariantModel(seed=0)
    warm = mols[:2048]

    def featurize_rate(n: int, featurizer: ConformerFeaturizer) -> float:
        chosen = [mols[i] for i in subsets[n]]
        seconds, _ = best_time(
            lambda: featurizer.featurize(chosen, log_failures=False), budget_s, max_runs
        )
        return n / seconds

    def audit_rate(n: int, n_jobs: int) -> float:
        chosen = [conformers[i] for i in subsets[n] if isinstance(conformers[i], Conformer)]
        seconds, _ = best_time(lambda: audit(model, chosen, n_jobs=n_jobs), budget_s, max_runs)
        return n / seconds

    single = ConformerFeaturizer(record_smiles=False, n_jobs=1)
    conformers = single.featurize(mols, log_failures=False)
    failed = len(single.failures)
    featurized_1 = {n: featurize_rate(n, single) for n in sizes}
    # Each side pays its one-off costs before the clock runs. For two workers that means
    # starting the pool on two default-size audit chunks, so that each worker's first task
    # imports torch: loky measures a worker's memory after its first task and restarts it
    # once it grows by 300 MB more, which a worker that began with featurization would do on
    # its first audit chunk, inside a timed run.
    warm_conformers = [c for c in conformers[:2048] if isinstance(c, Conformer)]
    audit(model, warm_conformers[:64])
    audited_1 = {n: audit_rate(n, 1) for n in sizes}
    audit(model, warm_conformers, n_jobs=2)
    audited_2 = {n: audit_rate(n, 2) for n in sizes}
    double = ConformerFeaturizer(record_smiles=False, n_jobs=2)
    double.featurize(warm, log_failures=False)
    featurized_2 = {n: featurize_rate(n, double) for n in sizes}

    rows = [Throughput("featurize", n, featurized_1[n], featurized_2[n]) for n in sizes]
    rows += [Throughput("audit", n, audited_1[n], audited_2[n]) for n in sizes]
    atoms = np.mean([m.GetNumAtoms() for m in mols])
    note = (
        f"QM9: {len(mols):,} molecules sampled with seed 0 ({atoms:.1f} atoms each on average, "
        f"hydrogens included), smaller sizes nested random subsets; {failed} failed to "
        "featurize; audit: 4 symmetries x 3 samples, default chunk_size 1,024; building the "
        "Mols was not timed."
    )
    return rows, note


# ---- reporting -------------------------------------------------------------------------------


def seconds_cell(case: Case) -> str:
    return case.note or f"{case.seconds:.3g}"


def mib_cell(case: Case) -> str:
    return case.note or f"{case.peak_mib:,.1f}"


def ratio_cell(peer: Case, ours: Case, field: str) -> str:
    """``peer / ours`` as "1.23x"; "-" where either is missing or a memory below resolution."""
    if peer.note or ours.note:
        return "-"
    if field == "peak_mib" and min(peer.peak_mib, ours.peak_mib) < MEMORY_RESOLUTION_MIB:
        return "-"
    return f"{getattr(peer, field) / getattr(ours, field):.2f}x"


def pair_tables(cases: dict[tuple[str, str, int], Case], sizes: Sequence[int]) -> str:
    """Markdown tables of time and of peak memory per size, dense beside neighbour lists."""
    lines: list[str] = []
    for title, cell, field, unit in (
        ("Time (best run)", seconds_cell, "seconds", "s"),
        ("Peak memory above the RSS after imports and warm-up", mib_cell, "peak_mib", "MiB"),
    ):
        lines.append(f"### {title}, {unit}\n")
        header = ["n_atoms"]
        for mode in MODES:
            header += [f"{mode}: {label}" for label in COLUMNS.values()]
            header += [f"{mode}: neighbour list vs dense"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---:"] * len(header)) + "|")
        for n in sizes:
            row = [f"{n:,}"]
            for mode in MODES:
                row += [cell(cases[key, mode, n]) for key in COLUMNS]
                row.append(ratio_cell(cases["dense", mode, n], cases["neighbour", mode, n], field))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def throughput_table(rows: Sequence[Throughput]) -> str:
    lines = [
        "| task | molecules | 1 worker, mol/s | 2 workers, mol/s | 2 vs 1 worker |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.task} | {row.molecules:,} | {row.rate_1:,.0f} | {row.rate_2:,.0f} | "
            f"{row.speedup:.2f}x |"
        )
    return "\n".join(lines)


def plot(
    out: str,
    cases: dict[tuple[str, str, int], Case],
    sizes: Sequence[int],
    rows: Sequence[Throughput],
) -> list[str]:
    """Write the three PNG plots into ``out``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out, exist_ok=True)
    paths = []
    styles = {
        "dense": ("C3", "o"),
        "masked": ("C1", "D"),
        "neighbour": ("C0", "s"),
        "default": ("C2", "^"),
    }
    for field, ylabel, name, floor in (
        ("seconds", "wall time (s)", "time_vs_atoms.png", 0.0),
        (
            "peak_mib",
            f"peak memory above baseline (MiB; below {MEMORY_RESOLUTION_MIB:g} not shown)",
            "memory_vs_atoms.png",
            MEMORY_RESOLUTION_MIB,
        ),
    ):
        figure, axes = plt.subplots(figsize=(7, 5))
        for key, label in COLUMNS.items():
            colour, marker = styles[key]
            for mode, line in zip(MODES, ("-", "--")):
                points = [
                    (n, getattr(cases[key, mode, n], field))
                    for n in sizes
                    if not cases[key, mode, n].note and getattr(cases[key, mode, n], field) >= floor
                ]
                if points:
                    x, y = zip(*points)
                    axes.plot(x, y, line, color=colour, marker=marker, label=f"{mode}: {label}")
        axes.axvline(
            tutorial.DENSE_PAIR_ATOMS,
            color="grey",
            lw=0.8,
            ls=":",
            label=f"DENSE_PAIR_ATOMS = {tutorial.DENSE_PAIR_ATOMS}",
        )
        axes.set(xscale="log", yscale="log", xlabel="n_atoms (0.1 atoms/Å³)", ylabel=ylabel)
        axes.set_title(f"RotationInvariantModel pair sum, cutoff {CUTOFF:g} Å")
        axes.legend(fontsize=8)
        axes.grid(True, which="both", alpha=0.3)
        figure.tight_layout()
        paths.append(os.path.join(out, name))
        figure.savefig(paths[-1], dpi=120)
        plt.close(figure)
    if rows:
        figure, axes = plt.subplots(figsize=(7, 5))
        for task, colour in (("featurize", "C0"), ("audit", "C3")):
            chosen = [r for r in rows if r.task == task]
            x = [r.molecules for r in chosen]
            axes.plot(x, [r.rate_1 for r in chosen], "-o", color=colour, label=f"{task}, 1 worker")
            axes.plot(
                x, [r.rate_2 for r in chosen], "--s", color=colour, label=f"{task}, 2 workers"
            )
        axes.set(xscale="log", yscale="log", xlabel="molecules (QM9)", ylabel="molecules/s")
        axes.set_title("Throughput versus number of molecules")
        axes.legend(fontsize=8)
        axes.grid(True, which="both", alpha=0.3)
        figure.tight_layout()
        paths.append(os.path.join(out, "throughput_vs_molecules.png"))
        figure.savefig(paths[-1], dpi=120)
        plt.close(figure)
    return paths


def json_rows(
    cases: dict[tuple[str, str, int], Case],
    sizes: Sequence[int],
    rows: Sequence[Throughput],
    target_mib: Optional[float],
) -> list[dict[str, Any]]:
    """Result rows (see ``benchmarks/_rows.py``) for ``--json``.

    The largest size where both dense pairs and neighbour lists ran (time and memory, for
    prediction and for forces), the 2-worker speed-ups at the largest number of molecules,
    and the 5,000-atom memory target.
    """
    out = []
    for mode in MODES:
        both = [
            n
            for n in sizes
            if not cases["dense", mode, n].note and not cases["neighbour", mode, n].note
        ]
        if not both:
            continue
        n = max(both)
        dense, listed = cases["dense", mode, n], cases["neighbour", mode, n]
        what = "predict" if mode == "predict" else "forces"
        for field, unit, label in (("seconds", "s", "time"), ("peak_mib", "MiB", "peak memory")):
            ours, peer = getattr(listed, field), getattr(dense, field)
            out.append(
                result_row(
                    "scaling",
                    f"{what} {n:,} atoms, {label}: neighbour list vs dense pairs",
                    PATHS["neighbour"].label,
                    PATHS["dense"].label,
                    ours,
                    peer,
                    unit,
                    higher_is_better=False,
                )
            )
    for task, label in (("featurize", "ConformerFeaturizer"), ("audit", "audit")):
        chosen = [r for r in rows if r.task == task]
        if chosen:
            row = max(chosen, key=lambda r: r.molecules)
            out.append(
                result_row(
                    "scaling",
                    f"{task} {row.molecules:,} QM9 molecules: 2 workers vs 1",
                    f"{label}(n_jobs=2)",
                    f"{label}(n_jobs=1)",
                    row.rate_2,
                    row.rate_1,
                    "mol/s",
                    higher_is_better=True,
                )
            )
    if target_mib is not None:
        out.append(
            result_row(
                "scaling",
                f"predict + forces {TARGET_ATOMS:,} atoms, cutoff {CUTOFF:g} Å: peak RSS",
                "RotationInvariantModel(cutoff=5.0)",
                "2 GiB budget",
                target_mib,
                TARGET_MIB,
                "MiB",
                higher_is_better=False,
                target=f"<= {TARGET_MIB:.0f} MiB",
                met=target_mib <= TARGET_MIB,
            )
        )
    return out


# ---- main ------------------------------------------------------------------------------------


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="atoms up to 3,000, molecules 1,000 and 5,000, fewer repeats (1 to 3 minutes)",
    )
    parser.add_argument("--sizes", type=int, nargs="+", help=f"n_atoms (default {SIZES})")
    parser.add_argument(
        "--molecules", type=int, nargs="*", help=f"QM9 molecules (default {MOLECULES}; none: skip)"
    )
    parser.add_argument(
        "--out", default=os.path.join("benchmarks", "results", "scaling"), help="folder for PNGs"
    )
    parser.add_argument("--json", metavar="PATH", help="write rows for the combined report here")
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = list(QUICK_SIZES if args.quick else SIZES)
    if args.molecules is None:
        args.molecules = list(QUICK_MOLECULES if args.quick else MOLECULES)
    for name in ("sizes", "molecules"):
        values = getattr(args, name)
        if any(v < 1 for v in values):
            parser.error(f"--{name} must be positive, got {values}")
    args.sizes = sorted(set(args.sizes))
    args.molecules = sorted(set(args.molecules))
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run both sections, print the tables, save the plots and, if asked, the JSON rows."""
    args = parse_args(argv)
    started = time.perf_counter()
    budget_s, max_runs = (0.5, 10) if args.quick else (2.0, 30)
    print("# Scaling benchmark\n")
    print(
        f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, load average "
        f"{load_average()} at start; Python {platform.python_version()}, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}"
    )
    largest = max(args.sizes)
    positions, _ = liquid_geometry(largest)
    per_atom = neighbor_pairs(positions, CUTOFF).shape[1] / largest
    closest = cKDTree(positions).query(positions, k=2)[0][:, 1].min()
    print(
        f"- systems: {DENSITY} atoms/Å³ jittered grid, H/C/N/O/S; at {largest:,} atoms "
        f"{per_atom:.1f} neighbours within {CUTOFF:g} Å per atom, closest pair {closest:.2f} Å"
    )
    print(
        f"- each case in a fresh process; best of 2 to {max_runs} runs (more while under "
        f"{budget_s:g} s); dense paths skipped above {DENSE_LIMIT_BYTES / 1e9:g} GB estimated "
        f"(n² x {HIDDEN} hidden x 4 B x {DENSE_TENSORS} tensors)\n"
    )

    context = process_context()
    cases = pair_section(context, args.sizes, budget_s, max_runs)
    print(pair_tables(cases, args.sizes))
    listed = {m: [cases["neighbour", m, n].seconds for n in args.sizes] for m in MODES}
    for mode in MODES:
        dense = [cases["dense", mode, n].seconds for n in args.sizes]
        where = crossover(args.sizes, dense, listed[mode])
        print(f"- crossover, {mode}, neighbour lists vs dense pairs: {where}")
    for mode in MODES:
        masked = [cases["masked", mode, n].seconds for n in args.sizes]
        where = crossover(args.sizes, masked, listed[mode])
        print(f"- crossover, {mode}, neighbour lists vs dense pairs x envelope: {where}")
    switch = tutorial.DENSE_PAIR_ATOMS
    print(
        f"- the default cutoff model switches from dense pairs x envelope to neighbour lists "
        f"above DENSE_PAIR_ATOMS = {switch} atoms\n"
    )

    measured, why = in_fresh_process(context, measure_target, TARGET_ATOMS)
    target_mib: Optional[float] = None
    if measured is None:
        print(f"{TARGET_ATOMS:,}-atom system, cutoff {CUTOFF:g} Å: {why}\n")
    else:
        target_mib, increment, seconds = measured
        verdict = "met" if target_mib <= TARGET_MIB else "NOT met"
        print(
            f"{TARGET_ATOMS:,}-atom system, cutoff {CUTOFF:g} Å: peak memory {target_mib:,.0f} MiB "
            f"(target <= {TARGET_MIB:,.0f} MiB: {verdict})"
        )
        print(
            f"- whole-process peak RSS of predict + forces in a fresh process, imports included; "
            f"{increment:,.0f} MiB of it above the RSS after imports; {seconds:.2f} s\n"
        )

    rows: list[Throughput] = []
    if args.molecules:
        rows, note = throughput_section(args.molecules, budget_s, 3)
        print(throughput_table(rows))
        print(f"\n- {note}")
        print(
            f"- 2-worker pools warmed before the clock runs; one process runs torch with "
            f"{torch.get_num_threads()} threads, joblib gives each of two workers "
            f"{max(1, (os.cpu_count() or 1) // 2)}\n"
        )

    for path in plot(args.out, cases, args.sizes, rows):
        print(f"- plot: {path}")
    if args.json:
        write_rows(args.json, json_rows(cases, args.sizes, rows, target_mib))
        print(f"- JSON rows: {args.json}")
    print(
        f"- load average {load_average()} at end; wall time {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
