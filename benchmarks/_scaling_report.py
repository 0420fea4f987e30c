"""The scaling benchmark's report: Markdown tables, crossovers, PNG plots and result rows.

Everything here reads measured `Case` and `Throughput` values and measures nothing.
Imported by ``scaling.py``; not a benchmark itself.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
from _rows import result_row
from _scaling_systems import COLUMNS, CUTOFF, MODES, PATHS, TARGET_ATOMS, TARGET_MIB, Case
from _scaling_throughput import Throughput

import dc_invariant.models.tutorial as tutorial

# Below this, a high-water mark above the baseline says more about the allocator than the case.
MEMORY_RESOLUTION_MIB = 1.0


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
