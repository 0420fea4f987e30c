"""HTML page of an audit report: summary table, histograms of deviations, worst molecules."""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

import numpy as np

from dc_invariant.auditing.words import OUTPUT_WORDS, deviation

__all__ = ["render"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }
th { background: #f0f0f0; } td.text { text-align: left; font-family: monospace; }
.broken { color: #b00020; font-weight: bold; } .holds { color: #1b5e20; }
.unchecked { color: #666; font-style: italic; }
td.wrap { max-width: 24em; overflow-wrap: anywhere; word-break: break-all; }
td.drawing { min-width: 160px; }
.note { background: #fff8e1; padding: 0.5em 1em; border-left: 4px solid #f9a825; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; }
img { max-width: 100%; }
"""


def _png(figure_or_image: object) -> str:
    buffer = io.BytesIO()
    if hasattr(figure_or_image, "savefig"):
        figure_or_image.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    else:
        figure_or_image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _histogram(report: Any) -> str:
    # A bare Figure draws with Agg without touching pyplot's global backend, which a
    # notebook user's session depends on.
    from matplotlib.figure import Figure

    symmetries = report.settings["symmetries"]
    figure = Figure(figsize=(3.2 * len(symmetries), 2.6))
    axes = np.atleast_1d(figure.subplots(1, len(symmetries)))
    for ax, symmetry in zip(axes, symmetries):
        values = report.molecules.loc[report.molecules["symmetry"] == symmetry, "rel_deviation"]
        values = values.to_numpy(dtype=float)
        # Exact zeros are drawn at the float64 floor so that they stay visible on a log axis;
        # n/a rows (NaN) are left out.
        logs = np.log10(np.maximum(values[np.isfinite(values)], 1e-17))
        ax.hist(logs, bins=30, color="#3f51b5")
        ax.axvline(np.log10(report.settings["rtol"]), color="#b00020", linestyle="--")
        ax.set_title(symmetry)
        ax.set_xlabel("log10 relative deviation")
    axes[0].set_ylabel("molecules")
    figure.tight_layout()
    return _png(figure)


def _depiction(smiles: object) -> str:
    if not isinstance(smiles, str) or not smiles:
        return ""
    from rdkit import Chem, rdBase
    from rdkit.Chem import Draw

    blocker = rdBase.BlockLogs()
    try:
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            return ""
        image = _png(Draw.MolToImage(mol, size=(160, 120)))
        return f'<img alt="" src="data:image/png;base64,{image}">'
    finally:
        del blocker


def render(report: Any, worst: int = 5) -> str:
    """The whole page as a string."""
    e = html.escape
    output = report.settings.get("output", "invariant")
    rows = []
    for _, r in report.summary.iterrows():
        css = {"broken": "broken", "not checked": "unchecked"}.get(r["verdict"], "holds")
        rows.append(
            f"<tr><td class=text>{e(r['symmetry'])}</td><td>{r['molecules']}</td>"
            f"<td>{r['passed']}</td><td>{r['not_applicable']}</td>"
            f"<td>{deviation(r['max_rel_deviation'])}</td>"
            f"<td>{deviation(r['p99_rel_deviation'])}</td>"
            f"<td class='text {css}'>{e(r['verdict'])}</td></tr>"
        )
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Symmetry audit: {e(report.settings['target'])}</title><style>{_STYLE}</style>",
        "</head><body>",
        f"<h1>Symmetry audit of {e(report.settings['target'])}</h1>",
        f"<p>{report.n_inputs} molecules in, {report.n_inputs - len(report.skipped)} audited, "
        f"{len(report.skipped)} skipped. A molecule passes when |y(gx) - y(x)| &le; "
        f"max(atol, rtol&middot;|y(x)|) for every sample, rtol {report.settings['rtol']:g}, "
        f"atol {report.settings['atol']:g}. Audited: {e(OUTPUT_WORDS.get(output, output))}.</p>",
        "<table><tr><th>symmetry</th><th>checked</th><th>passed</th><th>n/a</th>"
        "<th>max rel dev</th><th>p99 rel dev</th><th>verdict</th></tr>",
        *rows,
        "</table>",
        f"<p>{e(report.control_line())}</p>",
        *(f"<p class=note>{e(n)}</p>" for n in report.notes()),
        "<h2>Deviations</h2><p>Dashed line: rtol.</p>",
        f'<img alt="log10 relative deviations" src="data:image/png;base64,{_histogram(report)}">',
    ]
    for symmetry in report.settings["symmetries"]:
        table = report.worst(symmetry, worst)
        if table.empty:
            continue
        parts.append(f"<h2>Largest deviations: {e(symmetry)}</h2><table>")
        parts.append("<tr><th>id</th><th>SMILES</th><th>atoms</th><th>rel dev</th><th></th></tr>")
        for _, r in table.iterrows():
            parts.append(
                f"<tr><td class='text wrap'>{e(str(r['id']))}</td>"
                f"<td class='text wrap'>{e(str(r['smiles']))}</td>"
                f"<td>{r['n_atoms']}</td><td>{r['rel_deviation']:.2e}</td>"
                f"<td class=drawing>{_depiction(r['smiles'])}</td></tr>"
            )
        parts.append("</table>")
    if not report.skipped.empty:
        parts.append("<h2>Skipped</h2><table><tr><th>id</th><th>reason</th></tr>")
        parts.extend(
            f"<tr><td class=text>{e(str(r['id']))}</td>"
            f"<td class=text>{e(str(r['reason']))}</td></tr>"
            for _, r in report.skipped.iterrows()
        )
        parts.append("</table>")
    if not report.clashes.empty:
        parts.append(
            "<h2>Overlapping atoms in the given geometry</h2>"
            "<table><tr><th>id</th><th>closest pair</th></tr>"
        )
        parts.extend(
            f"<tr><td class=text>{e(str(r['id']))}</td>"
            f"<td class=text>{e(str(r['clash']))}</td></tr>"
            for _, r in report.clashes.iterrows()
        )
        parts.append("</table>")
    parts.append(f"<h2>Settings</h2><pre>{e(json.dumps(report.settings, indent=2))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
