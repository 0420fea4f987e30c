"""``dc-invariant audit``: which models, over which molecules, and the exit status."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any, Optional

from dc_invariant.cli.arguments import (
    EXIT_STATUS_HELP,
    NON_NEGATIVE,
    POSITIVE,
    UsageError,
    add_input_options,
    as_flags,
    positive_real,
    symmetry_list,
)
from dc_invariant.cli.sources import connect, read_inputs

__all__ = ["BUILTIN_MODELS", "add_parser", "build_model", "run"]

BUILTIN_MODELS = ("dense", "permutation", "translation", "rotation", "schnet")


def add_parser(commands: Any) -> None:
    """Add the ``audit`` command to the parser's subcommands."""
    audit = commands.add_parser(
        "audit",
        help="check models for permutation/translation/rotation/reflection invariance",
        description="Audit models over a set of molecules and print one summary table per "
        "model. Defaults: the tutorial's four networks (seeded, untrained: invariance does not "
        "depend on training) over the built-in example molecules.",
        epilog=EXIT_STATUS_HELP,
    )
    add_input_options(
        audit,
        n_jobs_default=None,
        n_jobs_help="workers; -1 for all cores (default: every core, as threads, for the "
        "audit of dc_invariant's built-in torch models; one otherwise)",
    )
    audit.add_argument(
        "--dataset",
        choices=("qm9", "delaney", "freesolv", "lipo"),
        help="a dataset by name (qm9 needs the qm9 extra; the others read --data-dir)",
    )
    audit.add_argument("--data-dir", metavar="DIR", help="folder holding the MoleculeNet raw file")
    audit.add_argument(
        "--model",
        action="append",
        metavar="NAME|DIR",
        help="dense, permutation, translation, rotation, schnet, or a saved model folder; "
        "repeat for several (default: the four tutorial networks)",
    )
    audit.add_argument(
        "--target",
        metavar="MODULE:FACTORY",
        help="audit your own pipeline: FACTORY() in a .py file or importable module returns a "
        "model, a featurizer, a function f(positions, features) or a (featurizer, model) pair. "
        "The file is imported, so its code runs (as with python or pytest): only use code "
        "you trust",
    )
    audit.add_argument(
        "--featurizer",
        metavar="NAME",
        help="a DeepChem featurizer built without arguments (e.g. CircularFingerprint, "
        "MATFeaturizer): audited alone, or feeding the --target model",
    )
    audit.add_argument(
        "--symmetries",
        type=symmetry_list,
        default="permutation,translation,rotation,reflection",
        metavar="SYM,SYM",
        help="symmetries to check",
    )
    audit.add_argument(
        "--output",
        choices=("invariant", "per_atom", "vector", "pseudoscalar"),
        default="invariant",
        help="how outputs must transform; 'vector' audits a model's forces",
    )
    audit.add_argument(
        "--cutoff",
        type=positive_real,
        metavar="Å",
        help="pair cutoff of the built-in translation, rotation and schnet models: neighbour "
        "lists for large molecules (default: none; schnet 5)",
    )
    audit.add_argument("--n-samples", type=POSITIVE, default=3, help="group elements per molecule")
    audit.add_argument("--seed", type=NON_NEGATIVE, default=0, help="seed of the group elements")
    audit.add_argument(
        "--dtype", choices=("float32", "float64"), default="float64", help="built-in networks"
    )
    audit.add_argument(
        "--out", metavar="DIR", help="write audit.json, CSV tables and report.html per model"
    )
    audit.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted audit stored under --out (finished chunks are kept)",
    )
    audit.add_argument(
        "--require",
        type=symmetry_list,
        metavar="SYM,SYM",
        help="exit with status 1 if any model breaks one of these symmetries (default: none)",
    )


def build_model(
    name: str, n_features: int, n_atoms: int, dtype: str, seed: int, cutoff: Optional[float] = None
) -> Any:
    """A seeded, untrained built-in model, or a saved model loaded from folder ``name``.

    ``cutoff`` (Å) applies to the pair models and SchNet (whose own default is 5 Å).
    """
    from dc_invariant import models

    if name == "dense":
        return models.DenseModel(n_atoms=n_atoms, n_features=n_features, dtype=dtype, seed=seed)
    if name == "permutation":
        return models.PermutationInvariantModel(n_features=n_features, dtype=dtype, seed=seed)
    if name in ("translation", "rotation"):
        cls = {
            "translation": models.TranslationInvariantModel,
            "rotation": models.RotationInvariantModel,
        }[name]
        return cls(n_features=n_features, dtype=dtype, seed=seed, cutoff=cutoff)
    if name == "schnet":
        extra = {} if cutoff is None else {"cutoff": cutoff}
        return models.SchNetModel(n_features=n_features, dtype=dtype, seed=seed, **extra)
    return models.load_model(name)


def run(args: argparse.Namespace) -> int:
    """Run the audit command; 1 when a ``--require``d symmetry is broken."""
    from dc_invariant.auditing import audit, prepare

    symmetries, required = args.symmetries, args.require or []
    unaudited = [s for s in required if s not in symmetries]
    if unaudited:  # a requirement nobody checks must not pass a CI gate
        raise UsageError(
            f"--require {','.join(unaudited)}: not among --symmetries {','.join(symmetries)}"
        )
    if args.dataset and (args.smiles or args.csv or args.sdf):
        raise UsageError("--dataset is a source of molecules: give it or --smiles/--csv/--sdf")
    if args.dataset and (args.id_column is not None or args.smiles_column != "smiles"):
        raise UsageError("--id-column and --smiles-column name columns of --csv, not --dataset")
    custom = _custom_target(args)
    default = [] if custom else ["dense", "permutation", "translation", "rotation"]
    names = args.model or default
    for name in names:
        if name not in BUILTIN_MODELS and not os.path.isdir(name):
            raise UsageError(
                f"--model {name!r} is neither one of {', '.join(BUILTIN_MODELS)} "
                "nor a saved model folder"
            )
        if name in BUILTIN_MODELS and os.path.isdir(name):  # which one was meant?
            raise UsageError(
                f"--model {name} names a built-in model and a folder here: write "
                f"{os.path.join('.', name)} for the saved model in the folder"
            )
    if args.resume and not args.out:
        raise UsageError("--resume continues the audit stored under --out: give --out too")
    if args.out:
        parent = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(parent):
            raise UsageError(f"cannot write {args.out}: folder {parent} does not exist")
        if os.path.exists(args.out) and not os.path.isdir(args.out):
            raise UsageError(f"--out names a folder for the reports, but {args.out} is a file")
    folders = _report_folders(args, [*names, *([custom[0]] if custom else [])])
    scheduler = connect(args)
    workers = {"n_jobs": args.n_jobs or 1, "scheduler": scheduler}
    # Featurized once, for every model; failures keep RDKit's reason.
    data = prepare(_dataset(args, workers), **workers)
    n_features = data.molecules[0].n_features if data.molecules else 11
    n_atoms = max((c.n_atoms for c in data.molecules), default=1)

    jobs: list[tuple[str, Callable[[], tuple[Any, Any]]]] = [
        (
            name,
            lambda name=name: (
                None,
                build_model(name, n_features, n_atoms, args.dtype, args.seed, args.cutoff),
            ),
        )
        for name in names
    ]
    if custom:
        jobs.append((custom[0], lambda: custom[1:]))
    status = 0
    for name, make in jobs:
        try:
            featurizer, model = make()
        except (OSError, ValueError) as err:  # a folder without a model, or a broken one
            raise UsageError(f"--model {name}: {err}") from err
        folder = folders.get(name)
        try:
            report = audit(
                model,
                data,
                featurizer=featurizer,
                symmetries=symmetries,
                n_samples=args.n_samples,
                seed=args.seed,
                output=args.output,
                progress=data.n_inputs > 1000 and sys.stderr.isatty(),
                store=os.path.join(folder, "chunks") if folder else None,
                resume=args.resume,
                n_jobs=_audit_jobs(args, model, featurizer),
                scheduler=scheduler,
            )
        except (TypeError, ValueError) as err:  # our checks, a refused resume, a mismatch
            raise UsageError(str(err)) from err
        print(f"\n== {name} ({report.settings['target']}) ==")
        print(as_flags(report.format()))
        if folder:
            report.to_csv(folder)
            report.to_json(os.path.join(folder, "audit.json"))
            report.to_html(os.path.join(folder, "report.html"))
        label = f"{name} ({report.settings['target']})"
        status = max(status, _status(report, required, label))
    return status


def _report_folders(args: argparse.Namespace, names: list[str]) -> dict[str, str]:
    """``OUT/<name>`` for each model, checked before any work: inside ``--out``, one model
    per folder, and empty unless ``--resume`` (reports are never overwritten silently)."""
    if not args.out:
        return {}
    if len(set(names)) < len(names):
        raise UsageError("the same model is named twice: its reports would share one folder")
    inside = os.path.realpath(args.out)
    folders: dict[str, str] = {}
    owners: dict[str, str] = {}  # folder -> model
    for name in names:
        # abspath first: normpath("..") stays "..", which would put the reports beside --out.
        base = os.path.basename(os.path.abspath(name))
        folder = os.path.join(args.out, base)
        if not base or os.path.dirname(os.path.realpath(folder)) != inside:
            raise UsageError(f"{name}: its reports would not land inside {args.out}")
        if folder in owners:
            raise UsageError(
                f"--model {owners[folder]} and {name} would write their reports to the same "
                f"folder {folder}: audit them with separate --out folders"
            )
        if not args.resume and os.path.isdir(folder) and os.listdir(folder):
            raise UsageError(
                f"{folder} already holds audit results: add --resume to continue it, or "
                "give another --out"
            )
        folders[name], owners[folder] = folder, name
    return folders


def _audit_jobs(args: argparse.Namespace, model: Any, featurizer: Any) -> int:
    """--n-jobs, else every core for the models `audit` runs on threads (`runs_in_threads`:
    nothing to start or copy, a gain from the first chunk), else one."""
    if args.n_jobs is not None or args.scheduler:
        return args.n_jobs or 1
    from dc_invariant.auditing.compute import runs_in_threads

    return -1 if runs_in_threads(model, featurizer) else 1


def _status(report: Any, required: list[str], label: str) -> int:
    """1, with the reason on stderr, when nothing could be checked or a requirement fails."""
    if len(report.skipped) == report.n_inputs:
        print(
            f"dc-invariant: {label}: no molecule could be checked: all {report.n_inputs} were "
            "skipped",
            file=sys.stderr,
        )
        return 1
    unchecked = [s for s in required if not report.checked(s)]
    broken = [s for s in required if report.checked(s) and not report.holds(s)]
    if unchecked:
        print(
            f"dc-invariant: {label}: required symmetry checked on no molecule: "
            f"{', '.join(unchecked)}",
            file=sys.stderr,
        )
    if broken:
        print(f"dc-invariant: {label} breaks required {', '.join(broken)}", file=sys.stderr)
    return 1 if unchecked or broken else 0


def _custom_target(args: argparse.Namespace) -> Optional[tuple[str, Any, Any]]:
    """``(label, featurizer, target)`` from --target and --featurizer, or None without them."""
    from dc_invariant.auditing.user_target import TargetError, deepchem_featurizer, load_target

    if not args.target and not args.featurizer:
        return None
    try:
        featurizer, target = load_target(args.target) if args.target else (None, None)
        if args.featurizer:
            if featurizer is not None:
                raise TargetError("--target gave a (featurizer, model) pair: drop --featurizer")
            if target is not None and not hasattr(target, "predict"):
                raise TargetError(
                    f"--featurizer feeds a model, but --target gave {type(target).__name__} "
                    "(no predict)"
                )
            featurizer = deepchem_featurizer(args.featurizer)
        if target is None:  # --featurizer alone: audit the featurizer itself
            featurizer, target = None, featurizer
    except TargetError as err:
        raise UsageError(str(err)) from err
    label = args.target.rpartition(":")[2] if args.target else args.featurizer
    return label, featurizer, target


def _dataset(args: argparse.Namespace, workers: dict[str, Any]) -> Any:
    """A DeepChem dataset for --dataset, else the inputs as a list (featurized by `prepare`)."""
    from dc_invariant.featurizer import ConformerFeaturizer

    if args.dataset == "qm9":
        from dc_invariant.datasets import load_qm9

        try:
            _, (dataset,), _ = load_qm9(tasks=["u0"], limit=args.limit, splitter=None)
        except ImportError as err:
            raise UsageError(str(err)) from err
        return dataset
    if args.dataset:
        from dc_invariant.datasets import load_molnet, molnet_smiles

        if not args.data_dir or not os.path.isdir(args.data_dir):
            raise UsageError(f"--dataset {args.dataset} needs --data-dir, an existing folder")
        try:
            dataset = load_molnet(args.dataset, args.data_dir, ConformerFeaturizer(**workers))
        except FileNotFoundError as err:
            raise UsageError(str(err)) from err
        return _with_failures(dataset, molnet_smiles(args.dataset, args.data_dir), args.limit,
                              workers)  # fmt: skip
    from dc_invariant.auditing import prepare

    inputs, labels = read_inputs(args)
    return prepare(inputs, ids=labels, **workers)


def _with_failures(dataset: Any, raw: list[str], limit: Optional[int], workers: dict) -> Any:
    """The first ``limit`` rows of the raw file as audit input: DeepChem's loader drops the
    molecules its featurizer fails on, and the report must count them, with their reason."""
    from dc_invariant.auditing import prepare
    from dc_invariant.featurizer import ConformerFeaturizer

    raw = raw[:limit] if limit else raw
    ids = [str(i) for i in dataset.ids]
    kept, failed = 0, []  # the dataset keeps the file's order, less its failures
    for smiles in raw:
        if kept < len(ids) and ids[kept] == smiles:
            kept += 1
        else:
            failed.append(smiles)
    if not limit and kept < len(ids):
        raise UsageError("the dataset's molecules do not follow its raw file's rows")
    prepared = prepare(dataset.select(list(range(kept))), **workers)
    if failed:
        again = ConformerFeaturizer(**workers)
        again.featurize(failed, log_failures=False)
        reasons = {i: why for i, _, why in again.failures}
        prepared.skipped += [
            (smiles, reasons.get(i, "dropped by DeepChem's loader"))
            for i, smiles in enumerate(failed)
        ]
    return prepared
