"""SMILES -> featurize -> split -> train RotationInvariantModel -> evaluate -> forces.

The label is a made-up but learnable "energy" (a per-element sum plus a term in the
molecule's spread), so the run shows training that works and forces that behave like forces.
Run ``python examples/train_invariant_model.py`` (``--small`` for a quick run).
"""

from __future__ import annotations

import argparse
import os
from typing import Optional

import numpy as np
from rdkit import Chem, RDConfig

from dc_invariant import ConformerFeaturizer, RotationInvariantModel
from dc_invariant._deepchem import import_deepchem
from dc_invariant.symmetry import random_rotation, transform


def read_smiles(n: int) -> list[str]:
    """The first ``n`` small molecules (at most 20 heavy atoms) of RDKit's bundled NCI set."""
    out = []
    with open(os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")) as handle:
        for line in handle:
            mol = Chem.MolFromSmiles(line.split()[0])
            if mol is not None and mol.GetNumHeavyAtoms() <= 20:
                out.append(line.split()[0])
            if len(out) == n:
                break
    return out


def energy(conformer) -> float:
    """A toy extensive label: element contributions plus the radius of gyration."""
    per_element = {1: -0.5, 6: -38.0, 7: -54.6, 8: -75.1}
    base = sum(per_element.get(int(z), -100.0) for z in conformer.atomic_numbers)
    centred = conformer.positions - conformer.positions.mean(axis=0)
    return base + float(np.sqrt((centred**2).sum(axis=1).mean()))


def main(argv: Optional[list[str]] = None) -> int:
    """Train, evaluate and predict forces; return 1 if a sanity check fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="60 molecules, few epochs")
    args = parser.parse_args(argv)
    dc = import_deepchem()

    smiles = read_smiles(60 if args.small else 400)
    featurizer = ConformerFeaturizer(random_seed=0)
    X = featurizer.featurize(smiles)
    keep = np.array([not isinstance(x, np.ndarray) for x in X])
    y = np.array([[energy(c)] for c in X[keep]])
    dataset = dc.data.NumpyDataset(X[keep], y, ids=np.array(smiles)[keep])
    train, valid, test = dc.splits.RandomSplitter().train_valid_test_split(dataset, seed=0)
    print(f"{len(dataset)} molecules: {len(train)} train / {len(valid)} valid / {len(test)} test")

    normalise = dc.trans.NormalizationTransformer(transform_y=True, dataset=train)
    model = RotationInvariantModel(n_features=featurizer.n_features, batch_size=16, seed=0)
    metric = dc.metrics.Metric(dc.metrics.mean_absolute_error)
    before = model.evaluate(test, [metric], [normalise])["mean_absolute_error"]
    model.fit(normalise.transform(train), nb_epoch=30 if args.small else 200)
    after = model.evaluate(test, [metric], [normalise])["mean_absolute_error"]
    print(f"test MAE before training {before:.3f}, after {after:.3f} (label units)")

    forces = model.predict_forces(test, transformers=[normalise])
    first = test.X[0]
    net = np.abs(forces[0].sum(axis=0)).max()
    print(f"forces on {test.ids[0]}: {forces[0].shape}, net force {net:.1e}")
    rotation = random_rotation(np.random.default_rng(0))
    turned = model.predict_forces(
        dc.data.NumpyDataset(np.array([transform(first, rotation=rotation)])), [normalise]
    )[0]
    error = float(np.abs(turned - forces[0] @ rotation.T).max())
    print(f"forces rotate with the molecule: max |F(Rx) - R F(x)| = {error:.1e}")
    return 0 if after < before and error < 1e-3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
