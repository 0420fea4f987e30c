"""Batched inference of RotationInvariantModel against the arithmetic floor of its own work.

The tutorial network sends every ordered atom pair of every molecule through a 16-unit tanh
layer, so 10,000 QM9 molecules (18 atoms on average) are 53.5 million hidden units
(Σ n² x 16). Whatever the implementation, those units must be built (a multiply-add), activated
and summed. The **floor** is that work alone, timed in the same run on as many values in
1 MiB pieces (the model's piece size, so both run from cache): the faster of ``np.tanh`` and
``torch.tanh``, one multiply-add pass (``torch.add(v, x, alpha=c)``) and one sum pass, all on
one thread, as the model's inference path runs. Targets: ``RotationInvariantModel.predict``
within 2.5x of the floor in float32 and 3x in float64, with float64 agreeing with
``dc_invariant.reference.rotation_invariant`` to 1e-10.

The NumPy reference called once per molecule, as the tutorial does, is kept as an
informational peer: its speed depends mostly on per-call overhead and the CPU's vector units.
The model's torch default thread count is timed once too, to show why inference pins one.

Run ``python benchmarks/inference.py`` (``--quick`` for 1,000 molecules); needs the ``qm9``
extra. ``--json PATH`` also writes the comparisons as result rows (see ``benchmarks/_rows.py``)
for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import Optional

import numpy as np
import torch
from _measure import best_time, cpu_model, load_average
from _rows import add_json_option, result_row, write_rows

import dc_invariant.models.elementwise as elementwise
import dc_invariant.models.tutorial_networks as networks
from dc_invariant.datasets import load_qm9
from dc_invariant.models import RUNTIME, RotationInvariantModel
from dc_invariant.reference import init_weights, rotation_invariant

TARGETS = {"float32": 2.5, "float64": 3.0}
HIDDEN = 16


def floor_parts(n_values: int, dtype: str, rng: np.random.Generator) -> dict[str, float]:
    """Seconds of each pass of the floor over ``n_values`` numbers, in the model's pieces."""
    piece = networks._PIECE_BYTES // np.dtype(dtype).itemsize
    full, rest = divmod(n_values, piece)
    x = torch.as_tensor(rng.uniform(-3.0, 3.0, piece).astype(dtype))
    v, y = torch.empty_like(x), torch.empty_like(x)
    sizes = [piece] * full + ([rest] if rest else [])

    def each(step: Callable[[int], object]) -> Callable[[], None]:
        return lambda: [step(n) for n in sizes]

    xn, yn = x.numpy(), y.numpy()
    return {
        "np.tanh": best_time(each(lambda n: np.tanh(xn[:n], out=yn[:n]))).seconds,
        "torch.tanh": best_time(each(lambda n: torch.tanh(x[:n], out=y[:n]))).seconds,
        "multiply-add": best_time(
            each(lambda n: torch.add(v[:n], x[:n], alpha=0.5, out=y[:n]))
        ).seconds,
        "sum": best_time(each(lambda n: y[:n].view(-1, HIDDEN).sum(0))).seconds,
    }


def print_kernels() -> None:
    """Per-million-value time of every candidate in-place kernel on this CPU, on the
    inference paths' one thread, and the one `dc_invariant.models.elementwise` picks."""
    print("| kernel | dtype | torch (ms / 1M) | NumPy ufunc (ms / 1M) | used |")
    print("|---|---|---:|---:|---|")
    for name in elementwise.KERNELS:
        for dtype in (torch.float32, torch.float64):
            seconds = elementwise.timings(name, dtype)
            print(
                f"| {name} | {str(dtype)[6:]} | {seconds['torch'] * 1e3:.3f} | "
                f"{seconds['numpy'] * 1e3:.3f} | {elementwise.choice(name, dtype)} |"
            )
    print()


def main(argv: Optional[list[str]] = None) -> int:
    """Time the floor, the model and the reference loop; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7, help="best of, interleaved")
    parser.add_argument("--quick", action="store_true", help="1,000 molecules")
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.molecules = 1_000
    _, (dataset,), _ = load_qm9(tasks=["u0_atom"], limit=args.molecules, splitter=None, seed=0)
    weights = init_weights("rotation", n_features=11, seed=0)
    molecules = list(dataset.X)
    sizes = np.array([c.n_atoms for c in molecules])
    n_values = int((sizes**2).sum()) * HIDDEN
    print(
        f"# {len(molecules)} QM9 molecules, {sizes.mean():.1f} atoms on average, "
        f"{n_values:,} hidden units (Σ n² x {HIDDEN})"
    )
    print(
        f"# {platform.platform()}, {cpu_model()}, {os.cpu_count()} CPUs, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads by default), load average "
        f"{load_average()} at start\n"
    )
    print_kernels()

    start = time.perf_counter()
    reference = np.array([rotation_invariant(c.positions, c.features, *weights) for c in molecules])
    loop_seconds = time.perf_counter() - start

    models = {}
    for dtype in TARGETS:
        # predict batches by atoms (the model's predict_batch_atoms), not by batch_size.
        model = RotationInvariantModel(dtype=dtype)
        model.load_reference_weights(weights)
        model.predict(dataset)  # warm up
        models[dtype] = model
    best: dict[tuple[str, str], float] = {}
    deviations: dict[str, float] = {}
    rng = np.random.default_rng(0)
    threads = torch.get_num_threads()
    # Interleaved, best of each: the machine is shared, and a ratio should compare the
    # floor and the model under the same load.
    for _ in range(args.repeats):
        for dtype, model in models.items():
            torch.set_num_threads(1)
            try:
                parts = floor_parts(n_values, dtype, rng)
            finally:
                torch.set_num_threads(threads)
            for name, seconds in parts.items():
                best[dtype, name] = min(best.get((dtype, name), np.inf), seconds)
            seconds, predicted, _ = best_time(lambda model=model: model.predict(dataset))
            best[dtype, "predict"] = min(best.get((dtype, "predict"), np.inf), seconds)
            relative = np.abs(predicted[:, 0] - reference) / np.abs(reference)
            deviations[dtype] = float(np.max(relative))
    # Torch's own thread setting, for comparison: once or twice, it can be very slow when
    # the machine is busy.
    RUNTIME.inference_threads = 0
    try:
        best["float32", "default threads"] = best_time(
            lambda: models["float32"].predict(dataset), 2
        ).seconds
    finally:
        RUNTIME.inference_threads = 1

    floors = {
        dtype: min(best[dtype, "np.tanh"], best[dtype, "torch.tanh"])
        + best[dtype, "multiply-add"]
        + best[dtype, "sum"]
        for dtype in TARGETS
    }
    rate = len(molecules)
    print("| dtype | np.tanh | torch.tanh | multiply-add | sum | floor (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for dtype in TARGETS:
        parts = " | ".join(
            f"{best[dtype, k]:.4f}" for k in ("np.tanh", "torch.tanh", "multiply-add", "sum")
        )
        print(f"| {dtype} | {parts} | {floors[dtype]:.4f} |")
    print(
        "\n| method | seconds | molecules/s | x floor | speed-up on the NumPy loop | "
        "max relative difference |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    rows = []
    for dtype in TARGETS:
        rows.append((f"floor, {dtype}", floors[dtype], floors[dtype], None))
    for dtype in TARGETS:
        rows.append(
            (
                f"RotationInvariantModel.predict, {dtype}",
                best[dtype, "predict"],
                floors[dtype],
                deviations[dtype],
            )
        )
    rows.append(
        (
            f"RotationInvariantModel.predict, float32, torch's {threads} threads",
            best["float32", "default threads"],
            floors["float32"],
            None,
        )
    )
    rows.append(("NumPy reference, one call per molecule (peer)", loop_seconds, None, 0.0))
    for name, seconds, floor, deviation in rows:
        times = f"{seconds / floor:.2f}x" if floor else "-"
        difference = f"{deviation:.1e}" if deviation is not None else "-"
        print(
            f"| {name} | {seconds:.4f} | {rate / seconds:,.0f} | {times} | "
            f"{loop_seconds / seconds:.1f}x | {difference} |"
        )
    print()
    met = {}
    for dtype, target in TARGETS.items():
        ratio = best[dtype, "predict"] / floors[dtype]
        met[dtype] = ratio <= target and (dtype != "float64" or deviations[dtype] <= 1e-10)
        print(
            f"target {dtype} <= {target}x the floor: {'met' if met[dtype] else 'NOT met'} "
            f"({ratio:.2f}x; max relative difference {deviations[dtype]:.1e})"
        )
    if args.json:
        measure = f"predict {len(molecules):,} QM9 molecules, same weights"
        results = []
        for dtype, target in TARGETS.items():
            name = f"RotationInvariantModel.predict, {dtype}"
            results.append(
                result_row(
                    "inference",
                    f"{measure}: time against the arithmetic floor",
                    name,
                    f"floor: tanh + multiply-add + sum over {n_values / 1e6:.1f} M units",
                    best[dtype, "predict"],
                    floors[dtype],
                    "s",
                    higher_is_better=False,
                    target=f"<= {target}x floor (ratio >= {1 / target:.2f})",
                    met=met[dtype],
                )
            )
        for dtype in TARGETS:
            results.append(
                result_row(
                    "inference",
                    measure,
                    f"RotationInvariantModel.predict, {dtype}",
                    "NumPy reference loop",
                    rate / best[dtype, "predict"],
                    rate / loop_seconds,
                    "molecules/s",
                    higher_is_better=True,
                )
            )
        write_rows(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
