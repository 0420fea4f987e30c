"""SchNet's running costs: a symmetry audit against the tutorial network's, and a training epoch.

**Audit.** ``dc-invariant audit --model schnet --dataset qm9 --limit 3000`` and the same
command with ``--model rotation`` (the tutorial network), each in a fresh process, in the same
run: wall time (imports and QM9 loading included, as a user sees it), CPU time split into
user and system, and peak resident memory. Targets: SchNet within 3x the rotation network's
time and within 1 GiB at peak.

**Training.** One epoch of ``SchNetModel.fit`` on 10,000 QM9 molecules at the size
``benchmarks/qm9_accuracy.py`` trains (64 basis, 64 filters, 4 interactions, 25 Gaussians,
batches of 32), after a warm-up epoch, with the time spent preparing batches (validation,
centring, neighbour lists) measured on its own; the tutorial network's epoch is timed beside
it for reference. SchNetPack 2.1, the natural peer, needs Python 3.12 and cannot be installed
here (Python 3.11), so it is not run.

Run ``python benchmarks/schnet.py`` (``--quick``: 300 molecules audited, 1,000 trained);
needs the ``qm9`` extra. ``--json PATH`` also writes the comparisons as result rows (see
``benchmarks/_rows.py``) for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import torch
from _measure import best_time, load_average
from _rows import add_json_option, result_row, write_rows

from dc_invariant.datasets import load_qm9
from dc_invariant.models import RotationInvariantModel, SchNetModel

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TIME_TARGET = 3.0
MEMORY_TARGET_MIB = 1024.0

# Runs the CLI in this process and reports its own resources as one JSON line on stderr.
# The benchmarks folder joins sys.path only after the CLI has run, so that its scripts'
# names cannot shadow a module the CLI imports.
_MEASURED_CLI = f"""
import json, resource, sys, time
start = time.perf_counter()
from dc_invariant.cli import main
status = main(sys.argv[1:])
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
sys.path.append({str(HERE)!r})
from _measure import max_rss_mib
print(json.dumps({{"status": status, "seconds": seconds,
                  "user": usage.ru_utime, "system": usage.ru_stime,
                  "peak_mib": max_rss_mib()}}), file=sys.stderr)
"""


def audit_cli(model: str, molecules: int) -> dict[str, float]:
    """Wall time, CPU times and peak RSS of one ``dc-invariant audit`` in a fresh process."""
    command = [sys.executable, "-c", _MEASURED_CLI, "audit", "--model", model]
    command += ["--dataset", "qm9", "--limit", str(molecules)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = done.stderr.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(command[3:])} failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def filter_floor(molecules: int, copies_per_molecule: int) -> dict[str, float]:
    """Seconds that the audit's SchNet must spend, at the least, in its filter networks.

    Every evaluation of the default CLI SchNet (float64; 50 Gaussians, 128 filters, 3
    interactions, 5 Å cutoff) runs, for every unordered atom pair within the cutoff, the
    Gaussian expansion once and per interaction ``softplus(e W1 + b1) W2 + b2``: two matrix
    products and a softplus. That is timed here on one thread (predictions run on one) over a
    block of pairs and scaled to the pairs of the audit: the molecules, each evaluated
    ``copies_per_molecule`` times (itself, the symmetry copies and the control).
    """
    from dc_invariant.models.settings import SchNetSettings
    from dc_invariant.neighbors import stacked_neighbor_pairs

    _, (data,), _ = load_qm9(tasks=["u0"], limit=molecules, splitter=None)
    settings = SchNetSettings()
    pairs = 0
    for c in data.X:
        centred = c.positions - c.positions.mean(axis=0)
        pairs += stacked_neighbor_pairs(
            centred, [c.n_atoms], settings.cutoff, directed=False
        ).shape[1]
    total = pairs * copies_per_molecule
    block = 1 << 16
    generator = torch.Generator().manual_seed(0)
    dtype = torch.float64
    e = torch.rand(block, settings.n_rbf, generator=generator, dtype=dtype)
    w1 = torch.rand(settings.n_rbf, settings.n_filters, generator=generator, dtype=dtype)
    w2 = torch.rand(settings.n_filters, settings.n_filters, generator=generator, dtype=dtype)
    b = torch.zeros(settings.n_filters, dtype=dtype)
    d = torch.rand(block, 1, generator=generator, dtype=dtype) * settings.cutoff
    centres = torch.linspace(0, settings.cutoff, settings.n_rbf, dtype=dtype)

    def one_block() -> None:
        torch.exp(-10.0 * (d - centres) ** 2)
        for _ in range(settings.n_interactions):
            hidden = torch.nn.functional.softplus(torch.addmm(b, e, w1))
            torch.addmm(b, hidden, w2)

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one_block()
        best = best_time(one_block, 5).seconds
    finally:
        torch.set_num_threads(saved)
    return {"pairs": float(total), "seconds": best * total / block}


def epoch_seconds(model, dataset) -> tuple[float, float]:
    """Seconds of one training epoch (after a warm-up one), and of its batch preparation."""
    model.fit(dataset, nb_epoch=1, checkpoint_interval=0)
    start = time.perf_counter()
    model.fit(dataset, nb_epoch=1, checkpoint_interval=0)
    epoch = time.perf_counter() - start
    start = time.perf_counter()
    for _ in model.default_generator(dataset, epochs=1, mode="fit", deterministic=False):
        pass
    return epoch, time.perf_counter() - start


def main(argv: Optional[list[str]] = None) -> int:
    """Time the audits and the epochs; print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audit-molecules", type=int, default=3_000)
    parser.add_argument("--train-molecules", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="300 audited, 1,000 trained")
    parser.add_argument(
        "--only", choices=("audit", "train"), help="run only the audits or only the epochs"
    )
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.audit_molecules, args.train_molecules = 300, 1_000
    print(
        f"# {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"load average {load_average()} at start\n"
    )
    n = args.audit_molecules
    rows = []
    if args.only != "train":
        audits = {name: audit_cli(name, n) for name in ("rotation", "schnet")}
        print(f"dc-invariant audit --dataset qm9 --limit {n} (float64, 4 symmetries x 3 samples)\n")
        print("| --model | seconds | user s | system s | peak RSS MiB | time / rotation's |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, a in audits.items():
            print(
                f"| {name} | {a['seconds']:.1f} | {a['user']:.1f} | {a['system']:.1f} | "
                f"{a['peak_mib']:,.0f} | {a['seconds'] / audits['rotation']['seconds']:.2f}x |"
            )
        ratio = audits["schnet"]["seconds"] / audits["rotation"]["seconds"]
        # Each molecule: itself, 4 symmetries x 3 samples, and the distortion control.
        floor = filter_floor(n, 1 + 4 * 3 + 1)
        rotation_s = audits["rotation"]["seconds"]
        print(
            f"SchNet's arithmetic floor: its filter networks over the audit's "
            f"{floor['pairs']:,.0f} atom pairs take {floor['seconds']:.1f} s on one thread "
            f"(two matrix products and a softplus per pair and interaction, float64), "
            f"{floor['seconds'] / rotation_s:.1f}x the rotation network's whole audit; "
            f"the SchNet audit takes {audits['schnet']['seconds'] / floor['seconds']:.2f}x "
            "that floor, imports and QM9 loading included\n"
        )
        time_met = ratio <= TIME_TARGET
        memory_met = audits["schnet"]["peak_mib"] <= MEMORY_TARGET_MIB
        print(
            f"\ntarget SchNet <= {TIME_TARGET:.0f}x the rotation network's time: "
            f"{'met' if time_met else 'NOT met'} ({ratio:.2f}x); peak <= 1 GiB: "
            f"{'met' if memory_met else 'NOT met'} ({audits['schnet']['peak_mib']:,.0f} MiB)\n"
        )
        measure = f"dc-invariant audit --dataset qm9 --limit {n:,}"
        rows.append(
            result_row(
                "schnet",
                f"{measure}: time",
                "--model schnet",
                "--model rotation (tutorial network)",
                audits["schnet"]["seconds"],
                audits["rotation"]["seconds"],
                "s",
                higher_is_better=False,
                target=f"<= {TIME_TARGET:.0f}x (ratio >= {1 / TIME_TARGET:.2f})",
                met=time_met,
            )
        )
        rows.append(
            result_row(
                "schnet",
                f"{measure}: time against its filter-network floor",
                "--model schnet",
                "floor: filter networks over every pair (float64, 1 thread)",
                audits["schnet"]["seconds"],
                floor["seconds"],
                "s",
                higher_is_better=False,
            )
        )
        rows.append(
            result_row(
                "schnet",
                f"{measure}: peak RSS",
                "--model schnet",
                "1 GiB budget",
                audits["schnet"]["peak_mib"],
                MEMORY_TARGET_MIB,
                "MiB",
                higher_is_better=False,
                target="<= 1024 MiB",
                met=memory_met,
            )
        )

    if args.only != "audit":
        _, (train,), _ = load_qm9(
            tasks=["u0_atom"], limit=args.train_molecules, splitter=None, seed=0
        )
        per = 10_000 / len(train)
        schnet = SchNetModel(
            n_atom_basis=64, n_filters=64, n_interactions=4, n_rbf=25, batch_size=32, seed=0
        )
        rotation = RotationInvariantModel(batch_size=32, seed=0)
        epochs = {"SchNetModel": epoch_seconds(schnet, train)}
        epochs["RotationInvariantModel"] = epoch_seconds(rotation, train)
        print(f"one training epoch on {len(train):,} QM9 molecules, batches of 32\n")
        print("| model | epoch s per 10,000 molecules | of which batch preparation |")
        print("|---|---:|---:|")
        for name, (epoch, batches) in epochs.items():
            print(f"| {name} | {epoch * per:.2f} | {batches * per:.2f} ({batches / epoch:.0%}) |")
        print(
            "\nSchNetPack 2.1 (the issue's peer, ~1.4x our epoch time elsewhere) is not run: it "
            "needs Python 3.12 and this environment has Python "
            f"{sys.version_info.major}.{sys.version_info.minor}."
        )
        rows.append(
            result_row(
                "schnet",
                "train 1 epoch, time per 10,000 QM9 molecules (SchNetPack: not installable)",
                "SchNetModel (64 basis, 64 filters, 4 interactions)",
                "RotationInvariantModel (tutorial network)",
                epochs["SchNetModel"][0] * per,
                epochs["RotationInvariantModel"][0] * per,
                "s",
                higher_is_better=False,
            )
        )
    if args.json:
        write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
