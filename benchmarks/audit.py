"""Symmetry-audit throughput on QM9: dc_invariant's batched audit against a naive loop.

Both audit ``RotationInvariantModel`` (float32, seeded, untrained: invariance does not depend
on training) for the four symmetries with 3 samples each, on QM9 molecules with their DFT
geometries, in the same run. The naive loop transforms one molecule once and calls
``model.predict`` on it alone, as a hand-written check would; ``dc_invariant.audit`` sends all
transformed copies of a chunk through the model in one call. Targets: at least 20x the naive
loop's molecules per second (on one worker, like the loop), the full QM9 (130,831 molecules)
audited in at most 20 s (on every core: threads, as the command line's default), and
on the full set the command line end to end, ``dc-invariant audit --model rotation --dataset
qm9 --n-samples 3 --out DIR`` (Python start, imports, loading and report files included), in
at most 40 s.

Run ``python benchmarks/audit.py`` (full QM9; needs the ``qm9`` extra) or ``--quick``.
``--json PATH`` also writes the comparison as result rows (see ``benchmarks/_rows.py``) for
``benchmarks/run_all.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Optional

import numpy as np
import torch
from _rows import add_json_option, result_row, write_rows

from dc_invariant._deepchem import import_deepchem
from dc_invariant.auditing import SYMMETRIES, audit
from dc_invariant.auditing.copies import TUTORIAL_ROTATION
from dc_invariant.datasets import load_qm9
from dc_invariant.models import RotationInvariantModel
from dc_invariant.symmetry import (
    mixing_permutation,
    random_reflection,
    random_rotation,
    random_translation,
    transform,
)

N_SAMPLES = 3
FULL_SECONDS = 20.0
CLI_SECONDS = 40.0


def one_element(symmetry: str, sample: int, conformer, rng: np.random.Generator) -> dict:
    """The group element a hand-written check would draw: the same kinds as the audit's."""
    if symmetry == "permutation":
        return {"permutation": mixing_permutation(conformer.atomic_numbers, rng)}
    if symmetry == "translation":
        return {"translation": random_translation(rng, 10.0 if sample % 2 == 0 else 1e3)}
    if symmetry == "rotation":
        return {"rotation": TUTORIAL_ROTATION if sample == 0 else random_rotation(rng)}
    return {"rotation": random_reflection(rng) if sample % 2 == 0 else -random_rotation(rng)}


def naive_loop(model: RotationInvariantModel, molecules: list, dc) -> float:
    """Seconds for one-molecule, one-transform, one-call checks of every symmetry."""

    def one(conformer) -> np.ndarray:
        X = np.empty(1, dtype=object)
        X[0] = conformer
        return model.predict(dc.data.NumpyDataset(X))

    start = time.perf_counter()
    for m, conformer in enumerate(molecules):
        rng = np.random.default_rng([0, m])
        base = one(conformer)
        for symmetry in SYMMETRIES:
            for sample in range(N_SAMPLES):
                moved = one(transform(conformer, **one_element(symmetry, sample, conformer, rng)))
                np.abs(moved - base).max()
    return time.perf_counter() - start


def command_line() -> float:
    """Seconds of the full-QM9 audit command, end to end, in a fresh process."""
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable, "-m", "dc_invariant.cli", "audit", "--model", "rotation",
            "--dataset", "qm9", "--n-samples", str(N_SAMPLES), "--out", os.path.join(out, "r"),
        ]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def main(argv: Optional[list[str]] = None) -> int:
    """Time both and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=None, help="default: all of QM9")
    parser.add_argument("--naive", type=int, default=300, help="molecules for the naive loop")
    parser.add_argument("--quick", action="store_true", help="2,000 molecules, naive 100")
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.molecules, args.naive = 2_000, 100
    dc = import_deepchem()
    start = time.perf_counter()
    _, (dataset,), _ = load_qm9(tasks=["u0"], limit=args.molecules, splitter=None)
    load_seconds = time.perf_counter() - start
    print(
        f"# {len(dataset)} QM9 molecules loaded in {load_seconds:.1f} s; "
        f"{platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}\n"
    )
    model = RotationInvariantModel(seed=0)

    start = time.perf_counter()
    report = audit(model, dataset, n_samples=N_SAMPLES)
    ours = time.perf_counter() - start
    # Every core: the chunks on threads of this process (dc_invariant's torch models).
    start = time.perf_counter()
    every_core = audit(model, dataset, n_samples=N_SAMPLES, n_jobs=-1)
    threaded = time.perf_counter() - start
    if not every_core.molecules.equals(report.molecules):
        raise RuntimeError("audit(n_jobs=-1) differs from audit(n_jobs=1): a defect")
    naive = naive_loop(model, list(dataset.X[: args.naive]), dc)

    ours_rate, naive_rate = len(dataset) / ours, args.naive / naive
    full = len(dataset) >= 130_831
    cli = command_line() if full else None
    print("| method | molecules | seconds | molecules/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| naive loop (one molecule, one transform, one call) | {args.naive} | {naive:.1f} | "
        f"{naive_rate:,.1f} | 1.0x |"
    )
    print(
        f"| dc_invariant.audit | {len(dataset)} | {ours:.1f} | {ours_rate:,.0f} | "
        f"{ours_rate / naive_rate:.0f}x |"
    )
    print(
        f"| dc_invariant.audit(n_jobs=-1), {os.cpu_count()} threads | {len(dataset)} | "
        f"{threaded:.1f} | {len(dataset) / threaded:,.0f} | "
        f"{len(dataset) / threaded / naive_rate:.0f}x |"
    )
    if cli is not None:
        label = f"`dc-invariant audit --model rotation --dataset qm9 --n-samples {N_SAMPLES}`"
        print(f"| {label}, end to end | {len(dataset)} | {cli:.1f} | {len(dataset) / cli:,.0f} | |")
    print()
    print(report.format())
    speed = ours_rate / naive_rate >= 20
    print(
        f"\ntarget >= 20x the naive loop: {'met' if speed else 'NOT met'}; "
        + (
            f"full QM9 <= {FULL_SECONDS:.0f} s on every core: "
            f"{'met' if threaded <= FULL_SECONDS else 'NOT met'} ({threaded:.1f} s; "
            f"{ours:.1f} s on one)"
            if full
            else "full-QM9 time: not measured (subset)"
        )
    )
    if cli is not None:
        print(f"command line end to end <= {CLI_SECONDS:.0f} s: "
              f"{'met' if cli <= CLI_SECONDS else 'NOT met'} ({cli:.1f} s)")  # fmt: skip
    if args.json:
        results = [
            result_row(
                "audit",
                f"audit QM9, 4 symmetries x {N_SAMPLES} samples (ours: {len(dataset):,} "
                f"molecules, naive loop: {args.naive:,})",
                "dc_invariant.audit",
                "naive audit loop",
                ours_rate,
                naive_rate,
                "molecules/s",
                higher_is_better=True,
                target=">= 20x",
                met=speed,
            )
        ]
        if full:
            # The naive loop never runs on all of QM9; its time there is its measured rate's.
            results.append(
                result_row(
                    "audit",
                    f"audit all {len(dataset):,} QM9 molecules, 4 symmetries x {N_SAMPLES} samples",
                    f"dc_invariant.audit(n_jobs=-1): {os.cpu_count()} threads",
                    f"naive audit loop (at its rate on {args.naive:,} molecules)",
                    threaded,
                    len(dataset) / naive_rate,
                    "s",
                    higher_is_better=False,
                    target=f"ours <= {FULL_SECONDS:.0f} s",
                    met=threaded <= FULL_SECONDS,
                )
            )
            results.append(
                result_row(
                    "audit",
                    f"audit all {len(dataset):,} QM9 molecules: every core against one",
                    f"dc_invariant.audit(n_jobs=-1): {os.cpu_count()} threads",
                    "dc_invariant.audit(n_jobs=1)",
                    threaded,
                    ours,
                    "s",
                    higher_is_better=False,
                )
            )
            results.append(
                result_row(
                    "audit",
                    f"audit all {len(dataset):,} QM9 molecules from the command line, end to "
                    "end (start, imports, loading, report files)",
                    "dc-invariant audit --model rotation --dataset qm9",
                    "dc_invariant.audit(n_jobs=-1) alone, in this process",
                    cli,
                    threaded,
                    "s",
                    higher_is_better=False,
                    target=f"ours <= {CLI_SECONDS:.0f} s",
                    met=cli <= CLI_SECONDS,
                )
            )
        write_rows(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
