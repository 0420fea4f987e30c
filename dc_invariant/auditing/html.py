"""HTML page of an audit report: summary table, histograms of deviations, worst molecules.

The page is one self-contained file (images embedded as PNG data) that reads on a phone as
well as on a desktop: a viewport declaration, tables that scroll sideways inside their own
box instead of widening the page, one small histogram per symmetry laid out in a wrapping
row, and molecule drawings at one scale (the same bond length in pixels for every molecule).
"""

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
body { font-family: system-ui, sans-serif; margin: 1.5em auto; padding: 0 1em;
       max-width: 70em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; vertical-align: middle; }
th { background: #f0f0f0; }
th.text, td.text, td.word { text-align: left; }
td.text { font-family: monospace; }
td.holds, td.broken, td.unchecked { font-family: inherit; }
.broken { color: #b00020; font-weight: bold; } .holds { color: #1b5e20; }
.unchecked { color: #666; font-style: italic; }
td.wrap { max-width: 24em; overflow-wrap: anywhere; word-break: break-all; }
td.drawing { text-align: center; }
td.drawing img { display: block; margin: auto; }
.note { background: #fff8e1; padding: 0.5em 1em; border-left: 4px solid #f9a825; }
.histograms { display: flex; flex-wrap: wrap; gap: 0.5em 1em; }
.histograms figure { margin: 0; flex: 1 1 240px; max-width: 320px; }
.histograms img { width: 100%; height: auto; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; }
img { max-width: 100%; }
table.summary th, table.summary td { white-space: nowrap; }
@media (max-width: 600px) {
  h1 { font-size: 1.25em; } body { padding: 0 0.6em; }
  th, td { padding: 0.25em 0.4em; }
}
"""

#: Pixels per bond in the molecule drawings: one scale for every molecule on the page.
BOND_PIXELS = 22
#: Largest drawing (pixels); a larger molecule is drawn smaller to fit.
MAX_DRAWING = (360, 240)


def _png(figure_or_image: object) -> str:
    buffer = io.BytesIO()
    if hasattr(figure_or_image, "savefig"):
        figure_or_image.savefig(buffer, format="png", dpi=100)
    else:
        figure_or_image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _histogram(values: np.ndarray, symmetry: str, rtol: float) -> str:
    """One symmetry's relative deviations on a log axis; exact zeros said in words.

    A log axis has no place for zero, and a bar drawn at an arbitrary floor (1e-17) looks
    like an empty plot: exact zeros are counted in the title instead.
    """
    # A bare Figure draws with Agg without touching pyplot's global backend, which a
    # notebook user's session depends on.
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    measured = values[np.isfinite(values)]
    zeros = int((measured == 0).sum())
    lost = int(np.isposinf(values).sum())
    positive = measured[measured > 0]
    figure = Figure(figsize=(3.2, 2.4), layout="constrained")
    ax = figure.subplots()
    if len(positive) == 0:
        if lost:
            text = f"{lost} infinite\n(output lost)" + (f",\n{zeros} exactly zero" if zeros else "")
        elif zeros == 1:
            text = "its one deviation\nis exactly zero"
        else:
            text = f"all {zeros} deviations\nare exactly zero" if zeros else "nothing measured"
        ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(symmetry)
        return _png(figure)
    logs = np.log10(positive)
    ax.hist(logs, bins=min(30, max(5, len(logs) // 3)), color="#3f51b5")
    ax.axvline(np.log10(rtol), color="#b00020", linestyle="--")
    # Whole powers of ten, at most five of them, so the labels never run into each other.
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"$10^{{{round(v)}}}$"))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax.set_xlabel("relative deviation")
    ax.set_ylabel("molecules")
    notes = [f"{zeros} exactly zero"] * bool(zeros) + [f"{lost} infinite"] * bool(lost)
    ax.set_title(symmetry + (f" ({', '.join(notes)})" if notes else ""), fontsize=10)
    return _png(figure)


def _histograms(report: Any) -> str:
    rtol = report.settings["rtol"]
    parts = []
    for symmetry in report.settings["symmetries"]:
        rows = report.molecules.loc[report.molecules["symmetry"] == symmetry, "rel_deviation"]
        values = rows.to_numpy(dtype=float)
        # n/a rows (NaN) are left out; lost outputs (inf) are counted apart.
        measured = values[np.isfinite(values)]
        lost = int(np.isposinf(values).sum())
        alt = (
            f"{symmetry}: every one of {len(measured)} deviations is exactly zero"
            if len(measured) and not measured.any()
            else f"{symmetry}: histogram of {len(measured)} relative deviations, log scale"
        ) + (f"; {lost} infinite (output lost)" if lost else "")
        image = _histogram(values, symmetry, rtol)
        parts.append(
            f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{image}"></figure>'
        )
    return "<div class=histograms>" + "".join(parts) + "</div>"


def _depiction(smiles: object, name: str) -> str:
    """A 2D drawing at the page's one scale, or '' where the SMILES does not parse."""
    if not isinstance(smiles, str) or not smiles:
        return ""
    from rdkit import Chem, rdBase
    from rdkit.Chem.Draw import rdMolDraw2D

    blocker = rdBase.BlockLogs()
    try:
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            return ""
        mol = rdMolDraw2D.PrepareMolForDrawing(mol)
        # A canvas of -1 x -1 grows to fit the molecule at the fixed bond length.
        drawer = rdMolDraw2D.MolDraw2DCairo(-1, -1)
        options = drawer.drawOptions()
        options.fixedBondLength = BOND_PIXELS
        options.padding = 0.1
        options.minFontSize = 12  # a lone ion's label stays readable
        drawer.DrawMolecule(mol)
        drawer.FinishDrawing()
        data = drawer.GetDrawingText()
        width, height = _png_size(data)
        scale = min(1.0, MAX_DRAWING[0] / width, MAX_DRAWING[1] / height)
        alt = html.escape(f"2D drawing of {name} ({smiles})")
        image = base64.b64encode(data).decode("ascii")
        return (
            f'<img alt="{alt}" width="{round(width * scale)}" height="{round(height * scale)}" '
            f'src="data:image/png;base64,{image}">'
        )
    finally:
        del blocker


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, from its header."""
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _table(header: list[tuple[str, bool]], rows: list[str], css: str = "") -> str:
    """A table in a sideways-scrolling box; header cells of text columns align left."""
    cells = "".join(f"<th class=text>{h}</th>" if text else f"<th>{h}</th>" for h, text in header)
    table = f"<table class={css}>" if css else "<table>"
    return f"<div class=scroll>{table}<tr>{cells}</tr>" + "".join(rows) + "</table></div>"


def render(report: Any, worst: int = 5) -> str:
    """The whole page as a string."""
    e = html.escape
    output = report.settings.get("output", "invariant")
    rows = []
    for _, r in report.summary.iterrows():
        css = {"broken": "broken", "not checked": "unchecked"}.get(r["verdict"], "holds")
        rows.append(
            # The verdict comes second: on a narrow screen it stays in view.
            f"<tr><td class=word>{e(r['symmetry'])}</td>"
            f"<td class='text {css}'>{e(r['verdict'])}</td><td>{r['molecules']}</td>"
            f"<td>{r['passed']}</td><td>{r['not_applicable']}</td>"
            f"<td>{deviation(r['max_rel_deviation'])}</td>"
            f"<td>{deviation(r['p99_rel_deviation'])}</td></tr>"
        )
    summary_header = [
        ("symmetry", True),
        ("verdict", True),
        ("checked", False),
        ("passed", False),
        ("n/a", False),
        ("max rel dev", False),
        ("p99 rel dev", False),
    ]
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Symmetry audit: {e(report.settings['target'])}</title><style>{_STYLE}</style>",
        "</head><body>",
        f"<h1>Symmetry audit of {e(report.settings['target'])}</h1>",
        f"<p>{report.n_inputs} molecules in, {report.n_inputs - len(report.skipped)} audited, "
        f"{len(report.skipped)} skipped. A molecule passes when |y(gx) - y(x)| &le; "
        f"max(atol, rtol&middot;|y(x)|) for every sample, rtol {report.settings['rtol']:g}, "
        f"atol {report.settings['atol']:g}. Audited: {e(OUTPUT_WORDS.get(output, output))}.</p>",
        _table(summary_header, rows, css="summary"),
        f"<p>{e(report.control_line())}</p>",
        *(f"<p class=note>{e(n)}</p>" for n in report.notes()),
        "<h2>Deviations</h2><p>Relative deviation of each molecule's output, per symmetry, "
        "on a log scale; dashed line: the tolerance rtol. A molecule whose output is near "
        "zero also passes when its absolute deviation is within atol, right of the line: the "
        "tables below say which passed. A log scale has no zero, so deviations that are "
        "exactly zero are counted in words.</p>",
        _histograms(report),
    ]
    listed = 0
    for symmetry in report.settings["symmetries"]:
        table = report.worst(symmetry, worst)
        # An exact zero is no deviation at all: listing it as a "largest" one misleads.
        table = table[table["rel_deviation"] > 0]
        if table.empty:
            continue
        listed += 1
        parts.append(f"<h2>Largest deviations: {e(symmetry)}</h2>")
        header = [("id", True), ("SMILES", True), ("atoms", False), ("rel dev", False),
                  ("passed", True)]  # fmt: skip
        cells = []
        for _, r in table.iterrows():
            cells.append(
                f"<tr><td class='text wrap'>{e(str(r['id']))}</td>"
                f"<td class='text wrap'>{e(str(r['smiles']))}</td>"
                f"<td>{r['n_atoms']}</td><td>{r['rel_deviation']:.2e}</td>"
                f"<td class=text>{'yes' if r['passed'] else 'no'}</td>"
                f"<td class=drawing>{_depiction(r['smiles'], str(r['id']))}</td></tr>"
            )
        parts.append(_table([*header, ("drawing", True)], cells))
    if not listed and len(report.molecules):
        parts.append(
            "<p>No molecule's output moved under any symmetry: every deviation is "
            "exactly zero, so there are no largest deviations to list.</p>"
        )
    sections = (
        ("Skipped", report.skipped, ("id", "reason"), "reason"),
        (
            "Overlapping atoms in the given geometry",
            report.clashes,
            ("id", "closest pair"),
            "clash",
        ),
    )
    for title, frame, headers, column in sections:
        if frame.empty:
            continue
        parts.append(f"<h2>{title}</h2>")
        parts.append(
            _table(
                [(header, True) for header in headers],
                [
                    f"<tr><td class=text>{e(str(r['id']))}</td>"
                    f"<td class=text>{e(str(r[column]))}</td></tr>"
                    for _, r in frame.iterrows()
                ],
            )
        )
    parts.append(f"<h2>Settings</h2><pre>{e(json.dumps(report.settings, indent=2))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
