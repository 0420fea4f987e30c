"""Training SchNet from SMILES
===========================

SMILES -> featurize -> split -> train SchNetModel -> evaluate against the mean -> forces.

The label is a made-up but learnable "energy" (a per-element sum plus a term in the
molecule's spread), so the run shows training that works and forces that behave like forces.
Run ``python examples/train_invariant_model.py`` (``--small`` for a quick run).
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Optional

import numpy as np
from rdkit import Chem, RDConfig

from dc_invariant import ConformerFeaturizer, SchNetModel
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


def run(small: bool = False) -> dict[str, Any]:
    """Featurize, split, train SchNet and evaluate; every figure `main` prints, and the model.

    No ``NormalizationTransformer``: SchNet standardises its targets itself (per-element
    offsets fitted by least squares, then a scale), which suits an extensive label better than
    one global mean would, and every figure is in label units with nothing to undo. (With a
    transformer, transform the test set too before ``evaluate(test, metrics, [transformer])``:
    DeepChem undoes the transform on the dataset's labels as well as on the predictions.)
    """
    dc = import_deepchem()
    smiles = read_smiles(60 if small else 400)
    featurizer = ConformerFeaturizer(random_seed=0)
    X = featurizer.featurize(smiles)
    keep = np.array([not isinstance(x, np.ndarray) for x in X])
    y = np.array([[energy(c)] for c in X[keep]])
    dataset = dc.data.NumpyDataset(X[keep], y, ids=np.array(smiles)[keep])
    train, valid, test = dc.splits.RandomSplitter().train_valid_test_split(dataset, seed=0)

    model = SchNetModel(
        n_features=featurizer.n_features,
        n_atom_basis=32,
        n_filters=32,
        n_interactions=2,
        n_rbf=20,
        batch_size=16,
        learning_rate=3e-3,
        seed=0,
    )
    metric = dc.metrics.Metric(dc.metrics.mean_absolute_error)
    model.fit(train, nb_epoch=40 if small else 100)
    return {
        "model": model,
        "train": train,
        "valid": valid,
        "test": test,
        "test_mae": model.evaluate(test, [metric])["mean_absolute_error"],
        # The floor every model must beat: the training mean predicted for every molecule.
        "baseline_mae": float(np.abs(test.y - train.y.mean()).mean()),
        # A stronger one that sees composition but no geometry.
        "composition_mae": composition_mae(train, test),
    }


def composition_mae(train: Any, test: Any) -> float:
    """Test MAE of a least-squares fit of the label on element counts (plus a constant)."""
    elements = np.unique(np.concatenate([c.atomic_numbers for c in train.X]))

    def counts(dataset: Any) -> np.ndarray:
        rows = [[(c.atomic_numbers == z).sum() for z in elements] + [1] for c in dataset.X]
        return np.array(rows, dtype=float)

    weights, *_ = np.linalg.lstsq(counts(train), train.y[:, 0], rcond=None)
    return float(np.abs(counts(test) @ weights - test.y[:, 0]).mean())


def report(result: dict[str, Any]) -> int:
    """Print the figures of `run`, predict forces; 1 if a sanity check fails."""
    model, test = result["model"], result["test"]
    sizes = [len(result[k]) for k in ("train", "valid", "test")]
    print(f"{sum(sizes)} molecules: {sizes[0]} train / {sizes[1]} valid / {sizes[2]} test")
    print(f"labels: mean {test.y.mean():.2f}, std {test.y.std():.2f} (test set, label units)")
    print(f"test MAE, predicting the training mean: {result['baseline_mae']:.3f}")
    print(f"test MAE, per-element least squares:    {result['composition_mae']:.3f}")
    print(f"test MAE, trained SchNetModel:          {result['test_mae']:.3f}")

    forces = model.predict_forces(test)
    first = test.X[0]
    net = np.abs(forces[0].sum(axis=0)).max()
    print(f"forces on {test.ids[0]}: {forces[0].shape}, net force {net:.1e}")
    rotation = random_rotation(np.random.default_rng(0))
    turned = model.predict_forces(transform(first, rotation=rotation))[0]
    error = float(np.abs(turned - forces[0] @ rotation.T).max())
    print(f"forces rotate with the molecule: max |F(Rx) - R F(x)| = {error:.1e}")
    # Per-element offsets alone beat the mean by far before any training step; only a
    # network that learned the geometric term beats composition.
    beats = result["test_mae"] < result["composition_mae"]
    print(f"model beats per-element least squares (it learned the geometry): {beats}")
    return 0 if beats and error < 1e-3 else 1


def main(argv: Optional[list[str]] = None) -> int:
    """Train, evaluate and predict forces; return 1 if a sanity check fails."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--small", action="store_true", help="60 molecules, few epochs")
    args = parser.parse_args(argv)
    return report(run(args.small))


if __name__ == "__main__":
    # Exit only on failure, so that a documentation build can run the file too.
    if status := main():
        raise SystemExit(status)
