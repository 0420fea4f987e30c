"""Training threads under load: SchNet epochs and KernelModel fits, quiet and busy.

A training step is many small kernels, each ending in a barrier across torch's threads; when
another process holds a core, a thread that loses its core makes every barrier wait for the
scheduler. LAPACK's symmetric eigensolver is the extreme case: its reduction to tridiagonal
form ends each of its n steps in a barrier. This benchmark measures how much, on a quiet
machine and with ``--busy`` processes spinning on a core each (plain Python loops, started
and stopped by this script):

- one ``SchNetModel.fit`` epoch on QM9 molecules (the size of ``benchmarks/schnet.py``), the
  best of ``--epochs`` after a warm-up, on one thread and on every usable CPU
  (``RUNTIME.training_threads``);
- one ``KernelModel().fit`` on ``--kernel-molecules`` QM9 molecules, width and
  regularization search included, with its eigendecompositions on one thread and on every
  usable CPU (``RUNTIME.eigen_threads``; everything else on torch's own threads);
- one such eigendecomposition alone, of a 2,000 x 2,000 kernel-like matrix (the search's
  size on 2,000 molecules).

``--nice N`` starts the busy processes at that niceness (negative: ahead of this one, as a
job started with higher priority would be; needs the right to raise priority).

Defaults (see `dc_invariant.models.runtime`) are marked. Run ``python benchmarks/threads.py``
(``--molecules``, ``--epochs``, ``--kernel-molecules``, ``--busy``); needs the ``qm9`` extra.
Each table gives the seconds and the ratio to the quiet machine's best.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any, Optional

import torch
from _measure import best_time, cpu_model, load_average, usable_cpus

from dc_invariant.datasets import load_qm9
from dc_invariant.models import RUNTIME, KernelModel, SchNetModel
from dc_invariant.models.runtime import eigh

SIZES = {"n_atom_basis": 64, "n_filters": 64, "n_interactions": 4, "n_rbf": 25}


def epoch(dataset: Any, threads: int, epochs: int) -> float:
    """Seconds of the best of ``epochs`` SchNet epochs on ``threads`` torch threads, after
    a warm-up epoch."""
    model = SchNetModel(**SIZES, batch_size=32, learning_rate=1e-3, seed=0)
    with setting("training_threads", threads):
        model.fit(dataset, nb_epoch=1, checkpoint_interval=0)
        best = best_time(lambda: model.fit(dataset, nb_epoch=1, checkpoint_interval=0), epochs)
    return best.seconds


def kernel_fit(dataset: Any, threads: int) -> float:
    """Seconds of one default ``KernelModel`` fit with its eigendecompositions on
    ``threads`` torch threads."""
    with setting("eigen_threads", threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a search edge on a small set is not the point here
        return best_time(lambda: KernelModel().fit(dataset)).seconds


@contextlib.contextmanager
def setting(name: str, value: int) -> Iterator[None]:
    """``RUNTIME.<name> = value`` inside the context, restored after."""
    saved = getattr(RUNTIME, name)
    setattr(RUNTIME, name, value)
    try:
        yield
    finally:
        setattr(RUNTIME, name, saved)


def eigh_alone(threads: int) -> float:
    """Seconds of the best of two ``runtime.eigh`` calls on a seeded 2,000 x 2,000 SPD
    matrix, on ``threads`` torch threads."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(2_000, 2_000, dtype=torch.float64, generator=generator)
    matrix = a @ a.T
    with setting("eigen_threads", threads):
        return best_time(lambda: eigh(matrix), 2).seconds


def spinners(n: int, nice: int) -> list[subprocess.Popen]:
    """``n`` processes spinning on a core each at niceness ``nice``, until killed."""
    command = [sys.executable, "-c", "while True: pass"]
    return [subprocess.Popen(["nice", "-n", str(nice), *command]) for _ in range(n)]


def table(title: str, rows: list[tuple[str, int, float]], default: int) -> None:
    """One work's rows as a Markdown table, then each thread count's worst case."""
    floor = min(s for c, t, s in rows if c == "quiet")
    print(f"\n| condition | threads | {title} (s) | x quiet best |")
    print("|---|---|---:|---:|")
    for condition, threads, seconds in rows:
        label = f"{threads} (the default)" if threads == default else str(threads)
        print(f"| {condition} | {label} | {seconds:.2f} | {seconds / floor:.2f} |")
    for threads in sorted({t for _, t, _ in rows}):
        worst = max(s for c, t, s in rows if t == threads) / floor
        print(f"{threads} thread(s), worst case: {worst:.2f}x the quiet machine's best")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=1_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--kernel-molecules", type=int, default=1_000)
    parser.add_argument("--busy", type=int, default=1, help="spinning processes when busy")
    parser.add_argument("--nice", type=int, default=0, help="niceness of the busy processes")
    args = parser.parse_args(argv)
    cpus = usable_cpus()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_model()}, {cpus} CPUs")
    print(f"# load before: {load_average()}")
    size = max(args.molecules, args.kernel_molecules)
    _, (everything,), _ = load_qm9(tasks=["u0_atom"], limit=size, splitter=None, seed=0)
    counts = sorted({1, cpus})
    works = {
        f"SchNet epoch, {args.molecules:,} molecules": (
            lambda threads: epoch(everything.select(range(args.molecules)), threads, args.epochs),
            RUNTIME.training_threads or torch.get_num_threads(),
        ),
        f"KernelModel fit, {args.kernel_molecules:,} molecules": (
            lambda threads: kernel_fit(everything.select(range(args.kernel_molecules)), threads),
            RUNTIME.eigen_threads or torch.get_num_threads(),
        ),
        "eigh 2,000 x 2,000": (eigh_alone, RUNTIME.eigen_threads or torch.get_num_threads()),
    }
    rows: dict[str, list[tuple[str, int, float]]] = {title: [] for title in works}
    busy = f"{args.busy} busy" + (f" (nice {args.nice})" if args.nice else "")
    for condition, n_busy in (("quiet", 0), (busy, args.busy)):
        procs = spinners(n_busy, args.nice)
        try:
            time.sleep(0.5 if n_busy else 0)
            for title, (run, _) in works.items():
                for threads in counts:
                    seconds = run(threads)
                    rows[title].append((condition, threads, seconds))
                    print(f"{title}, {condition}, {threads} thread(s): {seconds:.2f} s",
                          flush=True)  # fmt: skip
        finally:
            for p in procs:
                p.kill()
                p.wait()
    for title, (_, default) in works.items():
        table(title, rows[title], default)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
