"""KernelModel on another device (a GPU) against the CPU: same predictions, MAE, times, forces.

Two steps, so that the check runs on a machine with only torch, NumPy, SciPy, scikit-learn
and DeepChem (no RDKit, no qm9pack):

1. here, ``python benchmarks/device_check_kernel.py --make qm9_600.npz`` writes 600 QM9
   molecules (positions, atomic numbers, U0 atomization energy in eV) from
   ``read_qm9_table(limit=600, seed=0)``;
2. there, ``python benchmarks/device_check_kernel.py qm9_600.npz --device cuda`` fits one
   KernelModel on the CPU and one on the device (500 molecules, fixed sigma and
   regularization; 100 test molecules) and prints ``check_kernel``'s result as JSON.

With ``--device cpu`` both fits run on the CPU and every difference must be ~0.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

N_TRAIN, N_TEST, N_FORCES = 500, 100, 5


def make_npz(path: str) -> None:
    """Write 600 seeded QM9 molecules as stacked arrays (needs qm9pack)."""
    from dc_invariant.datasets import read_qm9_table

    table = read_qm9_table(limit=N_TRAIN + N_TEST, seed=0)
    np.savez(
        path,
        counts=np.array([len(z) for z in table["atomic_numbers"]]),
        atomic_numbers=np.concatenate(list(table["atomic_numbers"])),
        positions=np.concatenate(list(table["positions"])),
        y=table["u0_atom"].to_numpy(),
    )


def _datasets(path: str) -> tuple[Any, Any]:
    """Train and test `NumpyDataset`s of `Conformer`s built from the arrays of ``path``."""
    import deepchem as dc

    from dc_invariant import Conformer

    with np.load(path, allow_pickle=False) as data:
        counts, z, r, y = (data[k] for k in ("counts", "atomic_numbers", "positions", "y"))
    ends = np.cumsum(counts)
    X = np.empty(len(counts), dtype=object)
    X[:] = [Conformer(r[e - n : e], np.zeros((n, 1)), z[e - n : e]) for n, e in zip(counts, ends)]
    # Test molecules without fluorine: the few F molecules must all be in the training set.
    fluorine = np.add.reduceat(z == 9, ends - counts) > 0
    test = np.flatnonzero(~fluorine)[-N_TEST:]
    train = np.setdiff1d(np.arange(len(counts)), test)
    return tuple(dc.data.NumpyDataset(X[p], y[p, None]) for p in (train, test))


def _run(device: str, train: Any, test: Any) -> dict[str, Any]:
    import torch

    from dc_invariant.models import KernelModel

    def synchronize() -> None:
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()

    model = KernelModel(sigma=4.0, regularization=1e-6, device=device)
    start = time.perf_counter()
    model.fit(train)
    synchronize()
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    predicted = model.predict(test)
    synchronize()
    predict_s = time.perf_counter() - start
    few = test.select(np.arange(N_FORCES))
    forces = np.concatenate(model.predict_forces(few))
    return {"predicted": predicted, "forces": forces, "fit_s": fit_s, "predict_s": predict_s}


def check_kernel(device: str, path: str = "qm9_600.npz") -> dict[str, Any]:
    """Fit on the CPU and on ``device``; differences, test MAEs (eV) and times (s).

    Returns
    -------
    dict
        ``max_abs_prediction_diff`` over the test molecules, ``max_abs_force_diff``
        (eV/Å) over ``N_FORCES`` of them, and under ``cpu`` and ``on_device`` each run's
        ``mae_eV``, ``fit_s`` and ``predict_s``.
    """
    train, test = _datasets(path)
    cpu, other = _run("cpu", train, test), _run(device, train, test)
    out: dict[str, Any] = {
        "device": device,
        "n_train": len(train),
        "n_test": len(test),
        "max_abs_prediction_diff": float(np.abs(other["predicted"] - cpu["predicted"]).max()),
        "max_abs_force_diff": float(np.abs(other["forces"] - cpu["forces"]).max()),
    }
    for name, run in (("cpu", cpu), ("on_device", other)):
        out[name] = {
            "mae_eV": float(np.abs(run["predicted"] - test.y).mean()),
            "fit_s": round(run["fit_s"], 3),
            "predict_s": round(run["predict_s"], 3),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("npz", help="arrays written by --make")
    parser.add_argument("--make", action="store_true", help="write the arrays (needs qm9pack)")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if args.make:
        make_npz(args.npz)
        print(f"wrote {args.npz}")
    else:
        print(json.dumps(check_kernel(args.device, args.npz), indent=2))


if __name__ == "__main__":
    main()
