"""The molecules an audit runs over, and the ones it leaves out with a reason."""

import numpy as np
from audit_helpers import spread

from dc_invariant.auditing import audit


def test_skipped_molecules_are_counted_never_lost():
    def nan_for_bromine(r, x):
        return np.nan if x[:, 8].any() else spread(r, x)

    smiles = ["CCO", "not_a_smiles", "Brc1ccc(I)cc1", "c1ccccc1"]
    report = audit(nan_for_bromine, smiles, n_samples=1)
    reasons = dict(zip(report.skipped["id"], report.skipped["reason"]))
    assert reasons == {
        "not_a_smiles": "RDKit could not parse the SMILES",
        "Brc1ccc(I)cc1": "the target returned NaN or infinity",
    }
    audited = report.molecules["id"].unique()
    assert report.n_inputs == 4 == len(audited) + len(report.skipped)
