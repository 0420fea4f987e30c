"""Throughput of featurization and of the audit against the number of QM9 molecules.

`throughput_section` measures ``ConformerFeaturizer(record_smiles=False)`` and
``dc_invariant.auditing.audit`` with one and two workers on nested random QM9 subsets;
`throughput_table` prints the rates. Imported by ``scaling.py``; not a benchmark itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from _measure import best_time

from dc_invariant import ConformerFeaturizer
from dc_invariant.conformer import Conformer


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
    from dc_invariant.datasets import read_qm9_table
    from dc_invariant.embedding import mol_from_geometry
    from dc_invariant.models import RotationInvariantModel

    table = read_qm9_table(limit=max(sizes), seed=0)
    mols = [mol_from_geometry(z, r) for z, r in zip(table["atomic_numbers"], table["positions"])]
    sizes = sorted({min(n, len(mols)) for n in sizes})
    # Nested random subsets: QM9's id order runs from small to large molecules.
    order = np.random.default_rng(0).permutation(len(mols))
    subsets = {n: np.sort(order[:n]) for n in sizes}
    model = RotationInvariantModel(seed=0)
    warm = mols[:2048]

    def featurize_rate(n: int, featurizer: ConformerFeaturizer) -> float:
        chosen = [mols[i] for i in subsets[n]]
        best = best_time(
            lambda: featurizer.featurize(chosen, log_failures=False),
            max_runs=max_runs,
            budget_s=budget_s,
        )
        return n / best.seconds

    def audit_rate(n: int, n_jobs: int) -> float:
        chosen = [conformers[i] for i in subsets[n] if isinstance(conformers[i], Conformer)]
        best = best_time(
            lambda: audit(model, chosen, n_jobs=n_jobs), max_runs=max_runs, budget_s=budget_s
        )
        return n / best.seconds

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


def throughput_table(rows: Sequence[Throughput]) -> str:
    """Markdown table of the rates, one row per task and number of molecules."""
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
