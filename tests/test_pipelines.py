"""Featurizer + model pipelines, the geometry-blindness control and honest counts."""

import numpy as np
import pytest
import torch

from dc_invariant.auditing import assert_invariant, audit, prepare

ALL = ("permutation", "translation", "rotation", "reflection")
RIGID = ("translation", "rotation", "reflection")
SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C[C@@H](C(=O)O)N"]
MAX_ATOMS = 24


@pytest.fixture(scope="module")
def molecules():
    return prepare(SMILES)


def _labelled(dc, featurizer, prepared):
    """The audited molecules featurized as the audit rebuilds them, with made-up labels."""
    from dc_invariant.auditing.featurizing import featurize
    from dc_invariant.auditing.rebuild import mols_for
    from dc_invariant.molecules import Molecules

    features, _ = featurize(featurizer, mols_for(Molecules.from_conformers(prepared.molecules)))
    X = np.stack(features)
    return dc.data.NumpyDataset(X, np.arange(len(X), dtype=float)[:, None])


def _holding(report):
    return {s for s in ALL if report.holds(s)}


def test_torch_model_on_coulomb_matrix_breaks_permutation_only(dc, molecules):
    torch.manual_seed(0)
    width = MAX_ATOMS * (MAX_ATOMS + 1) // 2
    model = dc.models.MultitaskRegressor(1, width, layer_sizes=[8])
    matrix = dc.feat.CoulombMatrix(max_atoms=MAX_ATOMS, upper_tri=True)
    report = audit(model, molecules, featurizer=matrix, n_samples=2)
    assert _holding(report) == set(RIGID)  # the matrix's atom order feeds a dense layer
    assert report.geometry_blind is False  # distances are read
    assert report.settings["dtype"] == "float32"  # DeepChem's torch models: float32 tolerances
    assert report.settings["target"] == "CoulombMatrix -> MultitaskRegressor"
    # The same model behind the sorted eigenvalues of the same matrix holds all four.
    eig = dc.models.MultitaskRegressor(1, MAX_ATOMS, layer_sizes=[8])
    eigen = dc.feat.CoulombMatrixEig(max_atoms=MAX_ATOMS)
    assert _holding(audit(eig, molecules, featurizer=eigen, n_samples=2)) == set(ALL)


def test_torch_model_on_fingerprints_holds_all_and_is_geometry_blind(dc, molecules):
    torch.manual_seed(0)
    model = dc.models.MultitaskRegressor(1, 256, layer_sizes=[8])
    report = audit(model, molecules, featurizer=dc.feat.CircularFingerprint(size=256))
    assert _holding(report) == set(ALL)
    assert report.geometry_blind is True
    assert "ignores the coordinates you give it" in report.format()


def test_mat_pipeline_is_geometry_blind(dc, molecules):
    from deepchem.models.torch_models import MATModel

    torch.manual_seed(0)
    model = MATModel(n_encoders=1, d_model=16, d_ff=16, h=2, batch_size=64)
    report = audit(model, molecules, featurizer=dc.feat.MATFeaturizer(), n_samples=1)
    assert report.geometry_blind is True  # MATFeaturizer re-embeds, and reads graph distances
    assert _holding(report) == set(ALL)


def test_sklearn_model_pipeline_known_invariant_and_known_broken(dc, molecules):
    from sklearn.linear_model import Ridge

    matrix = dc.feat.CoulombMatrix(max_atoms=MAX_ATOMS, upper_tri=True)
    eigen = dc.feat.CoulombMatrixEig(max_atoms=MAX_ATOMS)
    for featurizer, holding in ((eigen, set(ALL)), (matrix, set(RIGID))):
        model = dc.models.SklearnModel(Ridge(alpha=1.0))
        model.fit(_labelled(dc, featurizer, molecules))
        report = audit(model, molecules, featurizer=featurizer, n_samples=2)
        assert _holding(report) == holding
        assert report.settings["dtype"] == "float64" and report.geometry_blind is False


class SumOfFeatures:
    """A model of one's own: anything with predict(dataset)."""

    def predict(self, dataset):
        return np.array([np.sum(x) for x in dataset.X])[:, None]


def test_custom_predict_pipeline_known_invariant_and_known_broken(dc, molecules):
    eigen = audit(SumOfFeatures(), molecules, featurizer=dc.feat.CoulombMatrixEig(MAX_ATOMS))
    assert _holding(eigen) == set(ALL)
    # Raw coordinates, summed: renumbering cannot change a sum, but a shift does.
    coordinates = audit(SumOfFeatures(), molecules, featurizer=dc.feat.AtomicCoordinates())
    assert coordinates.holds("permutation") and not coordinates.holds("translation")
    assert coordinates.settings["dtype"] == "float32"  # unknown precision: the looser one


def test_featurizer_failures_are_skips_with_deepchem_s_reason(dc, molecules):
    class Ringless(dc.feat.CoulombMatrixEig):
        """A real DeepChem featurizer that refuses rings, with a reason."""

        def _featurize(self, datapoint, **kwargs):
            if datapoint.GetRingInfo().NumRings():
                raise ValueError(f"{datapoint.GetRingInfo().NumRings()} ring(s): not supported")
            return super()._featurize(datapoint, **kwargs)

    report = audit(SumOfFeatures(), molecules, featurizer=Ringless(MAX_ATOMS), n_samples=1)
    assert sorted(report.molecules["id"].unique()) == ["CCO", "C[C@@H](C(=O)O)N"]
    assert sorted(report.skipped.itertuples(False, None)) == [
        ("CC(=O)Nc1ccc(O)cc1", "DeepChem could not featurize it: 1 ring(s): not supported"),
        ("c1ccccc1O", "DeepChem could not featurize it: 1 ring(s): not supported"),
    ]
    # prepare() with the featurizer skips them up front, with the same reasons.
    ready = prepare(SMILES, featurizer=Ringless(MAX_ATOMS))
    assert sorted(ready.skipped) == sorted(report.skipped.itertuples(False, None))
    # DeepChem's own size check fails without a message: the skip still says who failed.
    small = audit(SumOfFeatures(), molecules, featurizer=dc.feat.CoulombMatrix(10), n_samples=1)
    assert small.molecules["id"].unique().tolist() == ["CCO"]  # 9 atoms; the others have more
    # DeepChem says nothing; the skip says why: the featurizer's max_atoms.
    assert all(
        r.endswith("more than CoulombMatrix's max_atoms=10") for r in small.skipped["reason"]
    )


def test_pipeline_argument_errors(dc, molecules):
    from dc_invariant.models import RotationInvariantModel

    fingerprint = dc.feat.CircularFingerprint(size=64)
    with pytest.raises(TypeError, match="dc_invariant models read Conformers"):
        audit(RotationInvariantModel(), molecules, featurizer=fingerprint)
    with pytest.raises(TypeError, match="featurizer must have featurize"):
        audit(SumOfFeatures(), molecules, featurizer=42)
    with pytest.raises(ValueError, match="output='vector' audits forces"):
        audit(SumOfFeatures(), molecules, featurizer=fingerprint, output="vector")


def test_control_flags_a_coordinate_ignoring_function_only(molecules):
    def composition(r, x):  # reads the elements only
        return x.sum(axis=0)

    def distances(r, x):
        d = np.linalg.norm(r[:, None] - r[None], axis=-1)
        return np.sort(d.reshape(-1))

    blind = audit(composition, molecules, n_samples=1)
    assert blind.geometry_blind is True and _holding(blind) == set(ALL)
    assert (blind.control["abs_deviation"] == 0).all()
    reading = audit(distances, molecules, n_samples=1)
    assert reading.geometry_blind is False and _holding(reading) == set(ALL)
    control = reading.molecules[reading.molecules["symmetry"] == "distortion"]
    assert len(control) == len(SMILES) and (control["abs_deviation"] > 1e-3).all()


def test_single_atoms_are_not_applicable_for_permutation():
    def spread(r, x):
        return ((r - r.mean(axis=0)) ** 2).sum()

    report = audit(spread, ["[Fe+2]", "CCO"], n_samples=1)
    row = report.summary.set_index("symmetry").loc["permutation"]
    assert (row["molecules"], row["passed"], row["not_applicable"]) == (1, 1, 1)
    assert report.summary.set_index("symmetry").loc["rotation", "molecules"] == 2
    assert "permutation is n/a for 1 single-atom" in report.format()
    # Renumbering atoms of one element still reorders their positions: that is checked.
    assert report.checked("permutation")
    with pytest.raises(AssertionError, match="not checked on any molecule: permutation"):
        assert_invariant(spread, ["[Fe+2]", "[Na+]"], n_samples=1)
    nitrogen = audit(lambda r, x: r[0], ["N#N"], symmetries=("permutation",), n_samples=1)
    assert nitrogen.checked("permutation") and not nitrogen.holds("permutation")


def test_forces_are_named_in_the_table(molecules):
    def spread_forces(r, x):
        return -2.0 * (r - r.mean(axis=0))

    text = audit(spread_forces, molecules, output="vector", n_samples=1).format()
    assert "forces (per-atom vectors) must permute and turn with the molecule" in text
