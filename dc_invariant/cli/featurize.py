"""``dc-invariant featurize``: molecules to conformers, a summary table and an optional .npz."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from dc_invariant.cli.arguments import (
    NON_NEGATIVE,
    POSITIVE,
    UsageError,
    add_input_options,
    connect,
    read_inputs,
    split,
    writable_target,
)
from dc_invariant.files import atomic

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Add the ``featurize`` command to the parser's subcommands."""
    feat = commands.add_parser(
        "featurize",
        help="turn molecules into 3D conformers (R, X) and print a summary table",
        description="Featurize molecules with ConformerFeaturizer and print one row per "
        "molecule. Input defaults to the built-in example molecules.",
    )
    add_input_options(feat)
    feat.add_argument("--seed", type=NON_NEGATIVE, default=0, help="ETKDGv3 random seed")
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
        type=POSITIVE,
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
        type=NON_NEGATIVE,
        default=60,
        metavar="SECONDS",
        help="embedding time allowed per molecule; 0 for no limit",
    )
    feat.add_argument("--out", metavar="PATH.npz", help="also save the arrays to this .npz file")


def run(args: argparse.Namespace) -> int:
    """Featurize, print one row per molecule, save ``--out``; 1 when nothing featurized."""
    out = writable_target(args.out, ".npz") if args.out else None
    if out is not None and os.path.exists(out):
        # As audit --out: results already there are never overwritten silently.
        raise UsageError(f"{out} already exists: remove it or choose another --out")
    inputs, labels = read_inputs(args)

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
        options["elements"] = split(args.elements)
    if args.atom_properties is not None:
        options["atom_properties"] = split(args.atom_properties)
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
    with atomic(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)
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
