"""Training threads under load: SchNet epochs with 1 and 2 torch threads, quiet and busy.

A training step is many small kernels, each ending in a barrier across torch's threads; when
another process holds a core, a thread that loses its core makes every barrier wait for the
scheduler. This benchmark measures how much: one ``SchNetModel.fit`` epoch on QM9 molecules
(the size of ``benchmarks/schnet.py``), the best of ``--epochs`` after a warm-up, for every
of one thread and of every usable CPU, on a quiet machine and with ``--busy`` processes
spinning on a core each (plain Python loops, started and stopped by this script). The
default of ``RUNTIME.training_threads`` (see `dc_invariant.models.runtime`) is marked.

Run ``python benchmarks/threads.py`` (``--molecules``, ``--epochs``, ``--busy``); needs the
``qm9`` extra. The table gives each epoch's seconds and its ratio to the quiet machine's best.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any, Optional

import torch
from _measure import best_time, cpu_model, load_average, usable_cpus

from dc_invariant.datasets import load_qm9
from dc_invariant.models import RUNTIME, SchNetModel

SIZES = {"n_atom_basis": 64, "n_filters": 64, "n_interactions": 4, "n_rbf": 25}


def epoch(dataset: Any, threads: int, epochs: int) -> float:
    """Seconds of the best of ``epochs`` SchNet epochs on ``threads`` torch threads, after
    a warm-up epoch."""
    model = SchNetModel(**SIZES, batch_size=32, learning_rate=1e-3, seed=0)
    saved = RUNTIME.training_threads
    RUNTIME.training_threads = threads
    try:
        model.fit(dataset, nb_epoch=1, checkpoint_interval=0)
        best = best_time(lambda: model.fit(dataset, nb_epoch=1, checkpoint_interval=0), epochs)
    finally:
        RUNTIME.training_threads = saved
    return best.seconds


def spinners(n: int) -> list[subprocess.Popen]:
    """``n`` processes spinning on a core each, until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=1_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--busy", type=int, default=1, help="spinning processes when busy")
    args = parser.parse_args(argv)
    cpus = usable_cpus()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_model()}, {cpus} CPUs")
    print(f"# load before: {load_average()}")
    _, (train,), _ = load_qm9(tasks=["u0_atom"], limit=args.molecules, splitter=None, seed=0)
    counts = sorted({1, cpus})
    default = RUNTIME.training_threads or torch.get_num_threads()
    rows = []
    for condition, n_busy in (("quiet", 0), (f"{args.busy} busy", args.busy)):
        procs = spinners(n_busy)
        try:
            time.sleep(0.5 if n_busy else 0)
            for threads in counts:
                seconds = epoch(train, threads, args.epochs)
                rows.append((condition, threads, seconds))
                print(f"{condition}, {threads} thread(s): {seconds:.2f} s", flush=True)
        finally:
            for p in procs:
                p.kill()
                p.wait()
    floor = min(s for c, t, s in rows if c == "quiet")
    print(f"\n| condition | torch threads | epoch (s, {len(train):,} molecules) | x quiet best |")
    print("|---|---|---:|---:|")
    for condition, threads, seconds in rows:
        label = f"{threads} (the default)" if threads == default else str(threads)
        print(f"| {condition} | {label} | {seconds:.2f} | {seconds / floor:.2f} |")
    for threads in counts:
        worst = max(s for c, t, s in rows if t == threads) / floor
        print(f"{threads} thread(s), worst case: {worst:.2f}x the quiet machine's best epoch")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
