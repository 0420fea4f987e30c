"""Calibration of the audit's geometry-blindness control, on real trained models, both ways.

The control distorts every molecule a little and asks whether the target's output moved
beyond the noise measured on that molecule (`dc_invariant.auditing.chunk.control_moved`).
It must fire on targets that read the geometry and stay quiet on those that do not:

- geometry-reading, each trained on QM9 U0 atomization energies (DFT geometries): SchNet
  (5 epochs on 400 molecules, where the old tolerance-based control called it blind), the
  tutorial's permutation / translation / rotation networks (5 epochs), a `KernelModel`;
  required: read as geometry-reading on >= 95% of the audited molecules;
- geometry-blind, DeepChem pipelines trained on the same labels: ECFP -> MultitaskRegressor,
  WeaveModel, MATModel; required: blind on 100%.

Run ``python benchmarks/control_calibration.py`` (400 training and 200 audited QM9
molecules; ``--small`` for 120 and 40). Needs the ``qm9`` extra. Prints one row per target
and writes ``benchmarks/results/control_calibration.md``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _measure import cpu_model

from dc_invariant import load_qm9
from dc_invariant._deepchem import import_deepchem
from dc_invariant.auditing import audit, prepare
from dc_invariant.auditing.featurizing import featurize
from dc_invariant.auditing.rebuild import mols_for
from dc_invariant.models import (
    KernelModel,
    PermutationInvariantModel,
    RotationInvariantModel,
    SchNetModel,
    TranslationInvariantModel,
)
from dc_invariant.molecules import Molecules

EPOCHS = 5
SEED = 0
RESULTS = os.path.join(os.path.dirname(__file__), "results", "control_calibration.md")


def ours(n_train: int) -> dict[str, Callable[[Any], Any]]:
    """dc_invariant models reading geometry, each fitted on ``train``."""

    def torch_model(cls: Any) -> Callable[[Any], Any]:
        def fit(train: Any) -> Any:
            model = cls(seed=SEED, batch_size=32)
            model.fit(train, nb_epoch=EPOCHS)
            return model

        return fit

    def kernel(train: Any) -> Any:
        model = KernelModel()
        model.fit(train)
        return model

    return {
        f"SchNetModel, {EPOCHS} epochs": torch_model(SchNetModel),
        f"PermutationInvariantModel, {EPOCHS} epochs": torch_model(PermutationInvariantModel),
        f"TranslationInvariantModel, {EPOCHS} epochs": torch_model(TranslationInvariantModel),
        f"RotationInvariantModel, {EPOCHS} epochs": torch_model(RotationInvariantModel),
        f"KernelModel ({n_train} molecules)": kernel,
    }


def pipelines(dc: Any) -> dict[str, Callable[[], tuple[Any, Any]]]:
    """DeepChem pipelines whose featurizers ignore coordinates."""
    torch_models = importlib.import_module("deepchem.models.torch_models")
    return {
        "CircularFingerprint -> MultitaskRegressor": lambda: (
            dc.feat.CircularFingerprint(size=1024),
            dc.models.MultitaskRegressor(1, 1024, layer_sizes=[64], batch_size=64),
        ),
        "WeaveFeaturizer -> WeaveModel": lambda: (
            dc.feat.WeaveFeaturizer(max_pair_distance=2),
            torch_models.WeaveModel(1, mode="regression", batch_size=64),
        ),
        "MATFeaturizer -> MATModel": lambda: (
            dc.feat.MATFeaturizer(),
            torch_models.MATModel(batch_size=64),
        ),
    }


def fit_pipeline(dc: Any, featurizer: Any, model: Any, train: Any) -> Any:
    """``model`` fitted on ``train``'s molecules as ``featurizer`` sees them."""
    molecules = Molecules.from_conformers(list(train.X))
    features, failures = featurize(featurizer, mols_for(molecules))
    keep = [i for i, f in enumerate(features) if f is not None and i not in failures]
    X = np.empty(len(keep), dtype=object)
    X[:] = [features[i] for i in keep]
    if all(isinstance(x, np.ndarray) and x.dtype.kind == "f" for x in X):
        X = np.stack(list(X))
    y = np.asarray(train.y)[keep]
    model.fit(dc.data.NumpyDataset(X, (y - y.mean()) / y.std()), nb_epoch=EPOCHS)
    return model


def row(name: str, report: Any, seconds: float, expect_blind: bool) -> dict[str, Any]:
    control = report.control
    moved = int((~control["passed"].astype(bool)).sum())
    share = moved / len(control) if len(control) else float("nan")
    met = share == 0.0 if expect_blind else share >= 0.95
    return {
        "target": name,
        "expected": "blind" if expect_blind else "reads geometry",
        "moved": f"{moved} / {len(control)}",
        "share": share,
        "median rel change": float(control["rel_deviation"].median()),
        "verdict": "blind" if report.geometry_blind else "reads geometry",
        "met": "yes" if met else "NO",
        "seconds": seconds,
    }


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="120 training, 40 audited")
    parser.add_argument("--out", default=RESULTS, help="Markdown table to write")
    args = parser.parse_args(argv)
    n_train, n_audit = (120, 40) if args.small else (400, 200)
    dc = import_deepchem()
    # A seeded sample of QM9 (load_qm9's limit), split in file order into train and audit.
    _, (sample,), _ = load_qm9(tasks=["u0_atom"], limit=n_train + n_audit, splitter=None, seed=SEED)
    train = sample.select(np.arange(n_train))
    audited = sample.select(np.arange(n_train, n_train + n_audit))
    data = prepare(audited)
    rows = []
    for name, fit in ours(n_train).items():
        start = time.perf_counter()
        model = fit(train)
        report = audit(model, data, n_samples=3, seed=SEED)
        rows.append(row(name, report, time.perf_counter() - start, expect_blind=False))
        print(rows[-1], flush=True)
    for name, build in pipelines(dc).items():
        start = time.perf_counter()
        featurizer, model = build()
        fit_pipeline(dc, featurizer, model, train)
        report = audit(model, data, featurizer=featurizer, n_samples=1, seed=SEED)
        rows.append(row(name, report, time.perf_counter() - start, expect_blind=True))
        print(rows[-1], flush=True)
    cpu = cpu_model()
    lines = [
        f"Control calibration, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu}, "
        f"{os.cpu_count()} CPUs: QM9 U0, {n_train} training / {n_audit} audited molecules.",
        "",
        "| target | expected | moved | median rel change | verdict | target met | seconds |",
        "|---|---|---:|---:|---|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['target']} | {r['expected']} | {r['moved']} | {r['median rel change']:.1e} "
            f"| {r['verdict']} | {r['met']} | {r['seconds']:.0f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
