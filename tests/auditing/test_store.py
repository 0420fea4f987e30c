"""The on-disk store of a long audit: resuming recomputes only the missing chunks."""

import json

import pandas as pd
import pytest
from audit_helpers import drug_dataset, spread

from dc_invariant.auditing import audit


@pytest.fixture(scope="module")
def dataset(dc):
    return drug_dataset(dc)


def test_resume_recomputes_only_missing_chunks_and_matches(dataset, tmp_path):
    calls = []

    def counting(r, x):
        calls.append(1)
        return spread(r, x)

    many = list(dataset.X) * 20
    uninterrupted = audit(spread, many, chunk_size=64, seed=2)
    store = tmp_path / "store"
    audit(counting, many, chunk_size=64, seed=2, store=str(store))
    chunks = sorted(store.glob("chunk_*.json"))
    assert len(chunks) == 4  # 200 molecules in chunks of 64
    for chunk in chunks[2:]:  # as if the run had stopped after two chunks
        chunk.unlink()
    calls.clear()
    resumed = audit(counting, many, chunk_size=64, seed=2, store=str(store), resume=True)
    # Molecules 128-199 only: each once, plus 12 copies and the distorted control.
    assert len(calls) == 72 * (1 + 4 * 3 + 1)
    pd.testing.assert_frame_equal(resumed.molecules, uninterrupted.molecules)
    calls.clear()  # the closure's state is part of the target's digest
    with pytest.raises(ValueError, match=r"settings differ in \['seed'\]"):
        audit(counting, many, chunk_size=64, seed=3, store=str(store), resume=True)
    with pytest.raises(ValueError, match="already holds audit results"):
        audit(counting, many, chunk_size=64, seed=2, store=str(store))


def test_resume_refuses_chunks_computed_with_other_library_versions(dataset, tmp_path):
    store = tmp_path / "store"
    audit(spread, list(dataset.X)[:3], n_samples=1, store=str(store))
    settings = json.loads((store / "settings.json").read_text())
    settings["versions"]["torch"] = "1.0"
    (store / "settings.json").write_text(json.dumps(settings))
    with pytest.raises(ValueError, match=r"other library versions \(torch 1\.0 -> "):
        audit(spread, list(dataset.X)[:3], n_samples=1, store=str(store), resume=True)
