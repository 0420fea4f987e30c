"""Where the commands' molecules and workers come from: --smiles / --csv / --sdf (or the
built-in examples), the files they name, --out paths, and the --scheduler connection.

Every problem is a `UsageError`: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import os
import sys
from typing import Any

from dc_invariant.cli.arguments import UsageError

__all__ = ["connect", "read_inputs", "readable_file", "writable_target"]


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


def _read_table(pd: Any, path: str, args: argparse.Namespace) -> Any:
    """The rows of a CSV file that hold something, each indexed by its line less 2, the first
    ``args.limit`` of them. Cells are text as written: only an empty cell is missing (pandas
    would read ids such as ``NA`` or ``None`` as missing, and ``007`` as 7)."""
    text = {args.id_column: str} if args.id_column is not None else None
    options = {"dtype": text, "keep_default_na": False, "na_values": [""]}
    rows = args.limit
    blank = _blank_lines(path)
    while True:
        table = pd.read_csv(path, nrows=rows, skip_blank_lines=False, **options)
        # Only a blank line is no molecule: a row of empty cells ("" or ",") is one that fails.
        on_blank_line = table.index.map(lambda i: i + 2 in blank).to_numpy(dtype=bool)
        filled = table[~(table.isna().all(axis=1).to_numpy() & on_blank_line)]
        if args.limit is None or len(filled) >= args.limit or len(table) < rows:
            return filled.head(args.limit) if args.limit is not None else filled
        rows += len(table) - len(filled)  # blank lines took places of molecules


def _blank_lines(path: str) -> set[int]:
    """Numbers (from 1) of the file's lines that hold nothing but white space."""
    opener: Any = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        return {n for n, line in enumerate(handle, start=1) if not line.strip()}


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
            table = _read_table(pd, readable_file(args.csv, (".csv", ".csv.gz")), args)
        except (ValueError, OSError) as err:
            raise UsageError(f"cannot read {args.csv} as CSV: {err}") from err
        for column in (args.smiles_column, args.id_column):
            if column is not None and column not in table.columns:
                raise UsageError(
                    f"{args.csv} has no column {column!r}; columns are {list(table.columns)}"
                )
        inputs = table[args.smiles_column].tolist()
        # An empty cell reads as NaN: such a molecule is named by its line (the header is
        # line 1, and blank lines were kept until now so that the count holds).
        labels = [
            s if isinstance(s, str) else f"line {int(i) + 2} (empty cell)"
            for i, s in table[args.id_column or args.smiles_column].items()
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
