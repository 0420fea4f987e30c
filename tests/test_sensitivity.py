import json

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

import dc_invariant.auditing
from dc_invariant import ConformerFeaturizer
from dc_invariant.models import RotationInvariantModel
from dc_invariant.sensitivity import SensitivityReport, conformer_sensitivity

FLEXIBLE = "CCCCCCO"
RIGID = ["C#C", "c1ccccc1"]


def gyration(r: np.ndarray, x: np.ndarray) -> float:
    """Radius of gyration (Å): changes with the torsions of a flexible chain."""
    return float(np.sqrt(((r - r.mean(axis=0)) ** 2).sum(axis=1).mean()))


def test_exported_at_the_top_not_as_a_symmetry():
    assert dc_invariant.conformer_sensitivity is conformer_sensitivity
    assert dc_invariant.SensitivityReport is SensitivityReport
    assert "conformer_sensitivity" not in dc_invariant.auditing.__all__


def test_same_seed_same_report_and_geometry_j_is_seed_plus_j():
    seen = []

    def record(r, x):
        seen.append(r.copy())
        return gyration(r, x)

    first = conformer_sensitivity(record, [FLEXIBLE, "CCO"], n_conformers=3, seed=4)
    again = conformer_sensitivity(gyration, [FLEXIBLE, "CCO"], n_conformers=3, seed=4)
    pd.testing.assert_frame_equal(first.molecules, again.molecules, check_exact=True)
    other = conformer_sensitivity(gyration, [FLEXIBLE, "CCO"], n_conformers=3, seed=5)
    assert not np.array_equal(first.molecules["mean"], other.molecules["mean"])
    # The target saw, for each molecule, what ConformerFeaturizer(random_seed=4 + j) gives.
    expected = [
        ConformerFeaturizer(random_seed=4 + j).featurize([smiles])[0].positions
        for smiles in (FLEXIBLE, "CCO")
        for j in range(3)
    ]
    assert len(seen) == len(expected)
    for got, want in zip(seen, expected):
        np.testing.assert_array_equal(got, want)
    # More conformers only adds geometries: the first three are the same ones.
    five = conformer_sensitivity(record, [FLEXIBLE], n_conformers=5, seed=4)
    assert five.molecules["n_conformers"].tolist() == [5]
    np.testing.assert_array_equal(seen[-5], expected[0])
    np.testing.assert_array_equal(seen[-3], expected[2])


def test_geometry_dependent_target_spreads_on_flexible_not_rigid_molecules():
    report = conformer_sensitivity(gyration, [FLEXIBLE, *RIGID], n_conformers=5)
    rows = report.molecules.set_index("id")
    assert rows.loc[FLEXIBLE, "range"] > 0.1  # Å; a hexanol chain folds and stretches
    for smiles in RIGID:
        assert rows.loc[smiles, "range"] < 0.05  # only ETKDG's bond-length noise
        assert rows.loc[FLEXIBLE, "range"] > 10 * rows.loc[smiles, "range"]
    assert report.summary["max_range_id"] == FLEXIBLE
    assert report.summary["max_range"] == rows["range"].max()
    assert rows["std"].gt(0).all() and rows["n_conformers"].eq(5).all()
    # rel_range is range over |mean| (a single output here).
    np.testing.assert_allclose(rows["rel_range"], rows["range"] / rows["mean"].abs())


def test_several_outputs_range_is_the_largest_and_mean_std_follow_the_first():
    both = conformer_sensitivity(
        lambda r, x: np.array([len(r), gyration(r, x)]), [FLEXIBLE, "CCO"], n_conformers=3
    )
    alone = conformer_sensitivity(gyration, [FLEXIBLE, "CCO"], n_conformers=3)
    # The atom count never moves; the range and rel_range come from the radius of gyration.
    assert both.molecules["mean"].tolist() == both.molecules["n_atoms"].tolist()
    assert (both.molecules["std"] == 0.0).all()
    pd.testing.assert_series_equal(both.molecules["range"], alone.molecules["range"])
    pd.testing.assert_series_equal(both.molecules["rel_range"], alone.molecules["rel_range"])


@pytest.mark.parametrize(
    "target",
    [lambda r, x: len(r), lambda r, x: x.sum(), lambda r, x: np.array([len(r), x[:, 1].sum()])],
)
def test_conformer_independent_target_has_zero_spread(target):
    report = conformer_sensitivity(target, [FLEXIBLE, "c1ccccc1O"], n_conformers=3)
    assert len(report.molecules) == 2
    assert (report.molecules[["std", "range", "rel_range"]] == 0.0).all().all()
    assert report.molecules["mean"].tolist() == report.molecules["n_atoms"].tolist()


def test_model_target_matches_its_own_predictions_per_seed(dc):
    model = RotationInvariantModel(seed=3)
    smiles = [FLEXIBLE, "CC(=O)Nc1ccc(O)cc1"]
    report = conformer_sensitivity(model, smiles, n_conformers=3, seed=1)
    assert report.settings["target"] == "RotationInvariantModel"
    assert report.settings["dtype"] == "float32"
    predictions = np.stack(
        [
            model.predict(
                dc.data.NumpyDataset(ConformerFeaturizer(random_seed=s).featurize(smiles))
            )
            for s in (1, 2, 3)
        ]
    )[..., 0]  # (seed, molecule)
    rows = report.molecules
    np.testing.assert_allclose(rows["mean"], predictions.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(rows["std"], predictions.std(axis=0, ddof=1), rtol=1e-4)
    np.testing.assert_allclose(rows["range"], np.ptp(predictions, axis=0), rtol=1e-4, atol=1e-7)
    assert rows.loc[0, "range"] > 0


def test_unparsable_none_and_nan_are_skipped_and_counts_add_up():
    def nan_for_water(r, x):
        return np.nan if len(r) == 3 else gyration(r, x)

    inputs = ["CCO", "not a smiles", None, "O", "c1ccccc1"]
    report = conformer_sensitivity(nan_for_water, inputs, n_conformers=2)
    assert len(report.molecules) + len(report.skipped) == len(inputs)
    assert report.molecules["id"].tolist() == ["CCO", "c1ccccc1"]
    reasons = dict(zip(report.skipped["id"], report.skipped["reason"]))
    assert (
        reasons["not a smiles"] == "0 of 2 embeddings succeeded: RDKit could not parse the SMILES"
    )
    assert reasons["2"].startswith("0 of 2 embeddings succeeded: no molecule (None)")
    assert reasons["O"] == "the target returned NaN or infinity"
    assert "5 molecules in, 2 measured, 3 skipped" in report.format()
    assert report.summary["molecules"] == 2 and report.summary["skipped"] == 3


def test_nothing_measured_still_gives_a_report(tmp_path):
    report = conformer_sensitivity(gyration, ["xyz"], n_conformers=2)
    assert report.molecules.empty and len(report.skipped) == 1
    assert np.isnan(report.summary["max_range"]) and report.summary["max_range_id"] is None
    assert "1 molecules in, 0 measured, 1 skipped" in report.format()
    report.to_json(tmp_path / "empty.json")
    assert SensitivityReport.from_json(tmp_path / "empty.json").skipped.equals(report.skipped)


def test_partial_embedding_failures_keep_the_conformers_that_worked():
    adamantane = "C1C2CC3CC1CC(C2)C3"  # one ETKDG attempt is sometimes not enough for a cage
    featurizer = ConformerFeaturizer(max_attempts=1)
    works = []
    for seed in range(30):
        one = featurizer.replace(random_seed=seed)
        one.featurize([adamantane], log_failures=False)
        works.append(not one.failures)
    failing = [s for s in range(1, 27) if works[s - 1] and not works[s]]
    if not failing:
        pytest.skip("this RDKit embeds adamantane in one attempt at every seed tried")
    first = failing[0] - 1  # seed `first` embeds, `first + 1` does not
    pair = conformer_sensitivity(
        gyration, [adamantane], n_conformers=2, seed=first, featurizer=featurizer
    )
    assert pair.molecules.empty
    assert pair.skipped["reason"].tolist() == [
        "1 of 2 embeddings succeeded: ETKDGv3 embedding failed after 1 attempts, "
        "also from random starting coordinates"
    ]
    four = conformer_sensitivity(
        gyration, [adamantane], n_conformers=4, seed=first, featurizer=featurizer
    )
    expected = sum(works[first : first + 4])
    assert len(four.molecules) + len(four.skipped) == 1
    if expected >= 2:
        assert four.molecules["n_conformers"].tolist() == [expected]


def test_mol_input_is_re_embedded_and_left_untouched():
    mol = Chem.AddHs(Chem.MolFromSmiles(FLEXIBLE))
    AllChem.EmbedMolecule(mol, randomSeed=11)
    before = mol.GetConformer().GetPositions()
    report = conformer_sensitivity(gyration, [mol], n_conformers=4)
    # Its own conformer would have given the same geometry four times: range 0.
    assert report.molecules.loc[0, "range"] > 0.1
    assert report.molecules.loc[0, "id"] == "0"
    assert mol.GetNumConformers() == 1
    np.testing.assert_array_equal(mol.GetConformer().GetPositions(), before)


def test_featurizer_settings_are_kept_except_seed_and_ensemble():
    heavy = ConformerFeaturizer(heavy_atoms_only=True, random_seed=9, n_conformers=3)
    report = conformer_sensitivity(gyration, [FLEXIBLE], n_conformers=2, featurizer=heavy)
    assert report.molecules.loc[0, "n_atoms"] == 7
    assert "heavy_atoms_only_True" in report.settings["featurizer"]
    assert "n_conformers" not in report.settings["featurizer"]  # one geometry per seed
    own = ConformerFeaturizer(heavy_atoms_only=True)
    expected = [
        gyration(c.positions, None)
        for s in (0, 1)
        for c in own.replace(random_seed=s).featurize([FLEXIBLE])
    ]
    assert report.molecules.loc[0, "mean"] == pytest.approx(np.mean(expected), rel=1e-12)


def test_json_and_csv_round_trip(tmp_path):
    report = conformer_sensitivity(gyration, [FLEXIBLE, "CCO", "bad("], n_conformers=2)
    report.to_json(tmp_path / "sensitivity.json")
    back = SensitivityReport.from_json(tmp_path / "sensitivity.json")
    pd.testing.assert_frame_equal(back.molecules, report.molecules)
    pd.testing.assert_frame_equal(back.skipped, report.skipped)
    assert back.settings == report.settings and back.summary == report.summary
    payload = json.loads((tmp_path / "sensitivity.json").read_text())
    assert payload["settings"]["versions"]["rdkit"] and payload["settings"]["n_conformers"] == 2
    report.to_csv(tmp_path / "csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "csv" / "molecules.csv"), report.molecules)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "csv" / "skipped.csv"), report.skipped)
    summary = pd.read_csv(tmp_path / "csv" / "summary.csv").iloc[0]
    assert summary["max_range"] == report.summary["max_range"]
    assert summary["max_range_id"] == FLEXIBLE


def test_progress_bar(capsys):
    conformer_sensitivity(gyration, ["CCO"], n_conformers=2, progress=True)
    assert "sensitivity" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_conformers": 1}, ValueError, "n_conformers == 1, must be >= 2"),
        ({"n_conformers": 2.0}, TypeError, "n_conformers must be an instance of int"),
        ({"molecules": []}, ValueError, "molecules is empty"),
        ({"molecules": 42}, TypeError, "molecules must be a list .* got int"),
        ({"molecules": ["CCO", 3.5]}, TypeError, "molecule 1 is float"),
        ({"seed": -1}, ValueError, "seed == -1, must be >= 0"),
        ({"seed": 2**31 - 3}, ValueError, "seed == 2147483645, must be <= 2147483642"),
        ({"seed": "0"}, TypeError, "seed must be an instance of int"),
        ({"featurizer": object()}, TypeError, "must be a dc_invariant ConformerFeaturizer"),
        ({"target": 42}, TypeError, "target must be a model"),
    ],
)
def test_errors(kwargs, error, match):
    arguments = {"target": gyration, "molecules": ["CCO"], **kwargs}
    with pytest.raises(error, match=match):
        conformer_sensitivity(arguments.pop("target"), arguments.pop("molecules"), **arguments)


def test_outputs_of_different_sizes_are_an_error():
    calls = iter(range(10))
    with pytest.raises(ValueError, match="outputs of sizes \\[1, 2\\] for the conformers of"):
        conformer_sensitivity(lambda r, x: np.ones(1 + next(calls) % 2), ["CCO"], n_conformers=2)


def test_unassigned_stereo_is_embedded_as_one_isomer():
    # ETKDG picks cis or trans at random per seed: the "conformer" spread mixed isomers.
    def cl_cl(r, x):
        return float(np.linalg.norm(r[0] - r[3]))

    report = conformer_sensitivity(cl_cl, ["ClC=CCl"], n_conformers=6)
    assert report.molecules["smiles"].tolist() == ["Cl/C=C/Cl"]
    assert report.molecules["range"].iloc[0] < 0.2  # cis and trans differ by 1.4 Å
    with pytest.raises(TypeError, match="progress must be True or False"):
        conformer_sensitivity(cl_cl, ["CCl"], progress="no")
