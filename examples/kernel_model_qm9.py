"""KernelModel on QM9
==================

KernelModel on QM9: fit, evaluate, save, reload, forces and a symmetry audit, then the
Nyström solve that takes over past 20,000 training molecules, here asked for on a small set.

QM9 U0 atomization energies with their DFT geometries (``pip install 'dc_invariant[qm9]'``).
The full run trains on 2,000 molecules (about a minute on two CPU cores); ``--small`` on 300.
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Optional

import numpy as np

from dc_invariant import KernelModel, load_model, load_qm9
from dc_invariant._deepchem import import_deepchem
from dc_invariant.auditing import audit
from dc_invariant.molecules import Molecules


def main(argv: Optional[list[str]] = None) -> int:
    """Run the example; ``--small`` for a quick run."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--small", action="store_true", help="300 training molecules")
    args = parser.parse_args(argv)
    dc = import_deepchem()
    n_train, n_test = (300, 100) if args.small else (2000, 500)
    _, (data,), _ = load_qm9(tasks=["u0_atom"], limit=n_train + n_test, splitter=None, seed=0)
    train, test = data.select(np.arange(n_train)), data.select(np.arange(n_train, len(data)))
    # sigma and regularization searched; on a GPU when there is one (device=None)
    model = KernelModel(model_dir=tempfile.mkdtemp())
    loo_mae = model.fit(train)
    print(
        f"chose sigma={model.fitted['sigma']:g}, regularization="
        f"{model.fitted['regularization']:g} (leave-one-out MAE {loo_mae:.3f} eV)"
    )
    # A kernel model cannot predict an element it never saw (fluorine is rare in QM9): it
    # says which molecules, and why; predict would give them NaN.
    reasons = model.unsupported(Molecules.from_conformers(list(test.X)))
    print(f"{len(reasons)} test molecule(s) dropped: {sorted(set(reasons.values()))}")
    test = test.select(np.setdiff1d(np.arange(len(test)), list(reasons)))
    metric = dc.metrics.Metric(dc.metrics.mean_absolute_error)
    test_mae = model.evaluate(test, [metric])["mean_absolute_error"]
    spread = float(np.abs(test.y - train.y.mean()).mean())
    print(
        f"test MAE {test_mae:.3f} eV on {len(test)} molecules (predicting the mean: {spread:.1f})"
    )
    print(f"better than the mean by 10x: {test_mae < spread / 10}")

    model.save()
    # The device is not saved: load_model(folder, device="cpu") loads a GPU-fitted model anywhere.
    again = load_model(model.model_dir, device=model.device)
    same = np.array_equal(again.predict(test), model.predict(test))
    print(f"reloaded model predicts identically: {same}")

    forces = again.predict_forces(test.select(np.arange(3)))
    print(
        f"forces of the first molecule (eV/Å), shape {forces[0].shape}, net force "
        f"{np.abs(forces[0].sum(axis=0)).max():.1e}"
    )
    report = audit(again, test.select(np.arange(20)), n_samples=2)
    holds = all(report.holds(s) for s in ("permutation", "translation", "rotation", "reflection"))
    print(f"all four symmetries hold: {holds}")

    # Past 20,000 molecules (solver="auto") the model fits on the kernel columns of landmark
    # molecules: memory and prediction cost follow the landmarks, not the training set.
    landmarks = KernelModel(solver="nystrom", landmarks=n_train // 2, sigma=model.fitted["sigma"])
    landmarks.fit(train)
    nystrom_mae = landmarks.evaluate(test, [metric])["mean_absolute_error"]
    print(
        f"Nystrom solve, {landmarks.fitted['landmarks']} landmarks: test MAE {nystrom_mae:.3f} "
        f"eV (exact: {test_mae:.3f}); within 1.5x of the exact fit: {nystrom_mae < 1.5 * test_mae}"
    )
    return 0


if __name__ == "__main__":
    # Exit only on failure, so that a documentation build can run the file too.
    if status := main():
        raise SystemExit(status)
