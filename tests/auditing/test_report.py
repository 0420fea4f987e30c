"""The audit's report: verdicts, text, exports and the JSON round trip."""

import json

import numpy as np
import pandas as pd
import pytest
from audit_helpers import drug_dataset, raw_x, spread

from dc_invariant.auditing import audit
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
    assert saved["settings"]["seed"] == 5 and len(saved["molecules"]) == len(a.molecules)
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
