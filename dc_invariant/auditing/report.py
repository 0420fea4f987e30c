"""Report layer of the symmetry audit: the data (tables and verdicts) and its text; the
HTML page (`html`) and the JSON / CSV files (`dc_invariant.files`) render it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pandas as pd

from dc_invariant.auditing.html import render
from dc_invariant.auditing.words import OUTPUT_WORDS, deviation
from dc_invariant.files import TableReport, columns_of, numbers_back, read_json, write_text

__all__ = ["AuditReport", "COLUMNS", "CONTROL"]

COLUMNS = [
    "id",
    "smiles",
    "n_atoms",
    "symmetry",
    "abs_deviation",
    "rel_deviation",
    "passed",
    "checked",
]

#: The ``symmetry`` of the positive control's rows in `AuditReport.molecules`: a small
#: non-rigid distortion, under which a geometry-reading target's output must move.
CONTROL = "distortion"


@dataclass
class AuditReport(TableReport):
    """What an audit found.

    Attributes
    ----------
    molecules : pandas.DataFrame
        One row per molecule and symmetry: id, smiles, n_atoms, symmetry, the largest
        absolute deviation ``|y(gx) - y(x)|`` and relative deviation (the same over
        ``max(|y(x)|, atol)``) over the samples, whether every sample passed, and whether
        the symmetry could be checked at all (``checked``: False for permutation of a
        single atom, whose deviations are NaN). Rows with symmetry `CONTROL` hold the
        positive control: the deviation under a small non-rigid distortion, ``passed``
        when the output did not move beyond the noise measured on that molecule
        (`auditing.chunk.control_moved`; NaN and not ``checked`` for a single atom).
    skipped : pandas.DataFrame
        Molecules not audited (``id``, ``reason``): not featurizable, or NaN/inf output.
    settings : dict
        Seed, tolerances, dtype, symmetries, samples and library versions: enough to rerun.
    n_inputs : int
        Molecules given; always the audited molecules plus the skipped ones.
    clashes : pandas.DataFrame
        Audited molecules whose given geometry has overlapping atoms (``id``, ``clash``):
        audited as given, but their numbers describe an implausible structure.

    Examples
    --------
    >>> import numpy as np
    >>> from dc_invariant.auditing import audit
    >>> report = audit(lambda r, x: r[:, 0].sum(), ["CCO", "c1ccccc1"], n_samples=1)
    >>> report.summary[["symmetry", "verdict"]].values.tolist()[:2]
    [['permutation', 'holds within numerical noise'], ['translation', 'broken']]
    """

    molecules: pd.DataFrame
    skipped: pd.DataFrame
    settings: dict[str, Any]
    n_inputs: int
    clashes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["id", "clash"]))
    summary: pd.DataFrame = field(init=False)

    def __post_init__(self) -> None:
        self.summary = self._summarise()

    @classmethod
    def from_rows(
        cls,
        rows: list[dict],
        skipped: list[tuple[str, str]],
        settings: dict,
        n_inputs: int,
        clashes: Sequence[tuple[str, str]] = (),
    ) -> AuditReport:
        """Build a report from per-molecule rows, ``(id, reason)`` skips and clashes."""
        molecules = pd.DataFrame(rows, columns=COLUMNS)
        skipped_frame = pd.DataFrame(skipped, columns=["id", "reason"])
        clash_frame = pd.DataFrame(list(clashes), columns=["id", "clash"])
        return cls(molecules, skipped_frame, settings, n_inputs, clash_frame)

    def _summarise(self) -> pd.DataFrame:
        out = []
        for symmetry in self.settings["symmetries"]:
            all_rows = self.molecules[self.molecules["symmetry"] == symmetry]
            rows = all_rows[all_rows["checked"].astype(bool)]
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
                    "not_applicable": len(all_rows) - len(rows),
                    "max_rel_deviation": float(deviations.max()) if len(rows) else np.nan,
                    "p99_rel_deviation": _p99(deviations) if len(rows) else np.nan,
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

    def checked(self, symmetry: str) -> bool:
        """True when at least one molecule could be checked for ``symmetry``."""
        row = self.summary[self.summary["symmetry"] == symmetry]
        if row.empty:
            raise ValueError(
                f"{symmetry!r} was not audited; audited: {self.settings['symmetries']}"
            )
        return bool(row["molecules"].iloc[0] > 0)

    @property
    def control(self) -> pd.DataFrame:
        """The positive control's rows of `molecules` for the molecules it could test."""
        rows = self.molecules[self.molecules["symmetry"] == CONTROL]
        return rows[rows["checked"].astype(bool)]

    @property
    def geometry_blind(self) -> Optional[bool]:
        """True when no output moved under the control's small non-rigid distortion.

        Such a target ignores the coordinates it is given (fingerprints, graph features, a
        featurizer that re-embeds the molecule), so translation, rotation and reflection
        hold trivially. None when no molecule could be distorted (none with two atoms).
        """
        control = self.control
        return bool(control["passed"].all()) if len(control) else None

    def worst(self, symmetry: str, k: int = 5) -> pd.DataFrame:
        """The ``k`` molecules with the largest relative deviation under ``symmetry``."""
        rows = self.molecules[self.molecules["symmetry"] == symmetry]
        return rows.nlargest(k, "rel_deviation")

    def notes(self) -> list[str]:
        """Plain-language remarks that are information, not failures."""
        out = []
        if self.n_inputs and len(self.skipped) == self.n_inputs:
            out.append(f"no molecule could be checked: all {self.n_inputs} were skipped")
        if self.geometry_blind:
            out.append(
                "this target ignores the coordinates you give it: translation / rotation / "
                "reflection hold trivially (a small distortion of every molecule changed "
                "no output)"
            )
        n_a = self.summary.loc[self.summary["symmetry"] == "permutation", "not_applicable"]
        if len(n_a) and n_a.iloc[0]:
            out.append(
                f"permutation is n/a for {n_a.iloc[0]} single-atom molecule(s): no renumbering "
                "can change them"
            )
        if (
            self.geometry_blind is False
            and self.settings.get("output", "invariant") == "invariant"
            and "reflection" in self.settings["symmetries"]
            and (self.holds("reflection"))
        ):
            out.append(
                "invariant to reflections: mirror images (enantiomers) get identical "
                "predictions, so this target cannot tell them apart"
            )
        return out

    def control_line(self) -> str:
        """One line on the positive control: did a small distortion move the output?"""
        control = self.control
        if not len(control):
            return "control: no molecule with two atoms to distort"
        moved = int((~control["passed"].astype(bool)).sum())
        verdict = "geometry-blind" if moved == 0 else "reads the geometry"
        size = self.settings.get("control_distortion", float("nan"))
        return (
            f"control: moving every atom at random ({size:g} Å per coordinate) moved the "
            f"output beyond its measured noise for {moved} of {len(control)} molecules (max "
            f"rel dev {control['rel_deviation'].max():.2e}): {verdict}"
        )

    def format(self) -> str:
        """The summary as a text table, with the settings and notes."""
        s = self.settings
        lines = [
            f"target: {s['target']}; {OUTPUT_WORDS.get(s.get('output', 'invariant'), '')}",
            f"{'symmetry':<12} {'checked':>7} {'passed':>6} {'n/a':>4} {'max rel dev':>11} "
            f"{'p99 rel dev':>11}  verdict",
        ]
        for _, r in self.summary.iterrows():
            lines.append(
                f"{r['symmetry']:<12} {r['molecules']:>7} {r['passed']:>6} "
                f"{r['not_applicable']:>4} {deviation(r['max_rel_deviation']):>11} "
                f"{deviation(r['p99_rel_deviation']):>11}  {r['verdict']}"
            )
        lines.append(self.control_line())
        lines.append(
            f"{self.n_inputs} molecules in, {self.n_inputs - len(self.skipped)} audited, "
            f"{len(self.skipped)} skipped; {s['n_samples']} samples each, seed {s['seed']}, "
            f"rtol {s['rtol']:g}, atol {s['atol']:g} ({s['dtype']})"
        )
        for _, row in self.skipped.head(5).iterrows():
            lines.append(f"skipped {row['id']}: {row['reason']}")
        if len(self.skipped) > 5:
            lines.append(
                f"... and {len(self.skipped) - 5} more skipped (all: AuditReport.skipped, "
                "skipped.csv of to_csv / --out)"
            )
        for _, row in self.clashes.head(5).iterrows():
            lines.append(f"overlapping atoms in the given geometry of {row['id']}: {row['clash']}")
        if len(self.clashes) > 5:
            lines.append(f"... and {len(self.clashes) - 5} more with overlapping atoms (.clashes)")
        lines.extend(f"note: {n}" for n in self.notes())
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        """Settings, summary, per-molecule rows, skips, clashes and notes (`to_json`)."""
        return {
            "settings": self.settings,
            "n_inputs": self.n_inputs,
            "summary": self.summary.to_dict(orient="records"),
            "molecules": columns_of(self.molecules),
            "skipped": self.skipped.to_dict(orient="records"),
            "clashes": self.clashes.to_dict(orient="records"),
            "geometry_blind": self.geometry_blind,
            "notes": self.notes(),
        }

    @classmethod
    def from_json(cls, path: str) -> AuditReport:
        """Read a report written by `to_json`."""
        data = read_json(path)
        molecules = pd.DataFrame(data["molecules"], columns=COLUMNS)
        return cls(
            numbers_back(molecules, ["abs_deviation", "rel_deviation"]),
            pd.DataFrame(data["skipped"], columns=["id", "reason"]),
            data["settings"],
            data["n_inputs"],
            pd.DataFrame(data["clashes"], columns=["id", "clash"]),
        )

    def tables(self) -> dict[str, pd.DataFrame]:
        """``molecules``, ``summary`` and ``skipped`` (`to_csv`)."""
        return {"molecules": self.molecules, "summary": self.summary, "skipped": self.skipped}

    def to_html(self, path: str, worst: int = 5) -> None:
        """Write a self-contained HTML page: summary, deviation histograms, worst molecules.

        Plots and 2D depictions are embedded as PNG data, so the file can be mailed or
        archived on its own.
        """
        write_text(path, render(self, worst))


def _p99(deviations: np.ndarray) -> float:
    """The 99th percentile, infinite when it falls among infinite deviations (NumPy's
    interpolation between two infinities gives NaN, which reads as "nothing measured")."""
    with np.errstate(invalid="ignore"):
        value = float(np.percentile(deviations, 99))
    return np.inf if np.isnan(value) and np.isinf(deviations).any() else value
