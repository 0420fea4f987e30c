import json

import numpy as np
import pandas as pd
import pytest
from conftest import DRUG_LIKE

from dc_invariant import ConformerFeaturizer
from dc_invariant.auditing import assert_invariant, audit
from dc_invariant.models import (
    DenseModel,
    PermutationInvariantModel,
    RotationInvariantModel,
    TranslationInvariantModel,
)

ALL = ("permutation", "translation", "rotation", "reflection")


@pytest.fixture(scope="module")
def dataset(dc):
    X = ConformerFeaturizer(random_seed=2).featurize(DRUG_LIKE)
    return dc.data.NumpyDataset(X, ids=np.array(DRUG_LIKE))


def spread(r: np.ndarray, x: np.ndarray) -> float:
    """Known-good: sum of squared distances to the centroid, weighted by features."""
    return float((((r - r.mean(axis=0)) ** 2).sum(axis=1) * (1 + x.sum(axis=1))).sum())


def raw_x(r: np.ndarray, x: np.ndarray) -> float:
    """Known-broken: reads raw x coordinates."""
    return float(r[:, 0].sum())


@pytest.mark.parametrize(
    ("make", "holding"),
    [
        (lambda: DenseModel(n_atoms=50, dtype="float64"), set()),
        (lambda: PermutationInvariantModel(dtype="float64"), {"permutation"}),
        (lambda: TranslationInvariantModel(dtype="float64"), {"permutation", "translation"}),
        (lambda: RotationInvariantModel(dtype="float64"), set(ALL)),
    ],
)
def test_tutorial_networks_give_the_tutorials_conclusions(dataset, make, holding):
    report = audit(make(), dataset, seed=1)
    assert {s for s in ALL if report.holds(s)} == holding
    assert len(report.molecules) == len(DRUG_LIKE) * 5  # four symmetries and the control
    assert report.geometry_blind is False  # every one of them reads the coordinates
    assert report.n_inputs == len(DRUG_LIKE) and report.skipped.empty


def test_identity_control_gives_zero_deviation(dataset):
    report = audit(RotationInvariantModel(), dataset, symmetries=("identity",))
    rows = report.molecules[report.molecules["symmetry"] == "identity"]
    assert len(rows) == len(dataset) and (rows["abs_deviation"] == 0.0).all()
    assert report.summary["verdict"].tolist() == ["holds"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_checker_on_known_good_and_known_broken_functions(dataset, dtype):
    def good(r, x):
        return np.asarray(spread(r.astype(dtype), x), dtype=dtype)

    def bad(r, x):
        return np.asarray(raw_x(r.astype(dtype), x), dtype=dtype)

    tolerance = {"rtol": 1e-4, "atol": 1e-5} if dtype is np.float32 else {}
    assert all(audit(good, dataset, **tolerance).holds(s) for s in ("permutation", "rotation"))
    broken = audit(bad, dataset, **tolerance)
    assert not broken.holds("translation") and not broken.holds("rotation")
    assert broken.holds("permutation")  # a sum over atoms does not care about order


def test_report_explains_mirror_blindness_and_formats(dataset):
    report = audit(RotationInvariantModel(dtype="float64"), dataset, n_samples=2)
    text = report.format()
    assert "enantiomers" in text and "reflection" in text and "seed 0" in text
    assert set(report.summary["verdict"]) <= {"holds", "holds within numerical noise"}
    worst = report.worst("rotation", k=3)
    assert len(worst) == 3 and worst["rel_deviation"].is_monotonic_decreasing


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


def test_assert_invariant_raises_with_the_numbers(dataset):
    assert_invariant(spread, dataset, symmetries=("rotation", "translation"))
    with pytest.raises(AssertionError, match=r"broken: translation, rotation[\s\S]*rel dev"):
        assert_invariant(raw_x, dataset, symmetries=("translation", "rotation"))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"symmetries": ("scaling",)}, ValueError, "symmetries must be distinct names drawn from"),
        ({"n_samples": 0}, ValueError, "n_samples == 0, must be >= 1"),
        ({"symmetries": "rotation"}, TypeError, "got the str 'rotation': wrap it in a list"),
        ({"rtol": -1.0}, ValueError, "rtol == -1.0, must be >= 0"),
        ({"atol": float("nan")}, ValueError, "atol must be a finite number"),
        ({"seed": -1}, ValueError, "seed == -1, must be >= 0"),
        ({"n_samples": 2.0}, TypeError, "n_samples must be an instance of int"),
    ],
)
def test_bad_arguments(dataset, kwargs, error, match):
    with pytest.raises(error, match=match):
        audit(spread, dataset, **kwargs)
    with pytest.raises(TypeError, match="target must be a model"):
        audit(42, dataset)
    with pytest.raises(ValueError, match="was not audited"):
        audit(spread, dataset, symmetries=("rotation",)).holds("reflection")


def test_deepchem_coulomb_featurizers_get_the_verdicts_their_definitions_imply(dc, capfd):
    smiles = DRUG_LIKE[:5]
    # Coulomb matrix: Z_i Z_j / |r_i - r_j| in atom order. Distances ignore rigid motions
    # and mirrors, but renumbering atoms permutes its rows and columns.
    matrix = audit(dc.feat.CoulombMatrix(max_atoms=60), smiles, n_samples=2)
    assert not matrix.holds("permutation")
    assert all(matrix.holds(s) for s in ("translation", "rotation", "reflection"))
    # Its sorted eigenvalues forget the numbering too.
    eigen = audit(dc.feat.CoulombMatrixEig(max_atoms=60), smiles, n_samples=2)
    assert all(eigen.holds(s) for s in ALL)
    # Raw coordinates change under every one of them.
    coordinates = audit(dc.feat.AtomicCoordinates(), smiles, n_samples=2)
    assert not any(coordinates.holds(s) for s in ALL)
    assert "Exception message" not in capfd.readouterr().err


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


def test_chunk_size_changes_nothing_but_memory(dataset):
    many = list(dataset.X) * 20  # 200 molecules: several 64-molecule random-number blocks
    whole = audit(spread, many, seed=3, chunk_size=1000)
    pieces = audit(spread, many, seed=3, chunk_size=3)  # rounded up to one block, 64
    pd.testing.assert_frame_equal(whole.molecules, pieces.molecules)
    with pytest.raises(ValueError, match="chunk_size == 0, must be >= 1"):
        audit(spread, dataset, chunk_size=0)


def test_forces_are_audited_as_vectors(dataset):
    molecules = dataset.select(np.arange(4))
    forces = audit(RotationInvariantModel(dtype="float64"), molecules, output="vector")
    assert all(forces.holds(s) for s in ALL)  # F(gx) = R F(x), atoms renumbered with it
    translation = audit(TranslationInvariantModel(dtype="float64"), molecules, output="vector")
    assert translation.holds("translation") and translation.holds("permutation")
    assert not translation.holds("rotation")

    def spread_forces(r, x):
        return -2.0 * (r - r.mean(axis=0))  # minus the gradient of the spread

    assert audit(spread_forces, molecules, output="vector").holds("rotation")
    # Declared invariant, the same vectors must fail: they turn with the molecule.
    assert not audit(spread_forces, molecules, symmetries=("rotation",)).holds("rotation")


def test_per_atom_and_pseudoscalar_outputs():
    smiles = ["CCO", "CC(=O)Nc1ccc(O)cc1", "C[C@@H](C(=O)O)N"]

    def distances(r, x):
        return np.linalg.norm(r - r.mean(axis=0), axis=1)

    assert audit(distances, smiles, output="per_atom").holds("permutation")
    assert not audit(distances, smiles, symmetries=("permutation",)).holds("permutation")

    def handedness(r, x):
        # Signed volume of the first three atoms around the centroid: flips in a mirror.
        c = r - r.mean(axis=0)
        return np.dot(c[0], np.cross(c[1], c[2]))

    symmetries = ("translation", "rotation", "reflection")
    pseudo = audit(handedness, smiles, symmetries=symmetries, output="pseudoscalar")
    assert all(pseudo.holds(s) for s in symmetries)
    assert not audit(handedness, smiles, symmetries=("reflection",)).holds("reflection")
    with pytest.raises(ValueError, match="output must be one of"):
        audit(handedness, smiles, output="tensor")


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


def test_deepchem_featurizer_failures_keep_deepchem_s_reason(dc):
    class Picky(dc.feat.MolecularFeaturizer):
        """Fails on molecules over 5 atoms, and on any whose first atom is a hydrogen."""

        def _featurize(self, datapoint, **kwargs):
            if datapoint.GetNumAtoms() > 5:
                raise ValueError(f"{datapoint.GetNumAtoms()} atoms is too many")
            if datapoint.GetAtomWithIdx(0).GetAtomicNum() == 1:
                raise ValueError("hydrogen first")
            return np.array([datapoint.GetNumAtoms()], dtype=float)

    report = audit(Picky(), ["C", "CCO"], symmetries=("permutation",), n_samples=3)
    reasons = dict(zip(report.skipped["id"], report.skipped["reason"]))
    assert reasons == {
        "CCO": "DeepChem could not featurize it: 9 atoms is too many",
        "C": "DeepChem could not featurize it: hydrogen first (on a transformed copy)",
    }
    assert report.n_inputs == 2 and report.molecules.empty


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


def test_verdict_turns_exactly_at_the_tolerance(dataset):
    """A target broken by a known deviation passes just above it and fails just below."""

    def nudged(r: np.ndarray, x: np.ndarray) -> float:
        return 1.0 + 1e-7 * float(r[:, 0].sum())

    loose = audit(nudged, dataset, symmetries=("translation",), seed=2, rtol=0.0, atol=1.0)
    worst = float(loose.molecules["abs_deviation"].max())
    assert worst > 0 and loose.holds("translation")
    above = audit(
        nudged, dataset, symmetries=("translation",), seed=2, rtol=0.0, atol=worst * 1.001
    )
    below = audit(
        nudged, dataset, symmetries=("translation",), seed=2, rtol=0.0, atol=worst * 0.999
    )
    assert above.holds("translation") and not below.holds("translation")
    failed = below.molecules[
        (below.molecules["symmetry"] == "translation") & ~below.molecules["passed"]
    ]
    assert (failed["abs_deviation"] > worst * 0.999).all() and len(failed) >= 1
