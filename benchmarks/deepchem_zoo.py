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

The DGL models (GCN, GAT, AttentiveFP, MPNN, Pagtn) need ``dgl``, which has no build for
torch 2.13: ``--dgl-python PATH`` audits them with this script run by that interpreter, in an
environment of its own (torch 2.2.1 + dgl 2.1.0, built with the one line in
``benchmarks/molnet.py``'s docstring), on the same molecules (checked), and merges its rows
into this table, each naming the versions it ran with.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import tempfile
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
#: What DeepChem's DGL models import; ``--dgl-python`` runs them where these do.
DGL = ("dgl", "dgllife")

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
    # Found by featurizing renumbered copies of small molecules (benzene: only the first).
    ("PagtnModel on PagtnMolGraphFeaturizer", "permutation"): (
        "DeepChem's PagtnMolGraphFeaturizer gives each atom pair's shortest-path features to "
        "one directed edge only, from the lower-numbered atom (the edge back gets zeros), lists "
        "the path's bonds from that atom, and in rings keeps whichever of several shortest "
        "paths RDKit returns for that numbering; renumbering changes all three, and the "
        "network's attention reads them"
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

    def graph(model: str, **featurizer: Any) -> Callable[[Any], tuple[Any, Any]]:
        def build(dc: Any) -> tuple[Any, Any]:
            network = getattr(_torch_models(dc), model)
            return dc.feat.MolGraphConvFeaturizer(**featurizer), network(
                n_tasks=1, mode="regression", batch_size=64
            )

        return build

    def pagtn(dc: Any) -> tuple[Any, Any]:
        network = _torch_models(dc).PagtnModel(n_tasks=1, mode="regression", batch_size=64)
        return dc.feat.PagtnMolGraphFeaturizer(), network

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
        Entry("GCNModel", "MolGraphConvFeaturizer", DGL, graph("GCNModel")),
        Entry("GATModel", "MolGraphConvFeaturizer", DGL, graph("GATModel")),
        Entry(
            "AttentiveFPModel",
            "MolGraphConvFeaturizer(use_edges=True)",
            DGL,
            graph("AttentiveFPModel", use_edges=True),
        ),
        Entry(
            "MPNNModel",
            "MolGraphConvFeaturizer(use_edges=True)",
            DGL,
            graph("MPNNModel", use_edges=True),
        ),
        Entry("PagtnModel", "PagtnMolGraphFeaturizer", DGL, pagtn),
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


def versions() -> dict[str, str]:
    """The versions of the packages the audited pipelines run on, in this environment."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("torch", "deepchem", "rdkit", "numpy", "dgl", "dgllife"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            continue
    return out


def remote_rows(
    python: str, models: list[str], smiles: list[str], n: int, n_samples: int
) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Rows of ``models``, audited by this script run by ``python`` (``--dgl-python``).

    It reads the same ``n`` NCI molecules (checked against ``smiles``) and audits them with
    the same settings; each of its rows names the versions it ran with.

    Returns
    -------
    rows : dict
        The rows of each pipeline it audited, by pipeline name.
    why : str
        "" if it ran to the end, else its exit status and last line of error output (the rows
        it wrote before are kept).
    """
    with tempfile.TemporaryDirectory() as folder:
        command = [python, os.path.abspath(__file__), "--only", ",".join(models)]
        command += ["--molecules", str(n), "--n-samples", str(n_samples), "--out", folder]
        # This checkout's package, not whichever one that environment has installed.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        done = subprocess.run(
            command, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": root}
        )
        path = os.path.join(folder, "deepchem_zoo.json")
        result = {"rows": []}
        if os.path.exists(path):
            with open(path) as handle:
                result = json.load(handle)
    if result["rows"] and result["smiles"] != smiles:
        raise RuntimeError(f"{python} audited other molecules than this run's {n}")
    why = ""
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        why = f"`{python} deepchem_zoo.py` stopped (exit status {done.returncode}): " + (
            lines[-1] if lines else "no error text"
        )
    environment = ", ".join(f"{k} {v}" for k, v in result.get("versions", {}).items())
    out: dict[str, list[dict[str, Any]]] = {}
    for row in result["rows"]:
        out.setdefault(row["pipeline"], []).append({**row, "environment": environment})
    return out, why


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
    environments: dict[str, list[str]] = {}
    for r in rows:
        if r.get("environment"):
            environments.setdefault(r["environment"], []).append(r["pipeline"].split()[0])
    for environment, models in environments.items():
        lines.append(
            f"- {', '.join(dict.fromkeys(models))}: audited by `--dgl-python`, in an "
            f"environment of their own ({environment})."
        )
    lines.extend(f"- {n}." for n in notes)
    return "\n".join(lines)


def merged(previous: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``previous`` rows with each pipeline's rows replaced by those of ``new``, in place; the
    pipelines only ``new`` has follow."""
    fresh: dict[str, list[dict[str, Any]]] = {}
    for r in new:
        fresh.setdefault(r["pipeline"], []).append(r)
    out: list[dict[str, Any]] = []
    placed: set[str] = set()
    for r in previous:
        if r["pipeline"] not in fresh:
            out.append(r)
        elif r["pipeline"] not in placed:
            out.extend(fresh[r["pipeline"]])
            placed.add(r["pipeline"])
    return out + [r for r in new if r["pipeline"] not in placed]


def main(argv: Optional[list[str]] = None) -> int:
    """Audit the zoo and write the table; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 molecules, 1 sample")
    parser.add_argument("--n-samples", type=int, default=2, help="group elements per symmetry")
    parser.add_argument("--molecules", type=int, help="how many molecules (default 200)")
    parser.add_argument("--only", help="comma-separated model names to run")
    parser.add_argument(
        "--dgl-python",
        help="interpreter of an environment with dgl 2.1.0 that audits the DGL models",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="replace only the audited pipelines' rows of the table in --out, keep the others",
    )
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
    previous: list[dict[str, Any]] = []
    if args.update:
        with open(os.path.join(args.out, "deepchem_zoo.json")) as handle:
            table = json.load(handle)
        if table["molecules"] != len(prepared.molecules) or table.get("smiles", smiles) != smiles:
            parser.error(f"--update: {args.out} holds a table of other molecules")
        previous = table["rows"]
    chosen = [e for e in entries() if not args.only or e.model in args.only.split(",")]
    remote: Optional[tuple[dict[str, list[dict[str, Any]]], str]] = None
    for entry in chosen:
        if args.dgl_python and entry.needs == DGL:
            if remote is None:
                models = [e.model for e in chosen if e.needs == DGL]
                remote = remote_rows(args.dgl_python, models, smiles, n, n_samples)
            got, why = remote
            rows.extend(got.get(entry.name) or [{"pipeline": entry.name, "state": "not run",
                                                 "reason": why or "no row came back"}])  # fmt: skip
        else:
            rows.extend(run_entry(dc, entry, prepared, n_samples))
        # Written after every pipeline, so that a long run keeps what it has measured.
        table_rows = merged(previous, rows)
        with open(os.path.join(args.out, "deepchem_zoo.md"), "w") as handle:
            handle.write(markdown(table_rows) + "\n")
        with open(os.path.join(args.out, "deepchem_zoo.json"), "w") as handle:
            summary = {"molecules": len(prepared.molecules), "smiles": smiles}
            json.dump({**summary, "versions": versions(), "rows": table_rows}, handle, indent=2)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
