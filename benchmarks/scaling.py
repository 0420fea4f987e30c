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
   memory, the peak RSS (``VmHWM``) less the process's RSS after imports and one 8-atom
   warm-up call, is its own. The dense paths are skipped where their pair tensors would need
   more than 6 GB. The crossovers, the sizes above which neighbour lists are faster than
   either dense path, are interpolated on the log-log curves.
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
import os
import platform
import sys
import time
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import torch
from _measure import best_time, in_fresh_process, load_average, max_rss_mib, process_context
from _rows import add_json_option, write_rows
from _scaling_report import crossover, json_rows, pair_tables, plot
from _scaling_systems import (
    CUTOFF,
    DENSE_LIMIT_BYTES,
    DENSE_TENSORS,
    DENSITY,
    HIDDEN,
    MODES,
    PATHS,
    TARGET_ATOMS,
    TARGET_MIB,
    Case,
    dense_bytes,
    liquid_geometry,
    model_for,
    system_inputs,
)
from _scaling_throughput import Throughput, throughput_section, throughput_table
from scipy.spatial import cKDTree

import dc_invariant.models.tutorial as tutorial
from dc_invariant.neighbors import neighbor_pairs

SIZES = (10, 30, 100, 300, 1000, 3000, 10_000)
QUICK_SIZES = (10, 30, 100, 300, 1000, 3000)
MOLECULES = (1_000, 10_000, 100_000)
QUICK_MOLECULES = (1_000, 5_000)
WARM_ATOMS = 8
# What the measuring processes start with. torch._dynamo too: DeepChem builds an Adam
# optimiser on a model's first call, even for prediction, and that imports it (1.5 s).
PRELOAD = ("dc_invariant.models", "dc_invariant.featurizer", "torch._dynamo")


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
    model = model_for(PATHS[path_key])
    forces = mode == "forces"
    # Torch's thread pool and the first-call set-up of the path are costs of a process, not
    # of a size: a tiny call pays them before the baseline is read.
    model.predict_arrays(*system_inputs(WARM_ATOMS), forces=forces)
    inputs = system_inputs(n_atoms)
    baseline = max_rss_mib()
    # At least two runs, even for the slowest cases: one run alone is at the mercy of the
    # other processes on the machine (dense, 3,000 atoms: 1.1 to 1.9 s from call to call).
    best = best_time(
        lambda: model.predict_arrays(*inputs, forces=forces),
        min_runs=2,
        max_runs=max_runs,
        budget_s=budget_s,
    )
    peak = max_rss_mib()
    return Case(best.seconds, best.runs, peak - baseline, peak)


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
    model = model_for(PATHS["default"])
    inputs = system_inputs(n_atoms)
    baseline = max_rss_mib()
    start = time.perf_counter()
    model.predict_arrays(*inputs)
    model.predict_arrays(*inputs, forces=True)
    seconds = time.perf_counter() - start
    peak = max_rss_mib()
    return peak, peak - baseline, seconds


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
    add_json_option(parser)
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

    context = process_context(PRELOAD)
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
