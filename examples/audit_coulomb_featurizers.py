"""DeepChem's Coulomb-matrix featurizers, audited
==============================================

Audit DeepChem's own Coulomb-matrix featurizers for the four symmetries of a molecule.

Run ``python examples/audit_coulomb_featurizers.py`` (``--small`` for a quick run,
``--molecules N`` to choose how many). Real molecules from RDKit's bundled NCI set are
embedded in 3D once; each featurizer is then handed every molecule renumbered, shifted,
turned and mirrored, and its output compared with the untouched molecule's. The observed
verdicts are checked against what each featurizer's definition implies.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Optional

from rdkit import Chem, RDConfig

from dc_invariant import ConformerFeaturizer
from dc_invariant._deepchem import import_deepchem
from dc_invariant.auditing import SYMMETRIES, AuditReport, audit

#: Coulomb matrices are padded to this many atoms, hydrogens included.
MAX_ATOMS = 60

#: The symmetries each featurizer should hold, from its definition alone.
EXPECTED_HOLDS: dict[str, frozenset[str]] = {
    # Entries depend on distances only, but row i belongs to atom i.
    "CoulombMatrix": frozenset({"translation", "rotation", "reflection"}),
    # Eigenvalues forget the basis, and sorting them forgets the atom order.
    "CoulombMatrixEig": frozenset(SYMMETRIES),
    # Raw positions, one row per atom: every change shows.
    "AtomicCoordinates": frozenset(),
}


def read_smiles(n: int, max_atoms: int = MAX_ATOMS) -> list[str]:
    """The first ``n`` molecules of RDKit's NCI set with at most ``max_atoms`` atoms.

    Parameters
    ----------
    n : int
        How many SMILES to return.
    max_atoms : int, default=MAX_ATOMS
        Largest atom count allowed, hydrogens included; larger molecules would not fit
        the padded Coulomb matrix.

    Returns
    -------
    list of str
        Parsable SMILES, in file order.
    """
    out = []
    with open(os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")) as handle:
        for line in handle:
            mol = Chem.MolFromSmiles(line.split()[0])
            if mol is not None and Chem.AddHs(mol).GetNumAtoms() <= max_atoms:
                out.append(line.split()[0])
            if len(out) == n:
                break
    return out


def verdict_line(name: str, report: AuditReport) -> str:
    """One line naming the featurizer and its verdict for every audited symmetry."""
    verdicts = ", ".join(f"{r.symmetry} {r.verdict}" for r in report.summary.itertuples())
    return f"{name}: {verdicts}"


def main(argv: Optional[list[str]] = None) -> int:
    """Audit three DeepChem featurizers; return 1 if a verdict contradicts its definition.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        0 when every observed verdict matches `EXPECTED_HOLDS`, else 1.
    """
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--small", action="store_true", help="8 molecules instead of 40")
    parser.add_argument("--molecules", type=int, default=None, help="molecules to audit")
    parser.add_argument("--plot", action="store_true", help="draw every molecule's deviations")
    args = parser.parse_args(argv)
    n = args.molecules if args.molecules is not None else (8 if args.small else 40)
    if n < 1:
        parser.error(f"--molecules must be at least 1, got {n}")
    dc = import_deepchem()

    # Embed once and give all three featurizers the same geometries, so their verdicts
    # differ only because the featurizers do.
    smiles = read_smiles(n)
    conformers = ConformerFeaturizer(random_seed=0).featurize(smiles)
    featurizers: dict[str, Any] = {
        "CoulombMatrix": dc.feat.CoulombMatrix(max_atoms=MAX_ATOMS),
        "CoulombMatrixEig": dc.feat.CoulombMatrixEig(max_atoms=MAX_ATOMS),
        "AtomicCoordinates": dc.feat.AtomicCoordinates(),
    }

    reports = {}
    for name, featurizer in featurizers.items():
        reports[name] = audit(featurizer, list(conformers), n_samples=3, seed=0)
        print(f"{name}\n{reports[name].format()}\n")

    for name, report in reports.items():
        print(verdict_line(name, report))
    matches = all(
        {s for s in SYMMETRIES if report.holds(s)} == EXPECTED_HOLDS[name]
        for name, report in reports.items()
    )
    print(
        "\nFrom the definitions: CoulombMatrix depends only on interatomic distances, so it "
        "holds translation, rotation and reflection, but its rows follow the atom order, so "
        "it breaks permutation; CoulombMatrixEig's sorted eigenvalues hold all four; "
        "AtomicCoordinates returns raw positions and breaks all four."
    )
    print(f"verdicts match the featurizers' definitions: {matches}")
    if args.plot:
        plot(reports)
    return 0 if matches else 1


def plot(reports: dict[str, AuditReport]) -> None:
    """Each molecule's relative deviation, per featurizer and symmetry, against rtol."""
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axes = plt.subplots(1, len(reports), figsize=(12, 3.2), layout="constrained")
    for ax, (name, report) in zip(axes, reports.items()):
        for k, symmetry in enumerate(SYMMETRIES):
            rows = report.molecules[report.molecules["symmetry"] == symmetry]
            # Exact zeros have no logarithm: they are drawn on the bottom edge.
            values = np.log10(np.maximum(rows["rel_deviation"].to_numpy(float), 1e-18))
            jitter = np.linspace(-0.2, 0.2, len(values))
            ax.scatter(k + jitter, values, s=12, color="#3f51b5")
        ax.axhline(np.log10(report.settings["rtol"]), color="#b00020", linestyle="--")
        ax.set_xticks(range(len(SYMMETRIES)), SYMMETRIES, rotation=30)
        ax.set_ylim(-18.5, 7)
        ax.set_title(name)
    axes[0].set_ylabel("log10 relative deviation")
    figure.suptitle("Each dot a molecule; dashed: the tolerance (rtol). Above it: broken.")
    plt.show()


if __name__ == "__main__":
    # Exit only on failure, so that a documentation build can run the file too.
    if status := main():
        raise SystemExit(status)
