"""Do the models train and predict on a GPU, and agree with the CPU?

Not part of CI (there is no GPU there): run by hand on a machine with CUDA.

    python benchmarks/device_check.py make --out qm9_600.npz      # here: needs qm9pack
    python benchmarks/device_check.py run --data qm9_600.npz      # on the GPU machine

``make`` writes 600 QM9 molecules (DFT geometries, U0 atomization energy in eV) as flat
arrays, so that ``run`` needs neither qm9pack nor RDKit Mol objects. ``run`` checks, on
``--device`` (default ``cuda``) against the CPU, with the same seed:

* SchNet in float64 trained for a few epochs on each device: predictions agree to ~1e-9
  relative (only the order of the additions differs);
* SchNet in float32 trained on the device, then its checkpoint loaded on the CPU: the same
  predictions and forces within float32 tolerance, and the saved folder loads on a CPU-only
  machine;
* the symmetry audit of the device-trained model holds on all four symmetries;
* seconds per training epoch on each device (informational);
* the KernelModel, when it takes a ``device`` (``device_check_kernel.check_kernel``).

It prints one table, writes ``--json`` if given, and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from typing import Any, Optional

import numpy as np
import torch

N_TRAIN, N_TEST = 500, 100
EPOCHS = 3
SCHNET = dict(n_atom_basis=32, n_filters=32, n_interactions=2, n_rbf=20, batch_size=32)
# Float64 on both devices differs only in the order of additions; float32 by its rounding.
TOLERANCE = {"float64": 1e-8, "float32": 1e-4}


def make(path: str, limit: int = N_TRAIN + N_TEST, seed: int = 0) -> None:
    """Write ``limit`` seeded QM9 molecules to ``path`` as flat arrays (needs qm9pack)."""
    from dc_invariant.datasets import read_qm9_table

    table = read_qm9_table(limit=limit, seed=seed)
    np.savez(
        path,
        atomic_numbers=np.concatenate(table["atomic_numbers"].to_list()),
        positions=np.concatenate(table["positions"].to_list()),
        counts=table["atomic_numbers"].map(len).to_numpy(),
        y=table["u0_atom"].to_numpy(),
        ids=table.index.to_numpy(dtype=str),
    )


def load(path: str) -> tuple[Any, Any]:
    """(train, test) DeepChem datasets of `Conformer`s from a file written by `make`."""
    import deepchem as dc

    from dc_invariant import ConformerFeaturizer

    data = np.load(path)
    splits = np.cumsum(data["counts"])[:-1]
    numbers = np.split(data["atomic_numbers"], splits)
    positions = np.split(data["positions"], splits)
    X = ConformerFeaturizer().featurize_arrays(numbers, positions)
    y, ids = data["y"].reshape(-1, 1), data["ids"]
    full = dc.data.NumpyDataset(X, y, ids=ids)
    return full.select(np.arange(N_TRAIN)), full.select(np.arange(N_TRAIN, len(y)))


def _schnet(device: str, dtype: str, folder: Optional[str] = None) -> Any:
    from dc_invariant import SchNetModel

    return SchNetModel(**SCHNET, dtype=dtype, seed=0, device=torch.device(device), model_dir=folder)


def _fit(model: Any, train: Any) -> float:
    """Train `EPOCHS` epochs; seconds per epoch after the first (which builds the network
    and, on CUDA, loads the kernels)."""
    model.fit(train, nb_epoch=1, checkpoint_interval=0)
    start = time.perf_counter()
    model.fit(train, nb_epoch=EPOCHS - 1, checkpoint_interval=0)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / (EPOCHS - 1)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def check_schnet(device: str, train: Any, test: Any) -> list[dict[str, Any]]:
    """Rows of (check, value, tolerance, ok) for SchNet on ``device`` against the CPU."""
    from dc_invariant import audit, load_model

    rows = []
    cpu64, dev64 = _schnet("cpu", "float64"), _schnet(device, "float64")
    cpu_epoch, dev_epoch = _fit(cpu64, train), _fit(dev64, train)
    rows.append(
        _row(
            "SchNet float64 trained on each device: predictions",
            _relative(dev64.predict(test), cpu64.predict(test)),
            TOLERANCE["float64"],
        )
    )
    with tempfile.TemporaryDirectory() as folder:
        dev32 = _schnet(device, "float32", folder)
        dev32_epoch = _fit(dev32, train)
        dev32.save_checkpoint(max_checkpoints_to_keep=1)
        on_cpu = load_model(folder, device=torch.device("cpu"))
        rows.append(
            _row(
                "SchNet float32 trained on device, loaded on CPU: predictions",
                _relative(on_cpu.predict(test), dev32.predict(test)),
                TOLERANCE["float32"],
            )
        )
        molecules = list(test.X[:5])
        forces_dev = np.concatenate(dev32.predict_forces(molecules))
        forces_cpu = np.concatenate(on_cpu.predict_forces(molecules))
        rows.append(
            _row(
                "SchNet float32 forces, device vs CPU",
                _relative(forces_dev, forces_cpu),
                TOLERANCE["float32"],
            )
        )
        report = audit(dev32, test.select(np.arange(50)), n_samples=2, seed=0)
        failing = [s for s in report.settings["symmetries"] if not report.holds(s)]
        rows.append(_row("audit of the device-trained SchNet: symmetries failing", len(failing), 0))
    rows.append(_info("SchNet float64 epoch on CPU / on device (x)", cpu_epoch / dev_epoch))
    rows.append(_info(f"SchNet float32 epoch on device, {N_TRAIN} molecules (s)", dev32_epoch))
    return rows


def _row(check: str, value: float, tolerance: float) -> dict[str, Any]:
    return {"check": check, "value": value, "tolerance": tolerance, "ok": value <= tolerance}


def _info(check: str, value: float) -> dict[str, Any]:
    return {"check": check, "value": value, "tolerance": None, "ok": True}


def run(data: str, device: str) -> list[dict[str, Any]]:
    """Every check on ``device``; kernel checks when the KernelModel takes a device."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available on this machine")
    train, test = load(data)
    rows = check_schnet(device, train, test)
    try:
        from device_check_kernel import check_kernel
    except ImportError:
        rows.append(_info("KernelModel: no device check in this tree", float("nan")))
    else:
        kernel = check_kernel(device, data)
        rows += [
            _row(
                "KernelModel fitted on each device: max |prediction difference| (eV)",
                kernel["max_abs_prediction_diff"],
                1e-8,
            ),
            _row("KernelModel forces, device vs CPU (eV/Å)", kernel["max_abs_force_diff"], 1e-8),
            _info("KernelModel test MAE on the device (eV)", kernel["on_device"]["mae_eV"]),
            _info(
                "KernelModel fit on CPU / on device (x)",
                kernel["cpu"]["fit_s"] / kernel["on_device"]["fit_s"],
            ),
        ]
    return rows


def main(argv: Optional[list[str]] = None) -> int:
    """``make`` the data here, ``run`` the checks on the GPU machine."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    maker = sub.add_parser("make", help="write the QM9 sample (needs qm9pack)")
    maker.add_argument("--out", required=True)
    runner = sub.add_parser("run", help="run the checks")
    runner.add_argument("--data", required=True)
    runner.add_argument("--device", default="cuda")
    runner.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.command == "make":
        make(args.out)
        return 0
    rows = run(args.data, args.device)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"# {args.device} ({name}) against the CPU, torch {torch.__version__}")
    print("| check | value | tolerance | ok |\n|---|---:|---:|---|")
    for r in rows:
        tolerance = "-" if r["tolerance"] is None else f"{r['tolerance']:.0e}"
        print(f"| {r['check']} | {r['value']:.3g} | {tolerance} | {'yes' if r['ok'] else 'NO'} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"device": name, "torch": torch.__version__, "rows": rows}, handle, indent=2)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
