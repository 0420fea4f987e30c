"""Large systems: neighbour lists give the dense result, and 5,000 atoms fit in 2 GB."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dc_invariant.builtin import peptide_box
from dc_invariant.models import RotationInvariantModel, TranslationInvariantModel, tutorial


@pytest.fixture(scope="module")
def box():
    from dc_invariant import ConformerFeaturizer

    return ConformerFeaturizer().featurize([peptide_box(400, residues=4, seed=2)])[0]


@pytest.mark.parametrize("cls", [RotationInvariantModel, TranslationInvariantModel])
def test_neighbour_lists_give_the_dense_sum(box, cls, monkeypatch):
    model = cls(cutoff=5.0, dtype="float64", seed=3)
    arrays = (box.positions, box.features, box.atomic_numbers, [box.n_atoms])
    assert box.n_atoms > tutorial.DENSE_PAIR_ATOMS  # so the default takes neighbour lists
    sparse = model.predict_arrays(*arrays)
    sparse_forces = model.predict_arrays(*arrays, forces=True)
    monkeypatch.setattr(tutorial, "DENSE_PAIR_ATOMS", 10**9)  # every pair, masked instead
    dense = model.predict_arrays(*arrays)
    np.testing.assert_allclose(sparse, dense, rtol=1e-12)
    np.testing.assert_allclose(sparse_forces, model.predict_arrays(*arrays, forces=True), atol=1e-9)
    # The cutoff matters: without it every far pair adds to the sum.
    assert not np.allclose(dense, cls(dtype="float64", seed=3).predict_arrays(*arrays))


def test_cutoff_is_validated_and_saved(tmp_path):
    from dc_invariant import load_model

    with pytest.raises(ValueError, match=r"cutoff \(Å\) == -1.0, must be > 0"):
        RotationInvariantModel(cutoff=-1.0)
    RotationInvariantModel(cutoff=4.5, model_dir=str(tmp_path)).save_checkpoint()
    assert load_model(str(tmp_path)).hyperparameters["cutoff"] == 4.5


@pytest.mark.slow
def test_5000_atoms_featurize_predict_forces_and_audit_within_2_gb():
    # A fresh process, so that its peak memory is this work's alone (imports included).
    script = textwrap.dedent(
        """
        import json
        import numpy as np
        from dc_invariant import ConformerFeaturizer
        from dc_invariant.auditing import audit
        from dc_invariant.builtin import peptide_box
        from dc_invariant.models import RotationInvariantModel, SchNetModel

        c = ConformerFeaturizer().featurize([peptide_box(5000)])[0]
        arrays = (c.positions, c.features, c.atomic_numbers, [c.n_atoms])
        out = {"n_atoms": c.n_atoms}
        for model in (RotationInvariantModel(cutoff=5.0), SchNetModel()):
            forces = model.predict_arrays(*arrays, forces=True)
            out[type(model).__name__] = float(np.abs(forces.sum(axis=0)).max())
        report = audit(RotationInvariantModel(cutoff=5.0), [c, c], n_samples=1)
        out["audited"] = int(report.n_inputs - len(report.skipped))
        out["holds"] = all(report.holds(s) for s in report.settings["symmetries"])
        # This process's own peak: its ru_maxrss would carry over the test runner's size.
        with open("/proc/self/status") as status:
            hwm = next(line for line in status if line.startswith("VmHWM:"))
        out["peak_mib"] = int(hwm.split()[1]) / 1024
        print(json.dumps(out))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=True
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["n_atoms"] >= 5000
    assert result["RotationInvariantModel"] < 1e-2 and result["SchNetModel"] < 1e-2  # no net force
    assert result["audited"] == 2 and result["holds"]
    assert result["peak_mib"] < 2048
