"""Report layer of the symmetry audit: tables, verdicts, text, JSON and CSV."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = ["id", "smiles", "n_atoms", "symmetry", "abs_deviation", "rel_deviation", "passed"]


def environment() -> dict[str, str]:
    """Library versions that can change an audit's numbers."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("dc_invariant", "numpy", "torch", "deepchem", "rdkit"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


@dataclass
class AuditReport:
    """What an audit found.

    Attributes
    ----------
    molecules : pandas.DataFrame
        One row per molecule and symmetry: id, smiles, n_atoms, symmetry, the largest
        absolute deviation ``|y(gx) - y(x)|`` and relative deviation (the same over
        ``max(|y(x)|, atol)``) over the samples, and whether every sample passed.
    skipped : pandas.DataFrame
        Molecules not audited (``id``, ``reason``): not featurizable, or NaN/inf output.
    settings : dict
        Seed, tolerances, dtype, symmetries, samples and library versions: enough to rerun.
    n_inputs : int
        Molecules given; always the audited molecules plus the skipped ones.

    Examples
    --------
    >>> import numpy as np
    >>> from dc_invariant.audit import audit
    >>> report = audit(lambda r, x: r[:, 0].sum(), ["CCO", "c1ccccc1"], n_samples=1)
    >>> report.summary[["symmetry", "verdict"]].values.tolist()[:2]
    [['permutation', 'holds within numerical noise'], ['translation', 'broken']]
    """

    molecules: pd.DataFrame
    skipped: pd.DataFrame
    settings: dict[str, Any]
    n_inputs: int
    summary: pd.DataFrame = field(init=False)

    def __post_init__(self) -> None:
        self.summary = self._summarise()

    @classmethod
    def from_rows(
        cls, rows: list[dict], skipped: list[tuple[str, str]], settings: dict, n_inputs: int
    ) -> AuditReport:
        """Build a report from per-molecule rows and ``(id, reason)`` skips."""
        molecules = pd.DataFrame(rows, columns=COLUMNS)
        skipped_frame = pd.DataFrame(skipped, columns=["id", "reason"])
        return cls(molecules, skipped_frame, settings, n_inputs)

    def _summarise(self) -> pd.DataFrame:
        out = []
        for symmetry in self.settings["symmetries"]:
            rows = self.molecules[self.molecules["symmetry"] == symmetry]
            deviations = rows["rel_deviation"].to_numpy()
            passed = int(rows["passed"].sum())
            if len(rows) == 0:
                verdict = "not checked"
            elif passed < len(rows):
                verdict = "broken"
            elif float(rows["abs_deviation"].max()) == 0.0:
                verdict = "holds"
            else:
                verdict = "holds within numerical noise"
            out.append(
                {
                    "symmetry": symmetry,
                    "molecules": len(rows),
                    "passed": passed,
                    "max_rel_deviation": float(deviations.max()) if len(rows) else np.nan,
                    "p99_rel_deviation": float(np.percentile(deviations, 99))
                    if len(rows)
                    else np.nan,
                    "verdict": verdict,
                }
            )
        return pd.DataFrame(out)

    def holds(self, symmetry: str) -> bool:
        """True when every audited molecule passed every sample of ``symmetry``."""
        row = self.summary[self.summary["symmetry"] == symmetry]
        if row.empty:
            raise ValueError(
                f"{symmetry!r} was not audited; audited: {self.settings['symmetries']}"
            )
        return bool(row["verdict"].iloc[0] in ("holds", "holds within numerical noise"))

    def worst(self, symmetry: str, k: int = 5) -> pd.DataFrame:
        """The ``k`` molecules with the largest relative deviation under ``symmetry``."""
        rows = self.molecules[self.molecules["symmetry"] == symmetry]
        return rows.nlargest(k, "rel_deviation")

    def notes(self) -> list[str]:
        """Plain-language remarks that are information, not failures."""
        out = []
        if "reflection" in self.settings["symmetries"] and self.holds("reflection"):
            out.append(
                "invariant to reflections: mirror images (enantiomers) get identical "
                "predictions, so this target cannot tell them apart"
            )
        return out

    def format(self) -> str:
        """The summary as a text table, with the settings and notes."""
        lines = [
            f"{'symmetry':<12} {'checked':>7} {'passed':>6} {'max rel dev':>11} "
            f"{'p99 rel dev':>11}  verdict"
        ]
        for _, r in self.summary.iterrows():
            lines.append(
                f"{r['symmetry']:<12} {r['molecules']:>7} {r['passed']:>6} "
                f"{r['max_rel_deviation']:>11.2e} {r['p99_rel_deviation']:>11.2e}  {r['verdict']}"
            )
        s = self.settings
        lines.append(
            f"{self.n_inputs} molecules in, {self.n_inputs - len(self.skipped)} audited, "
            f"{len(self.skipped)} skipped; {s['n_samples']} samples each, seed {s['seed']}, "
            f"rtol {s['rtol']:g}, atol {s['atol']:g} ({s['dtype']})"
        )
        for _, row in self.skipped.head(5).iterrows():
            lines.append(f"skipped {row['id']}: {row['reason']}")
        if len(self.skipped) > 5:
            lines.append(f"... and {len(self.skipped) - 5} more skipped (see .skipped)")
        lines.extend(f"note: {n}" for n in self.notes())
        return "\n".join(lines)

    def to_json(self, path: str) -> None:
        """Write settings, summary, per-molecule rows and skips as one JSON file."""
        payload = {
            "settings": self.settings,
            "n_inputs": self.n_inputs,
            "summary": self.summary.to_dict(orient="records"),
            "molecules": self.molecules.to_dict(orient="records"),
            "skipped": self.skipped.to_dict(orient="records"),
            "notes": self.notes(),
        }
        with open(path, "w") as handle:
            json.dump(payload, handle, indent=2, default=float)

    def to_html(self, path: str, worst: int = 5) -> None:
        """Write a self-contained HTML page: summary, deviation histograms, worst molecules.

        Plots and 2D depictions are embedded as PNG data, so the file can be mailed or
        archived on its own.
        """
        from dc_invariant.audit.html import render

        with open(path, "w") as handle:
            handle.write(render(self, worst))

    def to_csv(self, folder: str) -> None:
        """Write ``molecules.csv``, ``summary.csv`` and ``skipped.csv`` into ``folder``."""
        os.makedirs(folder, exist_ok=True)
        self.molecules.to_csv(os.path.join(folder, "molecules.csv"), index=False)
        self.summary.to_csv(os.path.join(folder, "summary.csv"), index=False)
        self.skipped.to_csv(os.path.join(folder, "skipped.csv"), index=False)
