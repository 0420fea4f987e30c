"""The audit's HTML page: self-contained, escaped, honest about what was not checked."""

import pandas as pd
from audit_helpers import raw_x

from dc_invariant.auditing import audit


def test_html_report_is_self_contained_and_escaped(tmp_path):
    smiles = ["CCO", "c1ccccc1O", "C[C@@H](C(=O)O)N"]
    report = audit(raw_x, smiles, n_samples=2)
    report.skipped = pd.DataFrame(
        [("<script>alert(1)</script>", "made up")], columns=["id", "reason"]
    )
    path = tmp_path / "report.html"
    report.to_html(str(path))
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("data:image/png;base64,") >= 1 + 3  # histograms + depictions
    assert "broken" in page and "c1ccccc1O" in page
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_html_page_marks_unchecked_blind_and_long_smiles(tmp_path):
    long_chain = "C" * 60 + "(=O)O"

    def composition(r, x):
        return x.sum(axis=0)

    report = audit(composition, ["[Fe+2]", "[Na+]", long_chain], n_samples=1)
    path = tmp_path / "report.html"
    report.to_html(str(path))
    page = path.read_text()
    assert "ignores the coordinates you give it" in page
    # Exact zeros are not listed as largest deviations; a geometry-reading target lists it.
    assert "no largest deviations to list" in page
    audit(lambda r, x: r[:1, 0], [long_chain], n_samples=1).to_html(str(path))
    page = path.read_text()
    assert f"<td class='text wrap'>{long_chain}</td>" in page  # wraps, not squeezing drawings
    # Single atoms only: permutation checked nothing, which is not shown as a success.
    atoms = audit(composition, ["[Fe+2]", "[Na+]"], symmetries=("permutation",), n_samples=1)
    atoms.to_html(str(path))
    page = path.read_text()
    assert "<td class='text unchecked'>not checked</td>" in page
    assert "class='text holds'>not checked" not in page


def test_html_tables_say_which_listed_molecules_passed(tmp_path):
    # An output near zero passes by atol with a relative deviation right of the rtol line;
    # without a pass mark the page read as broken while the verdict said it holds.
    def tiny(r, x):
        return 1e-7 * float(r[0, 0] - r.mean(axis=0)[0])  # reads orientation, at ~1e-7

    report = audit(tiny, ["CCO", "c1ccccc1O"], symmetries=["rotation"], rtol=1e-4, atol=1e-5)
    assert report.holds("rotation") and (report.molecules["rel_deviation"] > 1e-4).any()
    path = tmp_path / "report.html"
    report.to_html(str(path))
    page = path.read_text()
    assert "<th>passed</th>" in page or ">passed<" in page
    assert "<td class=text>yes</td>" in page and "<td class=text>no</td>" not in page
