"""Run every benchmark and write one Markdown table of ratios against the peers of that run.

Each benchmark (``featurize``, ``qm9_accuracy``, ``inference``, ``audit``, ``schnet``,
``scaling``) runs as its own process, ``python benchmarks/<name>.py [--quick] --json <file>``,
so that one benchmark's imports, threads and memory never touch another's timings. Its full
output goes to ``<out>/<name>.log`` (``<out>/quick/<name>.log`` with ``--quick``); the
result rows it writes (see ``benchmarks/_rows.py``) are collected into ``summary.md`` beside
the logs, under a line naming the machine. A ratio above 1 means ours is better than the
peer measured in the same run. With ``--only``, the rows of the other benchmarks in an
existing ``summary.md`` (which the docs' Performance page shows) stay, each under the line
of the run that measured it.

A benchmark that is missing, exits with an error or writes no valid rows gets a row saying
so; the others still run, and the exit status is then 1.

Usage::

    python benchmarks/run_all.py --quick                 # a few minutes
    python benchmarks/run_all.py                         # ~20 min: evaluates the saved SchNet
    python benchmarks/run_all.py --retrain               # well over an hour: SchNet trains 60 min
    python benchmarks/run_all.py --quick --only featurize,audit --out /tmp/bench
    python benchmarks/run_all.py --schnetpack-python /tmp/snp_venv241/bin/python
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from _measure import cpu_model, usable_cpus
from _rows import check_rows

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCHMARKS = ("featurize", "qm9_accuracy", "inference", "audit", "schnet", "scaling")
COLUMNS = (
    "benchmark",
    "measure",
    "ours",
    "peer",
    "ours value",
    "peer value",
    "ratio",
    "target",
    "met",
)


@dataclass
class Outcome:
    """What one benchmark run gave: its result rows, or why there are none."""

    name: str
    seconds: float
    log: Optional[Path]
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: Optional[str] = None


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="each benchmark's --quick mode (a few minutes)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "results",
        help="folder for the logs and summary.md; quick runs go to its quick/ subfolder "
        "(default benchmarks/results)",
    )
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="train QM9 SchNet for its full hour; by default a full run evaluates the one "
        "saved in benchmarks/results/qm9_schnet by an earlier full run",
    )
    parser.add_argument(
        "--only",
        metavar="NAME[,NAME]",
        help=f"run only these benchmarks, of: {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--schnetpack-python",
        metavar="PATH",
        type=Path,
        help="Python of an environment with schnetpack==2.1.1, for schnet.py's training peer "
        "(see benchmarks/schnet.py); without it that peer is not run",
    )
    args = parser.parse_args(argv)
    if args.schnetpack_python is not None and not args.schnetpack_python.is_file():
        parser.error(f"--schnetpack-python: no such file: {args.schnetpack_python}")
    if args.only is None:
        args.names = list(BENCHMARKS)
    else:
        names = [name.strip().removesuffix(".py") for name in args.only.split(",")]
        unknown = [name for name in names if name not in BENCHMARKS]
        if unknown or not any(names):
            parser.error(
                f"--only takes benchmark names separated by commas, of {', '.join(BENCHMARKS)}; "
                f"got {args.only!r}"
            )
        args.names = list(dict.fromkeys(names))  # drops repeats, keeps the order given
    return args


def run_one(name: str, quick: bool, log: Path, extra: Sequence[str] = ()) -> Outcome:
    """Run ``benchmarks/<name>.py`` in its own process, its output to ``log``."""
    script = HERE / f"{name}.py"
    if not script.is_file():
        return Outcome(name, 0.0, None, error=f"missing: {script.relative_to(ROOT)} not found")
    # Unbuffered, so that warnings on stderr land in the log where they happened.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory() as folder:
        rows_path = Path(folder) / f"{name}.json"
        command = [sys.executable, str(script), *(["--quick"] if quick else [])]
        command += [*extra, "--json", str(rows_path)]
        start = time.perf_counter()
        with open(log, "w", encoding="utf-8") as handle:
            # The working directory is the repository root, where the benchmarks' default
            # output paths (benchmarks/results/...) point.
            code = subprocess.run(
                command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False
            ).returncode
        seconds = time.perf_counter() - start
        outcome = Outcome(name, seconds, log)
        if code != 0:
            outcome.error = (
                f"failed: killed by signal {-code}" if code < 0 else f"failed: exit code {code}"
            )
            return outcome
        try:
            with open(rows_path, encoding="utf-8") as handle:
                outcome.rows = check_rows(json.load(handle))
        except FileNotFoundError:
            outcome.error = "failed: exit code 0 but no --json rows written"
        except ValueError as err:  # json.JSONDecodeError is a ValueError too
            outcome.error = f"failed: bad --json rows ({err})"
        if outcome.error is None and not outcome.rows:
            outcome.error = "failed: exit code 0 but an empty list of rows"
    return outcome


def version(*distributions: str) -> str:
    """The installed version of the first of ``distributions`` that is installed."""
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def machine_line(args: argparse.Namespace, total_seconds: float) -> str:
    """One line naming the machine, the software and the run."""
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    command = "python benchmarks/run_all.py" + (" --quick" if args.quick else "")
    if list(args.names) != list(BENCHMARKS):
        command += f" --only {','.join(args.names)}"
    if args.schnetpack_python is not None and "schnet" in args.names:
        command += f" --schnetpack-python {args.schnetpack_python}"
    return (
        f"Measured {date} with `{command}` ({total_seconds / 60:.1f} min) on "
        f"{platform.platform()}, {cpu_model()}, {os.cpu_count()} CPUs ({usable_cpus()} usable); "
        f"Python {platform.python_version()}, torch {version('torch')}, "
        f"deepchem {version('deepchem')}, rdkit {version('rdkit', 'rdkit-pypi')}, "
        f"dc_invariant {version('dc_invariant', 'dc-invariant')}."
    )


def number(value: float) -> str:
    """A measured value to about three significant digits, with thousands separators."""
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 0.01 or size == 0:
        return f"{value:.3g}"
    return f"{value:.2e}"


def with_unit(value: float, unit: str) -> str:
    # "1.16x raw time" reads better than "1.16 x raw time".
    return f"{number(value)}{'' if unit.startswith('x') else ' '}{unit}".strip()


def ratio_text(ratio: float) -> str:
    if not math.isfinite(ratio):
        return str(ratio)
    if ratio < 10:
        return f"{ratio:.2f}x"
    return f"{ratio:.1f}x" if ratio < 100 else f"{ratio:,.0f}x"


def cell(text: str) -> str:
    # A bare | would end the cell early.
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(outcomes: Sequence[Outcome], folder: Path) -> str:
    """The summary table: one line per result row, one per benchmark that gave none."""
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(["---"] * 4 + ["---:"] * 3 + ["---"] * 2) + "|",
    ]
    for outcome in outcomes:
        if outcome.error is not None:
            where = f"; output in `{outcome.log.relative_to(folder)}`" if outcome.log else ""
            cells = [outcome.name, f"**{outcome.error}**{where}", *["-"] * 7]
            lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
            continue
        for row in outcome.rows:
            met = {True: "yes", False: "**no**", None: ""}[row["met"]]
            cells = [
                row["benchmark"],
                row["measure"],
                row["ours"],
                row["peer"],
                with_unit(row["value_ours"], row["unit"]),
                with_unit(row["value_peer"], row["unit"]),
                ratio_text(row["ratio"]),
                row["target"],
                met,
            ]
            lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    return "\n".join(lines)


LEGEND = (
    "Ratio: how many times better ours is than the peer measured in the same run "
    "(peer time / our time, our rate / peer rate, peer error / our error); above 1, ours "
    "is better. Each benchmark's full output is in its log beside this file."
)


def summary(
    outcomes: Sequence[Outcome], folder: Path, header: str, kept: Sequence[str] = ()
) -> str:
    """The summary file: ``header``, the legend, and the table (``kept`` rows of an earlier
    run first, in benchmark order with this run's)."""
    table = markdown_table(outcomes, folder).splitlines()
    order = {name: k for k, name in enumerate(BENCHMARKS)}
    rows = sorted([*kept, *table[2:]], key=lambda row: order.get(_row_benchmark(row), 99))
    return f"{header}\n\n{LEGEND}\n\n" + "\n".join([*table[:2], *rows]) + "\n"


def earlier_rows(text: str, replaced: Sequence[str]) -> tuple[list[str], list[str]]:
    """From an earlier summary: its table rows of the benchmarks not in ``replaced``, and
    the "Measured ..." lines of the runs those rows came from.

    The lines are newest first, so each benchmark's rows belong to the first line whose
    run included it (a full run, or the names after ``--only``).
    """
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    kept = [row for row in rows[1:] if _row_benchmark(row) not in replaced]  # [0]: header
    shown = {_row_benchmark(row) for row in kept}
    claimed, lines = set(replaced), []
    for line in text.splitlines():
        if line.startswith("Measured "):
            only = re.search(r"--only ([\w,]+)", line)
            names = set(only.group(1).split(",") if only else BENCHMARKS)
            if (names - claimed) & shown:
                lines.append(line)
            claimed |= names
    return lines, kept


def _row_benchmark(row: str) -> str:
    return row.strip("| ").split(" |", 1)[0]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the chosen benchmarks one after another; write and print the summary table.

    Returns
    -------
    int
        0 if every benchmark ran and wrote its rows, 1 otherwise. Targets that were not met
        do not change it: they are results, shown in the table.
    """
    args = parse_args(argv)
    folder = args.out.resolve() / ("quick" if args.quick else "")
    folder.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    start = time.perf_counter()
    for index, name in enumerate(args.names, 1):
        print(f"[{index}/{len(args.names)}] {name:<13}", end=" ", flush=True)
        extra = []
        if name == "qm9_accuracy" and not args.quick and not args.retrain:
            # The SchNet side is an hour of training; the saved model of the last full run
            # is evaluated on the same split, while the peers are trained in this run.
            extra = ["--saved", str(Path("benchmarks", "results", "qm9_schnet"))]
            # The docs' learning-curve plot carries points past the split (the Nystrom
            # solve), drawn by the run that measured them (see performance.rst); this run's
            # curve stops at 10,000 and would replace it.
            extra += ["--plot", ""]
        if name == "scaling":
            # Its plots go beside its log, so that --out (and --quick) keep every output.
            extra = ["--out", str(folder / "scaling")]
        if name == "schnet" and args.schnetpack_python is not None:
            extra = ["--schnetpack-python", str(args.schnetpack_python)]
        outcome = run_one(name, args.quick, folder / f"{name}.log", extra)
        status = "ok" if outcome.error is None else outcome.error
        log = f", log {outcome.log}" if outcome.log else ""
        print(f"{status} ({outcome.seconds:.1f} s{log})", flush=True)
        if outcome.error is not None and outcome.log is not None:
            # The end of the log usually holds the traceback; spare a trip to the file.
            tail = outcome.log.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
            print("\n".join(f"    {line}" for line in tail), file=sys.stderr, flush=True)
        outcomes.append(outcome)
    header = machine_line(args, time.perf_counter() - start)
    path = folder / "summary.md"
    kept: list[str] = []
    if list(args.names) != list(BENCHMARKS) and path.exists():
        # The Performance page is built from this file (see `earlier_rows`).
        earlier, kept = earlier_rows(path.read_text(encoding="utf-8"), args.names)
        header = "\n\n".join([header, *earlier])
    text = summary(outcomes, folder, header, kept)
    path.write_text(text, encoding="utf-8")
    print(f"\n{text}\nwritten to {path}")
    return 1 if any(outcome.error is not None for outcome in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
