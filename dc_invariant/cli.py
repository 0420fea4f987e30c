"""The ``dc-invariant`` command line: a thin layer over the library.

Heavy imports (DeepChem, RDKit) happen inside the commands, so ``dc-invariant --help``
answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, Optional


class UsageError(Exception):
    """A problem with the user's arguments or files: one line on stderr, exit status 2."""


class _DefaultsFormatter(argparse.HelpFormatter):
    """Help that states each option's default, where there is one worth stating."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unstated = action.default is None or action.default is False
        if unstated or action.default == argparse.SUPPRESS or "(default" in text:
            return text
        return text + " (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _whole_number(low: int) -> Callable[[str], int]:
    """An argparse ``type`` for whole numbers of at least ``low``."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    convert.__name__ = "whole number"  # argparse names the type in its messages
    return convert


_POSITIVE = _whole_number(1)
_NON_NEGATIVE = _whole_number(0)

# The library's messages name Python keywords; on the command line the flags are meant.
_FLAG_NAMES = (
    (re.compile(r"force_field=None"), "--force-field none"),
    (re.compile(r"force_field='(\w+)'"), r"--force-field \1"),
    (re.compile(r"fragments='(\w+)'"), r"--fragments \1"),
    (re.compile(r"embed_timeout=(\d+)"), r"--embed-timeout \1"),
    (re.compile(r"embed_timeout \(None: no limit\)"), "--embed-timeout (0: no limit)"),
    (re.compile(r"resume it \(resume=True, --resume\)"), "add --resume to continue it"),
)


def as_flags(text: str) -> str:
    """``text`` with the library's keyword names replaced by the matching command-line flags.

    Examples
    --------
    >>> as_flags("MMFF94 has no parameters; use force_field='UFF' or force_field=None")
    'MMFF94 has no parameters; use --force-field UFF or --force-field none'
    """
    for pattern, flag in _FLAG_NAMES:
        text = pattern.sub(flag, text)
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dc-invariant`` (also used to render the README's usage)."""
    parser = _Parser(
        prog="dc-invariant",
        description="Invariant 3D featurization and models for DeepChem. "
        "Without a command, runs 'audit' on the built-in example molecules.",
    )
    from dc_invariant import __version__

    parser.add_argument("--version", action="version", version=f"dc-invariant {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    audit = commands.add_parser(
        "audit",
        help="check models for permutation/translation/rotation/reflection invariance",
        description="Audit models over a set of molecules and print one summary table per "
        "model. Defaults: the tutorial's four networks (seeded, untrained: invariance does not "
        "depend on training) over the built-in example molecules.",
    )
    _add_input_options(audit)
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
        type=float,
        metavar="Å",
        help="pair cutoff of the built-in translation, rotation and schnet models: neighbour "
        "lists for large molecules (default: none; schnet 5)",
    )
    audit.add_argument("--n-samples", type=_POSITIVE, default=3, help="group elements per molecule")
    audit.add_argument("--seed", type=_NON_NEGATIVE, default=0, help="seed of the group elements")
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
        metavar="SYM,SYM",
        help="exit with status 1 if any model breaks one of these symmetries",
    )
    feat = commands.add_parser(
        "featurize",
        help="turn molecules into 3D conformers (R, X) and print a summary table",
        description="Featurize molecules with ConformerFeaturizer and print one row per "
        "molecule. Input defaults to the built-in example molecules.",
    )
    _add_input_options(feat)
    feat.add_argument("--seed", type=_NON_NEGATIVE, default=0, help="ETKDGv3 random seed")
    feat.add_argument(
        "--elements",
        metavar="SYM,SYM",
        default="H,C,N,O,F,P,S,Cl,Br,I",
        help="one-hot element vocabulary",
    )
    feat.add_argument(
        "--no-other-element", action="store_true", help="no column for elements outside --elements"
    )
    feat.add_argument(
        "--atom-properties",
        metavar="NAME,NAME",
        help="extra columns from formal_charge,aromatic,hybridization",
    )
    feat.add_argument("--heavy-atoms-only", action="store_true", help="drop hydrogens")
    feat.add_argument(
        "--force-field", choices=("none", "MMFF", "UFF"), default="none", help="geometry clean-up"
    )
    feat.add_argument(
        "--n-conformers",
        type=_POSITIVE,
        default=1,
        help="geometries per molecule (all of them are saved with --out)",
    )
    feat.add_argument(
        "--fragments",
        choices=("all", "largest", "error"),
        default="all",
        help="salts and mixtures: keep every fragment (laid apart), the largest, or fail",
    )
    feat.add_argument(
        "--embed-timeout",
        type=_NON_NEGATIVE,
        default=60,
        metavar="SECONDS",
        help="embedding time allowed per molecule; 0 for no limit",
    )
    feat.add_argument("--out", metavar="PATH.npz", help="also save the arrays to this .npz file")
    return parser


def _add_input_options(command: argparse.ArgumentParser) -> None:
    source = command.add_mutually_exclusive_group()
    source.add_argument("--smiles", nargs="+", metavar="SMILES", help="SMILES strings")
    source.add_argument("--csv", metavar="PATH", help="CSV file with a SMILES column")
    source.add_argument("--sdf", metavar="PATH", help="SDF file; its 3D coordinates are kept")
    command.add_argument("--smiles-column", default="smiles", help="CSV column of SMILES")
    command.add_argument(
        "--id-column",
        metavar="NAME",
        help="CSV column naming each molecule in tables and reports (default: the SMILES; "
        "for an SDF the record's title)",
    )
    command.add_argument(
        "--limit", type=_POSITIVE, metavar="N", help="use only the first N molecules"
    )
    command.add_argument("--n-jobs", type=int, default=1, help="worker processes; -1 for all cores")
    command.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on this Dask cluster instead (e.g. tcp://10.0.0.5:8786; needs the dask extra)",
    )


def _split(text: Optional[str]) -> Optional[tuple[str, ...]]:
    return None if text is None else tuple(part.strip() for part in text.split(",") if part.strip())


def _readable_file(path: str, suffixes: tuple[str, ...]) -> str:
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    if not os.access(path, os.R_OK):
        raise UsageError(f"cannot read {path}: permission denied")
    if not path.lower().endswith(suffixes):
        raise UsageError(f"{path} does not look like a {'/'.join(suffixes)} file")
    return path


def _writable_target(path: str, suffix: str) -> str:
    if not path.lower().endswith(suffix):
        raise UsageError(f"--out must name a {suffix} file, got {path}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {path}: folder {folder} is not writable")
    return path


def _read_inputs(args: argparse.Namespace) -> tuple[list[Any], list[str]]:
    """Molecules to featurize and a label for each."""
    if args.id_column is not None and not args.csv:
        raise UsageError("--id-column names a column of --csv: give --csv too")
    if args.smiles:
        inputs: list[Any] = list(args.smiles)
        labels = list(args.smiles)
    elif args.csv:
        import pandas as pd

        try:
            table = pd.read_csv(_readable_file(args.csv, (".csv", ".csv.gz")), nrows=args.limit)
        except (ValueError, OSError) as err:
            raise UsageError(f"cannot read {args.csv} as CSV: {err}") from err
        for column in (args.smiles_column, args.id_column):
            if column is not None and column not in table.columns:
                raise UsageError(
                    f"{args.csv} has no column {column!r}; columns are {list(table.columns)}"
                )
        inputs = table[args.smiles_column].tolist()
        labels = [str(s) for s in table[args.id_column or args.smiles_column]]
    elif args.sdf:
        from rdkit import Chem, rdBase

        blocker = rdBase.BlockLogs()
        try:
            supplier = Chem.SDMolSupplier(_readable_file(args.sdf, (".sdf",)), removeHs=False)
            inputs = [mol for _, mol in zip(range(args.limit or sys.maxsize), supplier)]
        except OSError as err:
            raise UsageError(f"cannot read {args.sdf} as SDF: {err}") from err
        finally:
            del blocker
        labels = [
            (mol.GetProp("_Name") or f"record {i}") if mol is not None else f"record {i}"
            for i, mol in enumerate(inputs)
        ]
    else:
        from dc_invariant.builtin import EXAMPLE_MOLECULES

        inputs = list(EXAMPLE_MOLECULES.values())
        labels = list(EXAMPLE_MOLECULES)
    if args.limit is not None:
        inputs, labels = inputs[: args.limit], labels[: args.limit]
    if not inputs:
        raise UsageError("no molecules to featurize")
    return inputs, labels


def check_workers(args: argparse.Namespace) -> None:
    """``--n-jobs`` and ``--scheduler``: valid on their own and not given together."""
    if args.n_jobs == 0:
        raise UsageError("--n-jobs must be a positive number of processes, or -1 for all cores")
    if args.scheduler is not None:
        if args.n_jobs != 1:
            raise UsageError("give --n-jobs (local processes) or --scheduler (Dask), not both")
        if not re.fullmatch(r"(tcp|tls|inproc|ucx)://\S+|[\w.\-\[\]:]+:\d+", args.scheduler):
            raise UsageError(
                f"--scheduler must be a Dask scheduler address such as tcp://host:8786, "
                f"got {args.scheduler!r}"
            )


def connect(args: argparse.Namespace) -> Any:
    """The Dask client for ``--scheduler`` (None without it); unreachable is a usage error."""
    if args.scheduler is None:
        return None
    if getattr(args, "client", None) is None:
        from dc_invariant.parallel import dask_client

        try:
            with contextlib.redirect_stderr(io.StringIO()):
                args.client = dask_client(args.scheduler)
        except (ImportError, ValueError) as err:
            raise UsageError(str(err)) from err
    return args.client


def _featurize(args: argparse.Namespace) -> int:
    check_workers(args)
    out = _writable_target(args.out, ".npz") if args.out else None
    inputs, labels = _read_inputs(args)

    import numpy as np

    from dc_invariant.featurizer import ConformerFeaturizer

    options: dict[str, Any] = {
        "random_seed": args.seed,
        "n_jobs": args.n_jobs,
        "scheduler": connect(args),
        "other_element": not args.no_other_element,
        "heavy_atoms_only": args.heavy_atoms_only,
        "force_field": None if args.force_field == "none" else args.force_field,
        "n_conformers": args.n_conformers,
        "fragments": args.fragments,
        "embed_timeout": args.embed_timeout or None,
    }
    if args.elements is not None:
        options["elements"] = _split(args.elements)
    if args.atom_properties is not None:
        options["atom_properties"] = _split(args.atom_properties)
    try:
        featurizer = ConformerFeaturizer(**options)
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from err

    results = featurizer.featurize(inputs)
    print(_table(labels, results))
    done = [r for r in results if not isinstance(r, np.ndarray)]
    print(
        f"\n{len(done)} of {len(results)} molecules featurized; "
        f"{featurizer.n_features} features per atom: {', '.join(featurizer.feature_names)}"
    )
    if out is not None and done:
        ids = [label for label, r in zip(labels, results) if not isinstance(r, np.ndarray)]
        _save_npz(out, done, ids, featurizer)
    return 0 if done else 1


def _save_npz(path: str, done: Sequence[Any], ids: Sequence[str], featurizer: Any) -> None:
    import numpy as np

    arrays = {
        "positions": np.concatenate([c.positions for c in done]),
        "features": np.concatenate([c.features for c in done]),
        "atomic_numbers": np.concatenate([c.atomic_numbers for c in done]),
        "n_atoms": np.array([c.n_atoms for c in done]),
        "smiles": np.array([c.smiles or "" for c in done]),
        "ids": np.array(list(ids)),
        "feature_names": np.array(featurizer.feature_names),
    }
    note = "positions/features are concatenated; split them with n_atoms"
    if featurizer.settings.n_conformers > 1:
        # Every geometry, molecule by molecule and conformer by conformer; a Mol that came
        # with fewer 3D conformers than asked for contributes the ones it has.
        arrays["ensemble"] = np.concatenate([c.ensemble.reshape(-1, 3) for c in done])
        arrays["n_conformers"] = np.array([c.n_conformers for c in done])
        note += "; ensemble holds all geometries, n_conformers[i] blocks of n_atoms[i] rows each"
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)  # complete or absent
    print(f"saved {path} ({note})")


def _table(labels: Sequence[str], results: Sequence[Any]) -> str:
    import numpy as np

    rows = [("#", "molecule", "atoms", "heavy", "Rg/Å", "extent/Å")]
    for i, (label, r) in enumerate(zip(labels, results)):
        if isinstance(r, np.ndarray):
            rows.append((str(i), _short(label), "-", "-", "-", "failed"))
            continue
        centred = r.positions - r.positions.mean(axis=0)
        radius = float(np.sqrt((centred**2).sum(axis=1).mean()))
        extent = float(np.ptp(r.positions, axis=0).max())
        heavy = int((r.atomic_numbers > 1).sum())
        rows.append(
            (str(i), _short(label), str(r.n_atoms), str(heavy), f"{radius:.2f}", f"{extent:.2f}")
        )
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].rjust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(w) for cell, w in zip(row[2:], widths[2:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


class _FlagFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return as_flags(super().format(record))


@contextlib.contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """Show the library's warnings (skipped molecules) as plain lines while a command runs."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_FlagFormatter("warning: %(message)s"))
    ours = logging.getLogger("dc_invariant")
    ours.addHandler(handler)
    propagate, ours.propagate = ours.propagate, False
    try:
        yield
    finally:
        ours.removeHandler(handler)
        ours.propagate = propagate


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``dc-invariant``; returns the exit status (2 for bad arguments or files)."""
    parser = build_parser()
    args: Optional[argparse.Namespace] = None
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            args = parser.parse_args(["audit"])
        with _warnings_to_stderr():
            if args.command == "audit":
                from dc_invariant.auditing.command import run_audit

                check_workers(args)
                return run_audit(args, _read_inputs, connect, UsageError)
            return _featurize(args)
    except UsageError as err:
        print(f"dc-invariant: error: {as_flags(str(err))}", file=sys.stderr)
        return 2
    finally:
        # A client left open would try to reconnect at exit, after its cluster may be gone.
        if getattr(args, "client", None) is not None:
            args.client.close()


if __name__ == "__main__":
    sys.exit(main())
