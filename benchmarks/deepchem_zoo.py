"""DeepChem's models, audited: each with the featurizer its docs pair it with, as users run it.

Every pipeline is audited for the four symmetries (``--n-samples`` each, default 2) and the
geometry-blindness control, over real molecules from RDKit's bundled NCI screening set
embedded in 3D once (ETKDGv3, seed 0), twice: at initialisation and after a short seeded
fit. The fit label is each molecule's Crippen logP (RDKit), standardised: a real property,
enough to move the weights off their initial values; invariance, not accuracy, is measured.
A model whose packages do not import here gets a row saying which import failed and why.

Run ``python benchmarks/deepchem_zoo.py`` (200 molecules; ~35 min on 2 busy cores, mostly
MAT and Weave) or ``--quick`` (20 molecules, 1 sample). ``--only MATModel,WeaveModel``
runs some models. DTNNModel needs ``torch_geometric`` (``pip install 'dc_invariant[zoo]'``).
Writes ``benchmarks/results/deepchem_zoo.md`` and ``.json`` unless ``--out`` says elsewhere.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from rdkit import Chem, RDConfig
from rdkit.Chem import Crippen

from dc_invariant import ConformerFeaturizer
from dc_invariant._deepchem import import_deepchem
from dc_invariant.auditing import SYMMETRIES, AuditReport, audit, prepare
from dc_invariant.auditing.featurizing import featurize
from dc_invariant.auditing.rebuild import mols_for
from dc_invariant.molecules import Molecules

#: Coulomb matrices are padded to this many atoms, hydrogens included.
MAX_ATOMS = 50
EPOCHS = 5
ELEMENTS = frozenset({"H", "C", "N", "O", "F", "S", "Cl"})
SEED = 0

#: Why a broken verdict is broken: the component responsible, one sentence each.
EXPLANATIONS: dict[tuple[str, str], str] = {
    ("MultitaskRegressor on CoulombMatrix(upper_tri=True)", "permutation"): (
        "the Coulomb matrix's rows and columns follow the atom order, and its flattened upper "
        "triangle feeds a dense layer whose weights are tied to positions in that order"
    ),
    ("SklearnModel(RandomForestRegressor) on CoulombMatrix(upper_tri=True)", "permutation"): (
        "each tree splits on fixed entries of the flattened Coulomb matrix, whose positions "
        "follow the atom order"
    ),
}


@dataclass
class Entry:
    """One pipeline: a model class, the featurizer it reads, and the imports it needs."""

    model: str
    featurizer: str
    needs: tuple[str, ...]
    build: Callable[[Any], tuple[Any, Any]]  # deepchem module -> (featurizer or None, model)
    predicts_untrained: bool = True

    @property
    def name(self) -> str:
        return f"{self.model} on {self.featurizer}"


def _torch_models(dc: Any) -> Any:
    return importlib.import_module("deepchem.models.torch_models")


def entries() -> list[Entry]:
    """The pipelines, DeepChem's first and ours last."""
    width = MAX_ATOMS * (MAX_ATOMS + 1) // 2

    def forest(dc: Any) -> Any:
        from sklearn.ensemble import RandomForestRegressor

        return dc.models.SklearnModel(RandomForestRegressor(n_estimators=50, random_state=SEED))

    def ours(name: str) -> Callable[[Any], tuple[Any, Any]]:
        def build(dc: Any) -> tuple[Any, Any]:
            from dc_invariant.cli.audit import build_model

            n_features = ConformerFeaturizer().n_features
            return None, build_model(name, n_features, MAX_ATOMS, "float32", SEED)

        return build

    def unbuilt(dc: Any) -> tuple[Any, Any]:
        raise RuntimeError("only listed: its packages do not import here")

    dgl = ("dgl", "dgllife")
    return [
        Entry(
            "MultitaskRegressor",
            "CoulombMatrix(upper_tri=True)",
            (),
            lambda dc: (
                dc.feat.CoulombMatrix(max_atoms=MAX_ATOMS, upper_tri=True),
                dc.models.MultitaskRegressor(1, width, layer_sizes=[64], batch_size=64),
            ),
        ),
        Entry(
            "MultitaskRegressor",
            "CircularFingerprint",
            (),
            lambda dc: (
                dc.feat.CircularFingerprint(size=1024),
                dc.models.MultitaskRegressor(1, 1024, layer_sizes=[64], batch_size=64),
            ),
        ),
        Entry(
            "MATModel",
            "MATFeaturizer",
            (),
            lambda dc: (dc.feat.MATFeaturizer(), _torch_models(dc).MATModel(batch_size=64)),
        ),
        Entry(
            "WeaveModel",
            "WeaveFeaturizer(max_pair_distance=2)",
            (),
            # Pairs within two bonds: DeepChem's WeaveLayer loops over pairs in Python, and all
            # pairs (its default) cost ~0.3 s per 50-atom molecule here.
            lambda dc: (
                dc.feat.WeaveFeaturizer(max_pair_distance=2),
                _torch_models(dc).WeaveModel(1, mode="regression", batch_size=64),
            ),
        ),
        Entry(
            "DTNNModel",
            "CoulombMatrix",
            ("torch_geometric",),
            lambda dc: (
                dc.feat.CoulombMatrix(max_atoms=MAX_ATOMS),
                _torch_models(dc).DTNNModel(n_tasks=1, batch_size=64),
            ),
        ),
        Entry(
            "SklearnModel(RandomForestRegressor)",
            "CoulombMatrixEig",
            (),
            lambda dc: (dc.feat.CoulombMatrixEig(max_atoms=MAX_ATOMS), forest(dc)),
            predicts_untrained=False,
        ),
        Entry(
            "SklearnModel(RandomForestRegressor)",
            "CoulombMatrix(upper_tri=True)",
            (),
            lambda dc: (dc.feat.CoulombMatrix(max_atoms=MAX_ATOMS, upper_tri=True), forest(dc)),
            predicts_untrained=False,
        ),
        Entry("GCNModel", "MolGraphConvFeaturizer", dgl, unbuilt),
        Entry("GATModel", "MolGraphConvFeaturizer", dgl, unbuilt),
        Entry("AttentiveFPModel", "MolGraphConvFeaturizer(use_edges=True)", dgl, unbuilt),
        Entry("MPNNModel", "MolGraphConvFeaturizer(use_edges=True)", dgl, unbuilt),
        Entry("PagtnModel", "PagtnMolGraphFeaturizer", dgl, unbuilt),
        Entry("dc_invariant RotationInvariantModel", "Conformer", (), ours("rotation")),
        Entry("dc_invariant SchNetModel", "Conformer", (), ours("schnet")),
    ]


def missing(needs: tuple[str, ...]) -> Optional[str]:
    """Why a needed package does not import here (the real error), or None if all do."""
    for module in needs:
        try:
            importlib.import_module(module)
        except Exception as err:  # noqa: BLE001 -- any failure to import is the answer
            return f"import {module} fails: {type(err).__name__}: {str(err).splitlines()[0]}"
    return None


def read_smiles(n: int) -> list[str]:
    """The first ``n`` parseable NCI molecules with 3 to ``MAX_ATOMS`` atoms, one fragment.

    Elements are limited to `ELEMENTS`: DTNNModel embeds atomic numbers in a table of 30.
    """
    out = []
    with open(os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")) as handle:
        for line in handle:
            mol = Chem.MolFromSmiles(line.split()[0])
            if mol is None or len(Chem.GetMolFrags(mol)) > 1:
                continue
            if any(a.GetSymbol() not in ELEMENTS for a in mol.GetAtoms()):
                continue
            if 3 <= Chem.AddHs(mol).GetNumAtoms() <= MAX_ATOMS:
                out.append(line.split()[0])
            if len(out) == n:
                break
    return out


def training_set(dc: Any, prepared: Any, featurizer: Any) -> Any:
    """The audited molecules, featurized as the audit does, labelled with standardised logP."""
    y = np.array([Crippen.MolLogP(Chem.MolFromSmiles(c.smiles)) for c in prepared.molecules])
    y = (y - y.mean()) / y.std()
    if featurizer is None:
        X = np.empty(len(prepared.molecules), dtype=object)
        X[:] = prepared.molecules
        return dc.data.NumpyDataset(X, y[:, None])
    mols = mols_for(Molecules.from_conformers(prepared.molecules))
    features, failures = featurize(featurizer, mols)
    keep = [i for i in range(len(features)) if i not in failures]
    X = np.empty(len(keep), dtype=object)
    X[:] = [features[i] for i in keep]
    if all(isinstance(f, np.ndarray) for f in X):
        X = np.stack(list(X))
    return dc.data.NumpyDataset(X, y[keep, None])


def run_entry(dc: Any, entry: Entry, prepared: Any, n_samples: int) -> list[dict[str, Any]]:
    """Rows for one pipeline: initialised and fitted (or why it could not run)."""
    why = missing(entry.needs)
    if why:
        return [{"pipeline": entry.name, "state": "not run", "reason": why}]
    torch.manual_seed(SEED)
    # DeepChem shuffles training batches with NumPy's global generator.
    np.random.seed(SEED)  # noqa: NPY002
    featurizer, model = entry.build(dc)
    rows = []
    states = ["initialised", "fitted"] if entry.predicts_untrained else ["fitted"]
    for state in states:
        if state == "fitted":
            torch.manual_seed(SEED)
            dataset = training_set(dc, prepared, featurizer)
            if isinstance(model, dc.models.SklearnModel):
                model.fit(dataset)  # one pass: a forest has no epochs
            else:
                model.fit(dataset, nb_epoch=EPOCHS)
        start = time.perf_counter()
        report = audit(model, prepared, featurizer=featurizer, n_samples=n_samples, seed=SEED)
        rows.append(row(entry, state, report, time.perf_counter() - start))
        print(f"{entry.name}, {state}: {rows[-1]['seconds']:.0f} s", flush=True)
    return rows


def row(entry: Entry, state: str, report: AuditReport, seconds: float) -> dict[str, Any]:
    """One table row: verdict and largest relative deviation per symmetry, blindness."""
    out: dict[str, Any] = {"pipeline": entry.name, "state": state, "seconds": seconds}
    for r in report.summary.itertuples():
        out[r.symmetry] = {"verdict": r.verdict, "max_rel_deviation": r.max_rel_deviation}
    out["geometry_blind"] = report.geometry_blind
    out["audited"] = report.n_inputs - len(report.skipped)
    out["skipped"] = len(report.skipped)
    out["dtype"] = report.settings["dtype"]
    out["n_samples"] = report.settings["n_samples"]
    return out


def _cell(result: dict[str, Any]) -> str:
    word = {"holds within numerical noise": "holds", "broken": "**broken**"}
    verdict = word.get(result["verdict"], result["verdict"])
    return f"{verdict} ({result['max_rel_deviation']:.0e})"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table: one row per pipeline and state; then one sentence per broken verdict."""
    head = ["pipeline", "state", *SYMMETRIES, "geometry", "molecules x samples"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for r in rows:
        if r["state"] == "not run":
            cells = [r["pipeline"], "not run", r["reason"], "", "", "", "", ""]
        else:
            blind = {True: "blind", False: "reads", None: "n/a"}[r["geometry_blind"]]
            cells = [r["pipeline"], r["state"], *(_cell(r[s]) for s in SYMMETRIES), blind]
            cells.append(f"{r['audited']} x {r['n_samples']} ({r['dtype']})")
            for s in SYMMETRIES:
                sentence = f"{r['pipeline']} ({r['state']}) breaks {s}: " + EXPLANATIONS.get(
                    (r["pipeline"], s), "no explanation recorded: investigate"
                )
                if r[s]["verdict"] == "broken" and sentence not in notes:
                    notes.append(sentence)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Cells: verdict (largest relative deviation). geometry: 'blind' when a 0.05 Å random "
        "distortion of every atom moved no output, so translation, rotation and reflection "
        "hold trivially."
    )
    lines.extend(f"- {n}." for n in notes)
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    """Audit the zoo and write the table; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 molecules, 1 sample")
    parser.add_argument("--n-samples", type=int, default=2, help="group elements per symmetry")
    parser.add_argument("--molecules", type=int, help="how many molecules (default 200)")
    parser.add_argument("--only", help="comma-separated model names to run")
    parser.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"),
        help="folder for deepchem_zoo.md and deepchem_zoo.json",
    )
    args = parser.parse_args(argv)
    n = args.molecules or (20 if args.quick else 200)
    n_samples = 1 if args.quick else args.n_samples
    dc = import_deepchem()
    smiles = read_smiles(n)
    prepared = prepare(smiles)
    print(f"{len(prepared.molecules)} NCI molecules embedded ({len(prepared.skipped)} failed)")
    rows: list[dict[str, Any]] = []
    os.makedirs(args.out, exist_ok=True)
    for entry in entries():
        if args.only and entry.model not in args.only.split(","):
            continue
        rows.extend(run_entry(dc, entry, prepared, n_samples))
        # Written after every pipeline, so that a long run keeps what it has measured.
        with open(os.path.join(args.out, "deepchem_zoo.md"), "w") as handle:
            handle.write(markdown(rows) + "\n")
        with open(os.path.join(args.out, "deepchem_zoo.json"), "w") as handle:
            json.dump({"molecules": len(prepared.molecules), "rows": rows}, handle, indent=2)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
