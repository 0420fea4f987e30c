"""Result rows: what each benchmark writes with ``--json PATH`` and ``run_all.py`` collects.

A benchmark's JSON file is a list of rows, one per comparison of ours against a peer measured
in the same run, each with exactly the keys in `KEYS`::

    {"benchmark": "inference", "measure": "predict 1,000 QM9 molecules, same weights",
     "ours": "RotationInvariantModel.predict, float32", "peer": "NumPy reference loop",
     "value_ours": 14977.0, "value_peer": 2920.0, "unit": "molecules/s", "ratio": 5.13,
     "target": ">= 100x", "met": false}

``ratio`` is always how many times better ours is than the peer (above 1: ours is better),
whatever the unit: peer time / our time, our rate / peer rate, peer error / our error.
``target`` is the issue's target as text ("" if there is none) and ``met`` whether this run
met it (``None`` where there is no target or the run cannot tell).

This module is imported by the benchmark scripts, which Python runs with ``benchmarks/`` on
``sys.path``; it is not a benchmark itself.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any, Optional

KEYS = (
    "benchmark",
    "measure",
    "ours",
    "peer",
    "value_ours",
    "value_peer",
    "unit",
    "ratio",
    "target",
    "met",
)


def result_row(
    benchmark: str,
    measure: str,
    ours: str,
    peer: str,
    value_ours: float,
    value_peer: float,
    unit: str,
    *,
    higher_is_better: bool,
    target: str = "",
    met: Optional[bool] = None,
) -> dict[str, Any]:
    """One result row, with its ratio oriented so that above 1 means ours is better.

    Parameters
    ----------
    benchmark : str
        The script's name without ``.py``.
    measure : str
        What was compared, e.g. ``"embed 1,000 NCI SMILES, 1 job"``.
    ours, peer : str
        Labels of the two methods.
    value_ours, value_peer : float
        Their measured values, in ``unit``.
    unit : str
        E.g. ``"molecules/s"``, ``"s"``, ``"eV"``.
    higher_is_better : bool
        True for rates (ratio = ours / peer), False for times and errors (ratio = peer / ours).
    target : str, default=""
        The target as text, e.g. ``">= 20x"``.
    met : bool or None, default=None
        Whether the target was met; None where there is none or it could not be judged.

    Returns
    -------
    dict
        The row, with the keys of `KEYS` in that order.
    """
    value_ours, value_peer = float(value_ours), float(value_peer)
    top, bottom = (value_ours, value_peer) if higher_is_better else (value_peer, value_ours)
    # A zero time (a clock too coarse for the work) makes the ratio infinite, not an error.
    ratio = top / bottom if bottom != 0 else (math.inf if top > 0 else math.nan)
    return {
        "benchmark": benchmark,
        "measure": measure,
        "ours": ours,
        "peer": peer,
        "value_ours": value_ours,
        "value_peer": value_peer,
        "unit": unit,
        "ratio": ratio,
        "target": target,
        # numpy booleans are not JSON serialisable.
        "met": None if met is None else bool(met),
    }


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--json PATH``, through which ``run_all.py`` asks a benchmark for its rows."""
    parser.add_argument(
        "--json", metavar="PATH", help="also write the comparisons as JSON result rows to PATH"
    )


def write_rows(path: str, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` to ``path`` as a JSON list, after checking them."""
    check_rows(rows)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(rows, handle, indent=2)
        handle.write("\n")


def check_rows(data: Any) -> list[dict[str, Any]]:
    """Return ``data`` if it is a list of well-formed rows; raise ValueError saying what is not.

    Parameters
    ----------
    data : Any
        What a benchmark's JSON file held.

    Returns
    -------
    list of dict
        ``data`` itself.
    """
    if not isinstance(data, list):
        raise ValueError(f"expected a JSON list of rows, got {type(data).__name__}")
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise ValueError(f"row {index}: expected an object, got {type(row).__name__}")
        if set(row) != set(KEYS):
            missing = ", ".join(sorted(set(KEYS) - set(row))) or "none"
            extra = ", ".join(sorted(set(row) - set(KEYS))) or "none"
            raise ValueError(f"row {index}: keys missing: {missing}; keys not expected: {extra}")
        for key in ("benchmark", "measure", "ours", "peer", "unit", "target"):
            if not isinstance(row[key], str):
                raise ValueError(f"row {index}: {key} must be a string, got {row[key]!r}")
        for key in ("value_ours", "value_peer", "ratio"):
            # bool is an int subclass, but True is no measurement.
            if isinstance(row[key], bool) or not isinstance(row[key], (int, float)):
                raise ValueError(f"row {index}: {key} must be a number, got {row[key]!r}")
        if row["met"] is not None and not isinstance(row["met"], bool):
            raise ValueError(f"row {index}: met must be true, false or null, got {row['met']!r}")
    return data
