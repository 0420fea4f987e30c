"""What the commands' parsers share: the parser style, argument types (built on
`dc_invariant.validation`), the exit statuses, and library messages rewritten to name the
command-line flags. Reading molecules and connecting to Dask are `sources`'.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, Optional

__all__ = [
    "EXIT_CRASH",
    "EXIT_STATUS_HELP",
    "EXIT_USAGE",
    "NON_NEGATIVE",
    "POSITIVE",
    "Parser",
    "UsageError",
    "add_input_options",
    "as_flags",
    "integer",
    "n_jobs",
    "positive_real",
    "refuse_empty",
    "scheduler_address",
    "split",
    "symmetry_list",
    "warnings_to_stderr",
]

#: Exit statuses, for scripts and CI gates (shown by ``--help``).
EXIT_USAGE, EXIT_CRASH = 2, 3

EXIT_STATUS_HELP = (
    "exit status: 0 every --require'd symmetry holds (featurize: some molecules featurized); "
    "1 a required symmetry is broken or was checked on no molecule (stderr says which model "
    "and symmetry; featurize: none featurized); 2 bad arguments or input files, or a "
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


def add_input_options(
    command: argparse.ArgumentParser,
    n_jobs_default: Optional[int] = 1,
    n_jobs_help: str = "worker processes; -1 for all cores",
) -> None:
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
    workers.add_argument("--n-jobs", type=n_jobs, default=n_jobs_default, help=n_jobs_help)
    workers.add_argument(
        "--scheduler",
        type=scheduler_address,
        metavar="ADDRESS",
        help="run on this Dask cluster instead (e.g. tcp://10.0.0.5:8786; needs the dask extra)",
    )


# Options naming a file, folder, column or target: an empty value (an unset shell variable)
# must not read as "not given" and fall back to a default.
_NAMES = ("csv", "sdf", "out", "target", "data_dir", "featurizer", "model", "id_column",
          "smiles_column", "scheduler")  # fmt: skip


def refuse_empty(args: argparse.Namespace) -> None:
    """A `UsageError` when an option that names something was given an empty value."""
    for dest in _NAMES:
        value = getattr(args, dest, None)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and not v.strip() for v in values):
            raise UsageError(f"--{dest.replace('_', '-')} was given an empty value")


def split(text: Optional[str]) -> Optional[tuple[str, ...]]:
    return None if text is None else tuple(part.strip() for part in text.split(",") if part.strip())


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
