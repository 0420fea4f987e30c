"""Featurization speed of `ConformerFeaturizer` against raw RDKit and DeepChem.

One run measures, on the same molecules for every method:

1. **Molecules that need embedding**: the first ``--n`` SMILES of RDKit's bundled NCI set
   (unparsable ones skipped). The peer is the raw RDKit loop at the heart of
   `ConformerFeaturizer`: parse, renumber atoms canonically (as DeepChem does), add
   hydrogens, embed with seeded ETKDGv3, read the coordinates. Against it:
   `ConformerFeaturizer` with one and with two worker processes, and DeepChem's
   `CoulombMatrix` and `RDKitConformerFeaturizer`, which embed SMILES too (on the first
   ``--deepchem-n`` molecules, as they are slower).
2. **Molecules that already carry a 3D conformer**: ``--qm9`` QM9 molecules with their DFT
   geometries (building the Mols is not timed). The peer is a minimal RDKit loop that reads
   each Mol's coordinates and atomic numbers; against it, `ConformerFeaturizer` with and
   without writing a canonical SMILES per Mol (``record_smiles``), and
   `ConformerFeaturizer.featurize_arrays` on the same geometries as plain arrays (the path
   `load_qm9` takes).

Targets
-------
- ``ConformerFeaturizer(n_jobs=1)`` takes at most 1.10x the time of the raw embedding loop.
- ``n_jobs=2`` is at least 1.7x faster than ``n_jobs=1``.
- Molecules that already have 3D geometries are featurized at 20,000 molecules/s or more.

Each time is the best of ``--repeats`` runs of `time.perf_counter` (by default 1 for the
embedding section and 3 for the conformer section). The output is one Markdown table, notes,
and a closing line saying which targets were met. The exit status is 0 whether or not they
were; only an exception gives another. Other processes on the machine slow some runs more
than others, so the load average is printed before and after.

With ``--json PATH`` the same comparisons are also written as result rows (see
``benchmarks/_rows.py``) for ``benchmarks/run_all.py``.

Usage::

    python benchmarks/featurize.py [--n 1000] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Optional

import joblib
import numpy as np
import rdkit
from _measure import best_time, load_average, usable_cpus
from _rows import add_json_option, result_row, write_rows
from rdkit import Chem, RDConfig, rdBase
from rdkit.Chem import rdDistGeom

import dc_invariant
from dc_invariant import ConformerFeaturizer
from dc_invariant._deepchem import import_deepchem

Result = dict[str, Any]  # one result row for --json, see benchmarks/_rows.py

BENCHMARK = "featurize"

SINGLE_JOB_MAX_RATIO = 1.10
TWO_JOB_MIN_SPEEDUP = 1.7
CONFORMER_MIN_RATE = 20_000.0


@dataclass
class Row:
    """One line of the results table."""

    method: str
    molecules: int
    failed: int
    seconds: float
    ratio: str = "1.00 (peer)"
    target: str = "-"
    passed: Optional[bool] = None

    @property
    def rate(self) -> float:
        return self.molecules / self.seconds if self.seconds > 0 else math.inf


@dataclass
class Verdict:
    """Whether one target was met, with the number that decided it."""

    target: str
    passed: Optional[bool]
    detail: str


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time ConformerFeaturizer against raw RDKit and DeepChem featurizers."
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes for a smoke run (--n 100 --qm9 2000)"
    )
    parser.add_argument(
        "--n", type=int, default=None, help="NCI SMILES to embed (default 1000, quick 100)"
    )
    parser.add_argument(
        "--deepchem-n",
        type=int,
        default=250,
        help="of those, how many the DeepChem featurizers embed (default 250)",
    )
    parser.add_argument(
        "--qm9", type=int, default=None, help="QM9 molecules (default 20000, quick 2000)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="best of this many runs for every method (default 1 when embedding, 3 for QM9)",
    )
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.n is None:
        args.n = 100 if args.quick else 1000
    if args.qm9 is None:
        args.qm9 = 2000 if args.quick else 20_000
    for name in ("n", "deepchem_n", "qm9", "repeats"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    return args


def read_nci_smiles(n: int) -> tuple[list[str], int]:
    """The parsable SMILES among the first ``n`` lines of RDKit's NCI set, and how many not."""
    path = os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")
    smiles: list[str] = []
    skipped = 0
    with open(path) as handle:
        # Each line is "SMILES<whitespace>name", without a header.
        for line in itertools.islice(handle, n):
            text = line.split()[0]
            if Chem.MolFromSmiles(text) is None:
                skipped += 1
            else:
                smiles.append(text)
    return smiles, skipped


@dataclass
class RawEmbedding:
    """What one run of the raw loop did."""

    retry_seconds: float  # spent on the retries, which the peer proper does not make
    failed: int  # first ETKDGv3 attempt failed: the peer's failures
    failed_after_retry: int


def raw_embed(smiles: Sequence[str]) -> RawEmbedding:
    """The raw RDKit loop, timing apart a retry from random coordinates for each failure.

    The peer is the loop without the retries (its time is the total less ``retry_seconds``).
    ConformerFeaturizer makes that retry, and the few molecules that need it are among the
    slowest to embed, so the total is the like-for-like time for it.
    """
    retry_seconds = 0.0
    failed = failed_after_retry = 0
    for text in smiles:
        mol = Chem.MolFromSmiles(text)
        mol = Chem.RenumberAtoms(mol, list(Chem.CanonicalRankAtoms(mol)))
        mol = Chem.AddHs(mol)
        # Fresh parameters per molecule, as ConformerFeaturizer does: reusing one object across
        # EmbedMolecule calls changes which molecules embed (with RDKit 2026.09, 9 failures
        # in the first 1000 instead of 6).
        params = rdDistGeom.ETKDGv3()
        params.randomSeed = 0
        if not _embeds(mol, params):
            failed += 1
            start = time.perf_counter()
            params.useRandomCoords = True
            if not _embeds(mol, params):
                failed_after_retry += 1
            retry_seconds += time.perf_counter() - start
        if mol.GetNumConformers():
            mol.GetConformer().GetPositions()
    return RawEmbedding(retry_seconds, failed, failed_after_retry)


def _embeds(mol: Chem.Mol, params: Any) -> bool:
    try:
        return rdDistGeom.EmbedMolecule(mol, params) == 0
    except RuntimeError:  # RDKit raises, rather than returns -1, for some bounds violations
        return False


def raw_read(mols: Sequence[Chem.Mol]) -> list[tuple[np.ndarray, list[int]]]:
    """The least any featurizer of 3D Mols must do: coordinates and atomic numbers."""
    return [
        (mol.GetConformer().GetPositions(), [atom.GetAtomicNum() for atom in mol.GetAtoms()])
        for mol in mols
    ]


def count_deepchem_failures(features: np.ndarray) -> int:
    # DeepChem puts an empty array where a datapoint failed.
    return sum(isinstance(f, np.ndarray) and f.size == 0 for f in features)


def embedding_section(
    dc: ModuleType, smiles: list[str], deepchem_n: int, repeats: int
) -> tuple[list[Row], list[Verdict], list[str], list[Result]]:
    rows: list[Row] = []
    notes: list[str] = []
    head, tail = smiles[:deepchem_n], smiles[deepchem_n:]
    n = len(smiles)

    # Timed in two parts so that the DeepChem rows, which embed only `head`, are compared
    # with the raw loop on exactly their molecules.
    head_total, head_run, _ = best_time(lambda: raw_embed(head), repeats)
    tail_total, tail_run, _ = (
        best_time(lambda: raw_embed(tail), repeats) if tail else (0.0, None, 0)
    )
    runs = [r for r in (head_run, tail_run) if r is not None]
    head_seconds = head_total - head_run.retry_seconds
    raw_total = head_total + tail_total
    raw_seconds = raw_total - sum(r.retry_seconds for r in runs)
    rows.append(Row("raw RDKit ETKDGv3 loop (peer)", n, sum(r.failed for r in runs), raw_seconds))
    rows.append(
        Row(
            "raw loop + retry of failures from random coordinates",
            n,
            sum(r.failed_after_retry for r in runs),
            raw_total,
            f"{raw_total / raw_seconds:.2f}x raw time",
        )
    )

    single = ConformerFeaturizer(n_jobs=1)
    single_seconds = best_time(
        lambda: single.featurize(smiles, log_failures=False), repeats
    ).seconds
    ratio = single_seconds / raw_seconds
    single_passed = ratio <= SINGLE_JOB_MAX_RATIO
    rows.append(
        Row(
            "ConformerFeaturizer(n_jobs=1)",
            n,
            len(single.failures),
            single_seconds,
            f"{ratio:.2f}x raw time, {single_seconds / raw_total:.2f}x raw + retry",
            f"<= {SINGLE_JOB_MAX_RATIO:.2f}x raw",
            single_passed,
        )
    )

    double = ConformerFeaturizer(n_jobs=2)
    # Starting the loky workers (a process each, importing RDKit) is a one-off cost per
    # session, not a per-molecule one, so the pool is started before the clock runs.
    double.featurize(smiles[:8], log_failures=False)
    seconds = best_time(lambda: double.featurize(smiles, log_failures=False), repeats).seconds
    speedup = single_seconds / seconds
    # Two jobs cannot run side by side on one core; the target then says nothing.
    double_passed = speedup >= TWO_JOB_MIN_SPEEDUP if usable_cpus() >= 2 else None
    rows.append(
        Row(
            "ConformerFeaturizer(n_jobs=2), pool warmed",
            n,
            len(double.failures),
            seconds,
            f"{speedup:.2f}x faster than n_jobs=1",
            f">= {TWO_JOB_MIN_SPEEDUP:.1f}x faster",
            double_passed,
        )
    )
    verdicts = [
        Verdict(f"n_jobs=1 <= {SINGLE_JOB_MAX_RATIO:.2f}x raw", single_passed, f"{ratio:.2f}x"),
        Verdict(f"n_jobs=2 >= {TWO_JOB_MIN_SPEEDUP:.1f}x", double_passed, f"{speedup:.2f}x"),
    ]

    subset = "" if len(head) == n else f", first {len(head)} molecules"
    max_atoms = max(Chem.AddHs(Chem.MolFromSmiles(s)).GetNumAtoms() for s in head)
    coulomb = dc.feat.CoulombMatrix(max_atoms=max_atoms)
    # CoulombMatrix divides by each atom's zero distance to itself before it overwrites the
    # diagonal; numpy's warning about it is noise here.
    with np.errstate(divide="ignore"):
        seconds, features, _ = best_time(lambda: coulomb.featurize(head), repeats)
    rows.append(
        Row(
            f"DeepChem CoulombMatrix(max_atoms={max_atoms}){subset}",
            len(head),
            count_deepchem_failures(features),
            seconds,
            f"{seconds / head_seconds:.2f}x raw time",
        )
    )
    conformer = dc.feat.RDKitConformerFeaturizer()
    seconds, features, _ = best_time(lambda: conformer.featurize(head), repeats)
    rows.append(
        Row(
            f"DeepChem RDKitConformerFeaturizer(){subset}",
            len(head),
            count_deepchem_failures(features),
            seconds,
            f"{seconds / head_seconds:.2f}x raw time",
        )
    )
    results = embedding_results(rows, raw_seconds, raw_total, head_seconds)
    notes.append(
        "ConformerFeaturizer retries a failed embedding once from random coordinates; the peer "
        "does not. The 'raw loop + retry' row is the same loop with that retry: the "
        "like-for-like time. The target is judged against the peer."
    )
    notes.append(
        "DeepChem's CoulombMatrix embeds with unseeded ETKDG; RDKitConformerFeaturizer embeds "
        "with ETKDGv2 from random coordinates and then runs an MMFF optimisation."
    )
    if subset:
        notes.append(
            f"The DeepChem featurizers ran on the first {len(head)} of the {n} molecules "
            f"(--deepchem-n); their ratio is to the raw loop's time on those same molecules."
        )
    return rows, verdicts, notes, results


def embedding_results(
    rows: Sequence[Row],
    raw_seconds: float,
    raw_total: float,
    head_seconds: float,
) -> list[Result]:
    """The embedding section's comparisons as result rows, from the times in ``rows``.

    ``rows`` is the section's table: raw loop, raw loop + retry, one job, two jobs,
    CoulombMatrix, RDKitConformerFeaturizer. ``head_seconds`` is the raw loop's time on the
    molecules the DeepChem featurizers embedded.
    """
    _, _, single, double, coulomb, conformer = rows
    n = single.molecules
    embed = f"embed {n:,} NCI SMILES"
    results = [
        result_row(
            BENCHMARK,
            f"{embed}, 1 job",
            "ConformerFeaturizer(n_jobs=1)",
            "raw RDKit ETKDGv3 loop",
            single.rate,
            n / raw_seconds,
            "molecules/s",
            higher_is_better=True,
            target=f"<= {SINGLE_JOB_MAX_RATIO:.2f}x raw time (ratio >= "
            f"{1 / SINGLE_JOB_MAX_RATIO:.2f})",
            met=single.passed,
        ),
        result_row(
            BENCHMARK,
            f"{embed}, 1 job",
            "ConformerFeaturizer(n_jobs=1)",
            "raw RDKit loop + retry from random coordinates (like for like)",
            single.rate,
            n / raw_total,
            "molecules/s",
            higher_is_better=True,
        ),
        result_row(
            BENCHMARK,
            f"{embed}, 2 jobs against 1",
            "ConformerFeaturizer(n_jobs=2)",
            "ConformerFeaturizer(n_jobs=1)",
            double.rate,
            single.rate,
            "molecules/s",
            higher_is_better=True,
            target=f">= {TWO_JOB_MIN_SPEEDUP:.1f}x",
            met=double.passed,
        ),
    ]
    # The DeepChem featurizers may have embedded only the first molecules; each side is then
    # compared through its time relative to the raw loop on exactly its own molecules.
    measure = f"{embed}, time / raw RDKit loop's time on the same molecules" + (
        f" (DeepChem: first {coulomb.molecules:,})" if coulomb.molecules < n else ""
    )
    for row, label in (
        (coulomb, "DeepChem CoulombMatrix"),
        (conformer, "DeepChem RDKitConformerFeaturizer"),
    ):
        results.append(
            result_row(
                BENCHMARK,
                measure,
                "ConformerFeaturizer(n_jobs=1)",
                label,
                single.seconds / raw_seconds,
                row.seconds / head_seconds,
                "x raw time",
                higher_is_better=False,
            )
        )
    return results


def conformer_section(
    m: int, repeats: int
) -> tuple[list[Row], list[Verdict], list[str], list[Result]]:
    verdict_name = f">= {CONFORMER_MIN_RATE:,.0f} mol/s on existing 3D geometries"
    try:
        from dc_invariant.datasets import qm9_mol, read_qm9_table

        table = read_qm9_table(limit=m, seed=0)
    except ImportError as err:
        note = (
            "QM9 section skipped: its data package qm9pack is missing; install it with "
            f"pip install 'dc_invariant[qm9]' ({err})"
        )
        return [], [Verdict(verdict_name, None, "not measured")], [note], []
    mols = [qm9_mol(z, r) for z, r in zip(table["atomic_numbers"], table["positions"])]
    n = len(mols)

    peer_seconds = best_time(lambda: raw_read(mols), repeats).seconds
    rows = [Row("QM9 3D Mols: raw RDKit positions + atomic numbers (peer)", n, 0, peer_seconds)]
    meeting: list[str] = []
    best_rate = 0.0
    numbers, coordinates = list(table["atomic_numbers"]), list(table["positions"])
    # (table title, name in the verdict, name in the result rows, featurizer, timed call)
    candidates: list[
        tuple[str, str, str, ConformerFeaturizer, Callable[[ConformerFeaturizer], Any]]
    ] = [
        (
            "QM9 3D Mols: ConformerFeaturizer(record_smiles=False)",
            "record_smiles=False",
            "ConformerFeaturizer(record_smiles=False) on Mols",
            ConformerFeaturizer(record_smiles=False),
            lambda f: f.featurize(mols, log_failures=False),
        ),
        (
            "QM9 3D Mols: ConformerFeaturizer(default)",
            "default",
            "ConformerFeaturizer() on Mols",
            ConformerFeaturizer(),
            lambda f: f.featurize(mols, log_failures=False),
        ),
        # The same geometries as arrays, the way load_qm9 featurizes them: no Mol at all.
        (
            "QM9 arrays: ConformerFeaturizer.featurize_arrays",
            "featurize_arrays",
            "ConformerFeaturizer.featurize_arrays on arrays",
            ConformerFeaturizer(),
            lambda f: f.featurize_arrays(numbers, coordinates, log_failures=False),
        ),
    ]
    results: list[Result] = []
    for title, label, ours, featurizer, run in candidates:
        seconds = best_time(lambda f=featurizer, run=run: run(f), repeats).seconds
        row = Row(
            title,
            n,
            len(featurizer.failures),
            seconds,
            f"{seconds / peer_seconds:.2f}x raw time",
            f">= {CONFORMER_MIN_RATE:,.0f} mol/s",
        )
        row.passed = row.rate >= CONFORMER_MIN_RATE
        rows.append(row)
        best_rate = max(best_rate, row.rate)
        if row.passed:
            meeting.append(label)
        results.append(
            result_row(
                BENCHMARK,
                f"featurize {n:,} QM9 molecules with DFT geometries",
                ours,
                "raw RDKit positions + atomic numbers of 3D Mols",
                row.rate,
                rows[0].rate,
                "molecules/s",
                higher_is_better=True,
                target=row.target,
                met=row.passed,
            )
        )
    detail = (
        f"met by {' and '.join(meeting)}"
        if meeting
        else f"met by neither setting; best {best_rate:,.0f} mol/s, "
        f"raw peer {rows[0].rate:,.0f} mol/s"
    )
    notes = [
        f"QM9: {n} molecules sampled with seed 0, {np.mean([x.GetNumAtoms() for x in mols]):.1f} "
        "atoms each on average (hydrogens included); building the Mols was not timed."
    ]
    return rows, [Verdict(verdict_name, bool(meeting), detail)], notes, results


def outcome(passed: Optional[bool]) -> str:
    return "n/a" if passed is None else "pass" if passed else "fail"


def markdown_table(rows: Sequence[Row]) -> str:
    header = ["method", "molecules", "failed", "seconds", "molecules/s", "ratio", "target"]
    lines = [
        "| " + " | ".join([*header, "pass/fail"]) + " |",
        "|" + "|".join(["---", "---:", "---:", "---:", "---:", "---", "---", "---"]) + "|",
    ]
    for row in rows:
        status = "-" if row.target == "-" else outcome(row.passed)
        cells = [
            row.method,
            str(row.molecules),
            str(row.failed),
            f"{row.seconds:.3f}",
            f"{row.rate:,.0f}",
            row.ratio,
            row.target,
            status,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    dc = import_deepchem()
    # DeepChem logs two warning lines per molecule it cannot featurize; the table's failed
    # column counts them instead.
    logging.getLogger("deepchem").setLevel(logging.ERROR)
    # RDKit's per-molecule warnings would interleave with the table; ConformerFeaturizer
    # blocks them itself, so blocking them here treats every method alike.
    blocker = rdBase.BlockLogs()

    smiles, skipped = read_nci_smiles(args.n)
    deepchem_n = min(args.deepchem_n, len(smiles))
    print("# ConformerFeaturizer benchmark\n")
    print(
        f"- machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs "
        f"({usable_cpus()} usable), load average {load_average()} at start"
    )
    print(
        f"- Python {platform.python_version()}; rdkit {rdkit.__version__}, deepchem "
        f"{dc.__version__}, dc_invariant {dc_invariant.__version__}, joblib {joblib.__version__}, "
        f"numpy {np.__version__}"
    )
    print(
        f"- embedding: first {args.n} SMILES of RDKit's NCI/first_5K.smi, {skipped} unparsable "
        f"skipped, {len(smiles)} used; best of {args.repeats or 1}"
    )
    print(f"- 3D Mols: {args.qm9} QM9 molecules; best of {args.repeats or 3}\n")

    rows, verdicts, notes, results = embedding_section(dc, smiles, deepchem_n, args.repeats or 1)
    qm9_rows, qm9_verdicts, qm9_notes, qm9_results = conformer_section(args.qm9, args.repeats or 3)
    del blocker

    print(markdown_table(rows + qm9_rows))
    print()
    for note in notes + qm9_notes:
        print(f"- {note}")
    print(f"- load average {load_average()} at end")
    print()
    summary = "; ".join(
        f"{v.target}: {outcome(v.passed)} ({v.detail})" for v in verdicts + qm9_verdicts
    )
    print(f"Targets: {summary}")
    if args.json:
        write_rows(args.json, results + qm9_results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
