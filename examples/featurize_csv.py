"""Featurizing a CSV file for DeepChem
===================================

SMILES CSV -> ConformerFeaturizer -> DeepChem dataset, split and padded for a model.

Run ``python examples/featurize_csv.py`` (``--small`` for a quick run). It writes a small
CSV of real molecules with a made-up label, loads it with DeepChem's own ``CSVLoader``,
splits it by scaffold and pads one batch into the arrays an invariant model consumes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Optional

from rdkit import RDConfig

from dc_invariant import ConformerFeaturizer, pad_batch
from dc_invariant._deepchem import import_deepchem


def write_csv(path: str, n: int) -> None:
    """The first ``n`` molecules of RDKit's bundled NCI set, labelled by heavy-atom count."""
    from rdkit import Chem

    rows = ["smiles,heavy_atoms"]
    with open(os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")) as source:
        for line in source:
            mol = Chem.MolFromSmiles(line.split()[0])
            if mol is not None:
                rows.append(f"{line.split()[0]},{mol.GetNumHeavyAtoms()}")
            if len(rows) > n:
                break
    rows.append("this-is-not-a-smiles,0")  # dropped by the loader, with one warning line
    with open(path, "w") as handle:
        handle.write("\n".join(rows) + "\n")


def main(argv: Optional[list[str]] = None) -> int:
    """Featurize a CSV of SMILES into a DeepChem dataset and print what came out."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--small", action="store_true", help="20 molecules instead of 200")
    args = parser.parse_args(argv)
    dc = import_deepchem()

    with tempfile.TemporaryDirectory() as work:
        csv = os.path.join(work, "molecules.csv")
        write_csv(csv, 20 if args.small else 200)

        featurizer = ConformerFeaturizer(random_seed=0, n_jobs=1 if args.small else 2)
        loader = dc.data.CSVLoader(
            tasks=["heavy_atoms"], feature_field="smiles", featurizer=featurizer
        )
        dataset = loader.create_dataset(csv, data_dir=os.path.join(work, "dataset"))
        print(f"{len(dataset)} molecules featurized; columns: {featurizer.feature_names}")

        train, valid, test = dc.splits.ScaffoldSplitter().train_valid_test_split(dataset)
        print(f"scaffold split: {len(train)} train / {len(valid)} valid / {len(test)} test")

        X, y, _, ids = next(train.iterbatches(batch_size=8, deterministic=True))
        positions, features, mask = pad_batch(list(X))
        print(f"one batch: R {positions.shape}, X {features.shape}, mask {mask.shape}")
        for conformer, label, smiles in zip(X[:3], y[:3, 0], ids[:3]):
            heavy = int((conformer.atomic_numbers > 1).sum())
            print(f"  {smiles:<40} {conformer.n_atoms:>3} atoms, {heavy} heavy (label {label:g})")

        # The label is each molecule's heavy-atom count, so any row shift would show here.
        aligned = all(
            int((c.atomic_numbers > 1).sum()) == label and c.smiles == smiles
            for c, label, smiles in zip(dataset.X, dataset.y[:, 0], dataset.ids)
        )
        print(f"labels aligned with molecules: {aligned}")
    return 0 if aligned else 1


if __name__ == "__main__":
    # Exit only on failure, so that a documentation build can run the file too.
    if status := main():
        raise SystemExit(status)
