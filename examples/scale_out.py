"""Scaling out on a Dask cluster
=============================

Featurize and audit on a Dask cluster, then predict forces for a 5,000-atom system.

Run ``python examples/scale_out.py`` (``--small`` for a quick run). It starts a local Dask
cluster of two worker processes — point ``scheduler=`` at a real cluster's address instead —
featurizes and audits real molecules on it, checks that the results equal a serial run's,
and then uses a cutoff model's neighbour lists on a peptide box of 5,000 atoms.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from typing import Optional

import numpy as np
import pandas as pd
from rdkit import RDConfig

from dc_invariant import ConformerFeaturizer, RotationInvariantModel
from dc_invariant.auditing import audit
from dc_invariant.builtin import peptide_box


def nci_smiles(n: int) -> list[str]:
    """The first ``n`` SMILES of RDKit's bundled NCI screening set."""
    with open(os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")) as handle:
        return [line.split()[0] for _, line in zip(range(n), handle)]


def main(argv: Optional[list[str]] = None) -> int:
    """Run the cluster part and the large-system part and print what came out."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--small", action="store_true", help="100 molecules, a smaller box")
    parser.add_argument("--molecules", type=int, default=400)
    args = parser.parse_args(argv)
    n_molecules = 100 if args.small else args.molecules
    from distributed import Client, LocalCluster

    smiles = nci_smiles(n_molecules)
    model = RotationInvariantModel(seed=0)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR
        ) as cluster,
        Client(cluster) as client,
    ):
        start = time.perf_counter()
        remote = ConformerFeaturizer(scheduler=client).featurize(smiles)
        remote_report = audit(model, list(remote), scheduler=client)
        print(
            f"on Dask: {n_molecules} molecules featurized and audited in "
            f"{time.perf_counter() - start:.1f} s"
        )
    serial = ConformerFeaturizer().featurize(smiles)
    same_arrays = all(
        np.array_equal(a.positions, b.positions)
        for a, b in zip(serial, remote)
        if not isinstance(a, np.ndarray)
    )
    serial_report = audit(model, list(serial))
    same_report = serial_report.molecules.equals(remote_report.molecules)
    print(remote_report.format())
    print(f"same conformers as a serial run: {same_arrays}")
    print(f"same audit report as a serial run: {same_report}")

    n_atoms = 2_000 if args.small else 5_000
    box = ConformerFeaturizer().featurize([peptide_box(n_atoms)])[0]
    big = RotationInvariantModel(cutoff=5.0, seed=0)
    start = time.perf_counter()
    forces = big.predict_arrays(
        box.positions, box.features, box.atomic_numbers, [box.n_atoms], forces=True
    )
    net = float(np.abs(forces.sum(axis=0)).max())
    print(
        f"peptide box of {box.n_atoms:,} atoms: forces in {time.perf_counter() - start:.2f} s "
        f"with neighbour lists (cutoff 5 Å); largest net force component {net:.1e}"
    )
    verdicts = audit(big, [box], n_samples=1).summary[["symmetry", "verdict"]]
    print(pd.DataFrame(verdicts).to_string(index=False))
    return 0 if same_arrays and same_report else 1


if __name__ == "__main__":
    # Exit only on failure, so that a documentation build can run the file too.
    if status := main():
        raise SystemExit(status)
