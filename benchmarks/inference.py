"""Batched inference of RotationInvariantModel versus the NumPy reference, one molecule at a time.

Both use the same weights (seeded `dc_invariant.reference.init_weights`, loaded into the
torch model) on the same QM9 molecules with their DFT geometries, in the same run. The
reference is `dc_invariant.reference.rotation_invariant` called once per molecule, as the
tutorial does; the model is ``RotationInvariantModel.predict`` on the whole dataset, in
float64 (agrees with the reference to rounding) and float32. Target: at least 100x the
reference's molecules per second, with outputs that agree.

Run ``python benchmarks/inference.py`` (``--quick`` for 1,000 molecules); needs the ``qm9``
extra. ``--json PATH`` also writes the comparisons as result rows (see ``benchmarks/_rows.py``)
for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Optional

import numpy as np
import torch
from _rows import result_row, write_rows

from dc_invariant.datasets import load_qm9
from dc_invariant.models import RotationInvariantModel
from dc_invariant.reference import init_weights, rotation_invariant

TARGET_SPEEDUP = 100.0


def best_of(repeats: int, run):
    """Best wall time of ``repeats`` calls and the last result."""
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: Optional[list[str]] = None) -> int:
    """Time both paths and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1,000 molecules")
    parser.add_argument(
        "--json", metavar="PATH", help="also write the comparisons as JSON result rows to PATH"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.molecules = 1_000
    _, (dataset,), _ = load_qm9(tasks=["u0_atom"], limit=args.molecules, splitter=None, seed=0)
    weights = init_weights("rotation", n_features=11, seed=0)
    molecules = list(dataset.X)
    print(f"# {len(molecules)} QM9 molecules, {np.mean([c.n_atoms for c in molecules]):.1f} atoms")
    print(
        f"# {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads\n"
    )

    loop_seconds, reference = best_of(
        1,
        lambda: np.array(
            [rotation_invariant(c.positions, c.features, *weights) for c in molecules]
        ),
    )
    rows = [("NumPy reference, one call per molecule (peer)", loop_seconds, 1.0, 0.0)]
    speedups = {}
    for dtype in ("float64", "float32"):
        model = RotationInvariantModel(dtype=dtype, batch_size=args.batch_size)
        model.load_reference_weights(weights)
        seconds, predicted = best_of(args.repeats, lambda m=model: m.predict(dataset)[:, 0])
        deviation = float(np.max(np.abs(predicted - reference) / np.abs(reference)))
        speedups[dtype] = loop_seconds / seconds
        rows.append(
            (f"RotationInvariantModel.predict, {dtype}", seconds, speedups[dtype], deviation)
        )

    print("| method | seconds | molecules/s | speed-up | max relative difference |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, speedup, deviation in rows:
        print(
            f"| {name} | {seconds:.3f} | {len(molecules) / seconds:,.0f} | {speedup:.1f}x | "
            f"{deviation:.1e} |"
        )
    best = max(speedups.values())
    print(
        f"\ntarget >= {TARGET_SPEEDUP:.0f}x: {'met' if best >= TARGET_SPEEDUP else 'NOT met'} "
        f"(best {best:.1f}x)"
    )
    if args.json:
        peer_rate = len(molecules) / loop_seconds
        write_rows(
            args.json,
            [
                result_row(
                    "inference",
                    f"predict {len(molecules):,} QM9 molecules, same weights",
                    name,
                    "NumPy reference loop",
                    len(molecules) / seconds,
                    peer_rate,
                    "molecules/s",
                    higher_is_better=True,
                    target=f">= {TARGET_SPEEDUP:.0f}x",
                    met=speedup >= TARGET_SPEEDUP,
                )
                for name, seconds, speedup, _ in rows[1:]
            ],
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
