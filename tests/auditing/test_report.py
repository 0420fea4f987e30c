"""The audit's report: verdicts, text, exports and the JSON round trip."""

import json

import numpy as np
import pandas as pd
import pytest
from audit_helpers import drug_dataset, raw_x, spread

from dc_invariant.auditing import AuditReport, audit
from dc_invariant.auditing.report import CONTROL
from dc_invariant.models import RotationInvariantModel


@pytest.fixture(scope="module")
def dataset(dc):
    return drug_dataset(dc)


def test_report_explains_mirror_blindness_and_formats(dataset):
    report = audit(RotationInvariantModel(dtype="float64"), dataset, n_samples=2)
    text = report.format()
    assert "enantiomers" in text and "reflection" in text and "seed 0" in text
    assert set(report.summary["verdict"]) <= {"holds", "holds within numerical noise"}
    worst = report.worst("rotation", k=3)
    assert len(worst) == 3 and worst["rel_deviation"].is_monotonic_decreasing


def test_same_seed_same_report_and_exports(dataset, tmp_path):
    a = audit(spread, dataset, seed=5)
    b = audit(spread, dataset, seed=5)
    pd.testing.assert_frame_equal(a.molecules, b.molecules)
    a.to_json(str(tmp_path / "audit.json"))
    a.to_csv(str(tmp_path / "csv"))
    saved = json.loads((tmp_path / "audit.json").read_text())
    # The per-molecule table is stored as columns, one list each.
    assert list(saved["molecules"]) == list(a.molecules.columns)
    assert saved["settings"]["seed"] == 5 and len(saved["molecules"]["id"]) == len(a.molecules)
    assert "numpy" in saved["settings"]["versions"]
    back = pd.read_csv(tmp_path / "csv" / "molecules.csv")
    np.testing.assert_allclose(back["rel_deviation"], a.molecules["rel_deviation"])


def test_json_round_trip_gives_the_same_report(dataset, tmp_path):
    from dc_invariant.auditing import AuditReport

    report = audit(raw_x, dataset, seed=5, n_samples=2)
    report.to_json(tmp_path / "audit.json")
    again = AuditReport.from_json(tmp_path / "audit.json")
    pd.testing.assert_frame_equal(again.molecules, report.molecules, check_dtype=False)
    pd.testing.assert_frame_equal(again.summary, report.summary, check_dtype=False)
    assert again.settings == json.loads(json.dumps(report.settings, default=float))
    assert again.format() == report.format() and again.notes() == report.notes()
    assert not list(tmp_path.glob("*.tmp"))  # written whole, then renamed
    # Reports written before the columns layout (a record per row) still load.
    saved = json.loads((tmp_path / "audit.json").read_text())
    saved["molecules"] = report.molecules.to_dict(orient="records")
    (tmp_path / "records.json").write_text(json.dumps(saved))
    older = AuditReport.from_json(tmp_path / "records.json")
    pd.testing.assert_frame_equal(older.molecules, again.molecules)


SETTINGS = {
    "target": "hand-made",
    "output": "invariant",
    "symmetries": ["permutation", "translation", "rotation", "reflection"],
    "n_samples": 2,
    "seed": 3,
    "rtol": 1e-6,
    "atol": 1e-9,
    "dtype": "float64",
    "control_distortion": 0.1,
}


def row(id_, symmetry, abs_dev, passed, checked=True, n_atoms=3):
    rel = abs_dev / 2.0 if checked else np.nan
    return {
        "id": id_,
        "smiles": id_,
        "n_atoms": n_atoms,
        "symmetry": symmetry,
        "abs_deviation": abs_dev if checked else np.nan,
        "rel_deviation": rel,
        "passed": passed,
        "checked": checked,
    }


def hand_made(control_passed: bool = False, skipped=(), clashes=()) -> AuditReport:
    """Two molecules; permutation n/a for one, translation exact, rotation noisy,
    reflection broken by one molecule."""
    rows = [
        row("CCO", "permutation", 0.0, True),
        row("[Na+]", "permutation", 0.0, True, checked=False, n_atoms=1),
        row("CCO", "translation", 0.0, True),
        row("[Na+]", "translation", 0.0, True, n_atoms=1),
        row("CCO", "rotation", 2e-12, True),
        row("[Na+]", "rotation", 4e-12, True, n_atoms=1),
        row("CCO", "reflection", 1e-12, True),
        row("[Na+]", "reflection", 0.5, False, n_atoms=1),
        row("CCO", CONTROL, 0.0 if control_passed else 0.3, control_passed),
        row("[Na+]", CONTROL, 0.0, True, checked=False, n_atoms=1),
    ]
    return AuditReport.from_rows(rows, list(skipped), dict(SETTINGS), 2 + len(skipped), clashes)


def test_summary_counts_and_verdicts_from_hand_made_rows():
    report = hand_made()
    summary = report.summary.set_index("symmetry")
    assert summary["verdict"].to_dict() == {
        "permutation": "holds",
        "translation": "holds",
        "rotation": "holds within numerical noise",
        "reflection": "broken",
    }
    permutation = summary.loc["permutation"]
    counts = permutation[["molecules", "passed", "not_applicable"]].tolist()
    assert counts == [1, 1, 1]
    assert summary.loc["reflection", ["molecules", "passed"]].tolist() == [2, 1]
    assert summary.loc["rotation", "max_rel_deviation"] == pytest.approx(2e-12)
    assert [report.holds(s) for s in SETTINGS["symmetries"]] == [True, True, True, False]
    assert report.geometry_blind is False and len(report.control) == 1
    with pytest.raises(ValueError, match="'identity' was not audited"):
        report.checked("identity")
    text = report.format()
    assert "reads the geometry" in text and "seed 3" in text and "rtol 1e-06" in text
    assert "permutation is n/a for 1 single-atom" in text
    assert "enantiomers" not in text  # reflection is broken here


def test_lost_outputs_read_inf_in_every_export(tmp_path):
    # Deviation inf is a copy that lost its output: the worst deviation there is, which
    # must not print as "-" (nothing measured) nor become a NaN percentile.
    rows = [row(f"m{k}", "rotation", np.inf, False) for k in range(3)]
    rows += [row(f"m{k}", CONTROL, 0.3, False) for k in range(3)]
    report = AuditReport.from_rows(rows, [], {**SETTINGS, "symmetries": ["rotation"]}, 3)
    summary = report.summary.iloc[0]
    assert summary["verdict"] == "broken"
    assert summary["max_rel_deviation"] == summary["p99_rel_deviation"] == np.inf
    assert "inf         inf  broken" in report.format()
    report.to_html(str(tmp_path / "page.html"))
    page = (tmp_path / "page.html").read_text()
    assert "<td>inf</td><td>inf</td>" in page and "3 infinite (output lost)" in page
    # Standard JSON (no NaN or Infinity tokens, which JavaScript refuses), read back exactly.
    report.to_json(str(tmp_path / "audit.json"))
    text = (tmp_path / "audit.json").read_text()
    assert "Infinity" not in text and "NaN" not in text

    def strict(token):
        raise ValueError(f"not standard JSON: {token}")

    json.loads(text, parse_constant=strict)
    back = AuditReport.from_json(str(tmp_path / "audit.json"))
    pd.testing.assert_frame_equal(back.molecules, report.molecules)
    pd.testing.assert_frame_equal(back.summary, report.summary)


def test_unchecked_symmetry_is_not_checked_and_blind_control_is_a_note():
    rows = [row("[Na+]", "permutation", 0.0, True, checked=False, n_atoms=1)]
    settings = {**SETTINGS, "symmetries": ["permutation"]}
    alone = AuditReport.from_rows(rows, [], settings, 1)
    assert alone.summary["verdict"].tolist() == ["not checked"]
    assert not alone.checked("permutation") and not alone.holds("permutation")
    assert alone.geometry_blind is None
    assert "no molecule with two atoms to distort" in alone.format()
    blind = hand_made(control_passed=True)
    assert blind.geometry_blind is True
    assert any("ignores the coordinates" in note for note in blind.notes())


def test_skips_and_clashes_are_listed_and_survive_the_json_round_trip(tmp_path):
    skipped = [(f"bad{k}", "RDKit could not parse the SMILES") for k in range(7)]
    clashes = [("CCO", "atoms 0 and 1 are 0.1 Å apart")]
    report = hand_made(skipped=skipped, clashes=clashes)
    text = report.format()
    assert "9 molecules in, 2 audited, 7 skipped" in text
    assert "skipped bad4: RDKit could not parse" in text and "bad5" not in text
    assert "... and 2 more skipped" in text
    assert "overlapping atoms in the given geometry of CCO" in text
    report.to_json(str(tmp_path / "report.json"))
    again = AuditReport.from_json(str(tmp_path / "report.json"))
    pd.testing.assert_frame_equal(again.summary, report.summary, check_dtype=False)
    pd.testing.assert_frame_equal(again.skipped, report.skipped)
    pd.testing.assert_frame_equal(again.clashes, report.clashes)
    assert again.n_inputs == 9 and again.format() == text
