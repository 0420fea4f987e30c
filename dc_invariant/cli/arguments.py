"""What the commands share: the parser style, argument types (built on
`dc_invariant.validation`), reading molecules from --smiles / --csv / --sdf, the Dask
connection, and library messages rewritten to name the command-line flags.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, Optional

__all__ = [
    "EXIT_STATUS_HELP",
    "NON_NEGATIVE",
    "POSITIVE",
    "Parser",
    "UsageError",
    "add_input_options",
    "as_flags",
    "connect",
    "integer",
    "n_jobs",
    "positive_real",
    "read_inputs",
    "readable_file",
    "scheduler_address",
    "split",
    "symmetry_list",
    "warnings_to_stderr",
    "writable_target",
]

#: Exit statuses, for scripts and CI gates (shown by ``--help``).
EXIT_USAGE, EXIT_CRASH = 2, 3

EXIT_STATUS_HELP = (
    "exit status: 0 every --require'd symmetry holds (featurize: every molecule featurized); "
    "1 a required symmetry is broken or was checked on no molecule (stderr says which model "
    "and symmetry; featurize: some molecules failed); 2 bad arguments or input files, or a "
    "refused --resume (one line on stderr); 3 an unexpected failure: a target that raises "
    "on every molecule, or a bug (a traceback on stderr)"
)


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


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def integer(min_val: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number, checked by `validation.check_int`."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        return _checked("check_int", value, "value", min_val=min_val)

    convert.__name__ = "whole number"  # argparse names the type in its messages
    return convert


def positive_real(text: str) -> float:
    """An argparse ``type``: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    return _checked("check_real", value, "value", min_val=0.0, include_boundaries="neither")


def n_jobs(text: str) -> int:
    """An argparse ``type``: worker processes, as `validation.check_n_jobs` allows."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    return _checked("check_n_jobs", value)


def scheduler_address(text: str) -> str:
    """An argparse ``type``: a Dask scheduler address."""
    if not re.fullmatch(r"(tcp|tls|inproc|ucx)://\S+|[\w.\-\[\]:]+:\d+", text):
        raise argparse.ArgumentTypeError(
            f"expected a Dask scheduler address such as tcp://host:8786, got {text!r}"
        )
    return text


def symmetry_list(text: str) -> list[str]:
    """An argparse ``type``: comma-separated symmetry names."""
    from dc_invariant.auditing.settings import SYMMETRIES

    names = [part.strip() for part in text.split(",") if part.strip()]
    bad = [n for n in names if n not in SYMMETRIES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"expected symmetries from {','.join(SYMMETRIES)}, got {text!r}"
        )
    return names


def _checked(check: str, *args: Any, **kwargs: Any) -> Any:
    """``validation.<check>(*args, **kwargs)``, failing as argparse expects ("argument
    --flag: <message>"). Imported on use: it loads NumPy, and --help must not."""
    from dc_invariant import validation

    try:
        return getattr(validation, check)(*args, **kwargs)
    except (TypeError, ValueError) as err:
        raise argparse.ArgumentTypeError(str(err)) from None


POSITIVE = integer(1)
NON_NEGATIVE = integer(0)

# The library's messages name Python keywords; on the command line the flags are meant.
_FLAG_NAMES = (
    (re.compile(r"force_field=None"), "--force-field none"),
    (re.compile(r"force_field='(\w+)'"), r"--force-field \1"),
    (re.compile(r"fragments='(\w+)'"), r"--fragments \1"),
    (re.compile(r"embed_timeout=(\d+)"), r"--embed-timeout \1"),
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


def add_input_options(command: argparse.ArgumentParser) -> None:
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
        "--limit", type=POSITIVE, metavar="N", help="use only the first N molecules"
    )
    workers = command.add_mutually_exclusive_group()
    workers.add_argument(
        "--n-jobs", type=n_jobs, default=1, help="worker processes; -1 for all cores"
    )
    workers.add_argument(
        "--scheduler",
        type=scheduler_address,
        metavar="ADDRESS",
        help="run on this Dask cluster instead (e.g. tcp://10.0.0.5:8786; needs the dask extra)",
    )


def split(text: Optional[str]) -> Optional[tuple[str, ...]]:
    return None if text is None else tuple(part.strip() for part in text.split(",") if part.strip())


def readable_file(path: str, suffixes: tuple[str, ...]) -> str:
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    if not os.access(path, os.R_OK):
        raise UsageError(f"cannot read {path}: permission denied")
    if not path.lower().endswith(suffixes):
        raise UsageError(f"{path} does not look like a {'/'.join(suffixes)} file")
    return path


def writable_target(path: str, suffix: str) -> str:
    if not path.lower().endswith(suffix):
        raise UsageError(f"--out must name a {suffix} file, got {path}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {path}: folder {folder} is not writable")
    return path


def read_inputs(args: argparse.Namespace) -> tuple[list[Any], list[str]]:
    """Molecules to featurize and a label for each."""
    if args.id_column is not None and not args.csv:
        raise UsageError("--id-column names a column of --csv: give --csv too")
    if args.smiles:
        inputs: list[Any] = list(args.smiles)
        labels = list(args.smiles)
    elif args.csv:
        import pandas as pd

        try:
            table = pd.read_csv(readable_file(args.csv, (".csv", ".csv.gz")), nrows=args.limit)
        except (ValueError, OSError) as err:
            raise UsageError(f"cannot read {args.csv} as CSV: {err}") from err
        for column in (args.smiles_column, args.id_column):
            if column is not None and column not in table.columns:
                raise UsageError(
                    f"{args.csv} has no column {column!r}; columns are {list(table.columns)}"
                )
        inputs = table[args.smiles_column].tolist()
        # pandas reads an empty cell as NaN: such a molecule is named by its line instead.
        labels = [
            str(s) if isinstance(s, str) or args.id_column else f"line {i + 2} (empty cell)"
            for i, s in enumerate(table[args.id_column or args.smiles_column])
        ]
    elif args.sdf:
        from rdkit import Chem, rdBase

        blocker = rdBase.BlockLogs()
        try:
            supplier = Chem.SDMolSupplier(readable_file(args.sdf, (".sdf",)), removeHs=False)
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


class _FlagFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return as_flags(super().format(record))


@contextlib.contextmanager
def warnings_to_stderr() -> Iterator[None]:
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
