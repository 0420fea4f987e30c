"""The ``dc-invariant`` command line: a thin layer over the library.

One module per command (`audit`, `featurize`) and the pieces they share (`arguments`).
Heavy imports (DeepChem, RDKit) happen inside the commands, so ``dc-invariant --help``
answers at once.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from typing import Optional

from dc_invariant.cli import audit, featurize
from dc_invariant.cli.arguments import (
    EXIT_CRASH,
    EXIT_STATUS_HELP,
    EXIT_USAGE,
    Parser,
    UsageError,
    as_flags,
    refuse_empty,
    warnings_to_stderr,
)

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dc-invariant`` (the docs' command-line reference renders it)."""
    from dc_invariant import __version__

    parser = Parser(
        prog="dc-invariant",
        description="Invariant 3D featurization and models for DeepChem. "
        "Without a command, runs 'audit' on the built-in example molecules.",
        epilog=EXIT_STATUS_HELP,
    )
    parser.add_argument("--version", action="version", version=f"dc-invariant {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=Parser)
    audit.add_parser(commands)
    featurize.add_parser(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``dc-invariant``; returns the exit status (`EXIT_STATUS_HELP`)."""
    parser = build_parser()
    args: Optional[argparse.Namespace] = None
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            args = parser.parse_args(["audit"])
        refuse_empty(args)
        with warnings_to_stderr():
            return {"audit": audit.run, "featurize": featurize.run}[args.command](args)
    except UsageError as err:
        print(f"dc-invariant: error: {as_flags(str(err))}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:  # noqa: BLE001 - the last resort: reported, with its own status
        traceback.print_exc()
        print(f"dc-invariant: unexpected failure ({type(err).__name__}): {err}", file=sys.stderr)
        return EXIT_CRASH
    finally:
        # A client left open would try to reconnect at exit, after its cluster may be gone.
        if getattr(args, "client", None) is not None:
            args.client.close()
