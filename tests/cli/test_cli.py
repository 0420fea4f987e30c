import os
import shutil

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from dc_invariant.builtin import EXAMPLE_MOLECULES
from dc_invariant.cli import main

ALL = ("permutation", "translation", "rotation", "reflection")


def test_default_run_audits_the_four_tutorial_networks(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    # "== name (Class) ==" opens each model's summary table
    sections = {block.split(" ")[0]: block for block in out.split("\n== ")[1:]}
    assert set(sections) == {"dense", "permutation", "translation", "rotation"}

    def verdicts(name):
        rows = [line.split() for line in sections[name].splitlines()]
        rows = [row for row in rows if row and row[0] in ALL]
        return {row[0]: "broken" not in " ".join(row) for row in rows}

    assert not any(verdicts("dense").values())
    assert verdicts("permutation") == {
        "permutation": True, "translation": False, "rotation": False, "reflection": False
    }  # fmt: skip
    assert verdicts("translation") == {
        "permutation": True, "translation": True, "rotation": False, "reflection": False
    }  # fmt: skip
    assert all(verdicts("rotation").values()) and "enantiomers" in sections["rotation"]


def test_audit_require_gates_the_exit_status(tmp_path, capsys):
    argv = ["audit", "--smiles", "CCO", "c1ccccc1O", "--model", "translation", "--n-samples", "1"]
    assert main([*argv, "--require", "translation"]) == 0
    assert main([*argv, "--require", "rotation", "--out", str(tmp_path / "report")]) == 1
    assert main([*argv, "--out", str(tmp_path / "report"), "--resume"]) == 0
    assert main([*argv, "--out", str(tmp_path / "report")]) == 2  # would mix two runs
    err = capsys.readouterr().err
    assert "translation (TranslationInvariantModel) breaks required rotation" in err
    assert (tmp_path / "report" / "translation" / "audit.json").is_file()
    assert (tmp_path / "report" / "translation" / "summary.csv").is_file()
    assert (tmp_path / "report" / "translation" / "report.html").is_file()
    forces = ["audit", "--smiles", "CCO", "--model", "rotation", "--output", "vector"]
    assert main([*forces, "--require", "rotation,reflection"]) == 0


def test_featurize_builtin_molecules(capsys):
    assert main(["featurize"]) == 0
    out = capsys.readouterr().out
    for name in EXAMPLE_MOLECULES:
        assert name in out
    assert f"{len(EXAMPLE_MOLECULES)} of {len(EXAMPLE_MOLECULES)} molecules featurized" in out
    water = next(line for line in out.splitlines() if " water " in line)
    assert water.split()[2:4] == ["3", "1"]  # atoms, heavy atoms


def test_smiles_with_a_failure_warns_on_stderr(capsys):
    assert main(["featurize", "--smiles", "CCO", "not_smiles", "--heavy-atoms-only"]) == 0
    captured = capsys.readouterr()
    assert "1 of 2 molecules featurized" in captured.out
    assert "failed" in captured.out
    [warning] = captured.err.strip().splitlines()
    assert warning.startswith("warning: ") and "RDKit could not parse the SMILES" in warning
    ethanol = next(line for line in captured.out.splitlines() if line.split()[1:2] == ["CCO"])
    assert ethanol.split()[2] == "3"


def test_csv_and_npz_output(tmp_path, capsys):
    csv = tmp_path / "mols.csv"
    csv.write_text("name,SMILES\nethanol,CCO\nbenzene,c1ccccc1\nphenol,Oc1ccccc1\n")
    out = tmp_path / "out.npz"
    argv = ["featurize", "--csv", str(csv), "--smiles-column", "SMILES", "--limit", "2"]
    assert main([*argv, "--out", str(out), "--elements", "C,H,O", "--no-other-element"]) == 0
    assert "2 of 2 molecules featurized; 3 features per atom" in capsys.readouterr().out
    with np.load(out, allow_pickle=False) as saved:
        assert saved["n_atoms"].tolist() == [9, 12]
        assert saved["positions"].shape == (21, 3) and saved["features"].shape == (21, 3)
        assert saved["smiles"].tolist() == ["CCO", "c1ccccc1"]
        assert saved["feature_names"].tolist() == ["element=C", "element=H", "element=O"]


def test_sdf_input_keeps_file_coordinates(tmp_path, capsys):
    path = tmp_path / "mols.sdf"
    writer = Chem.SDWriter(str(path))
    mol = Chem.AddHs(Chem.MolFromSmiles("CC(=O)O"))
    AllChem.EmbedMolecule(mol, randomSeed=1)
    mol.SetProp("_Name", "acetic acid")
    writer.write(mol)
    writer.close()
    out = tmp_path / "a.npz"
    assert main(["featurize", "--sdf", str(path), "--out", str(out), "--seed", "9"]) == 0
    assert "acetic acid" in capsys.readouterr().out
    reread = next(Chem.SDMolSupplier(str(path), removeHs=False))
    with np.load(out) as saved:
        np.testing.assert_allclose(saved["positions"], reread.GetConformer().GetPositions())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["featurize", "--csv", "missing.csv"], "no such file: missing.csv"),
        (["featurize", "--sdf", __file__], "does not look like a .sdf file"),
        (["featurize", "--elements", "C,Xx"], "unknown element symbol"),
        (["featurize", "--n-jobs", "0"], "argument --n-jobs: n_jobs must be a non-zero int"),
        (["audit", "--scheduler", "not an address"], "expected a Dask scheduler address"),
        (["audit", "--cutoff", "0"], "argument --cutoff: value == 0.0, must be > 0.0"),
        (["audit", "--scheduler", "tcp://h:1", "--n-jobs", "2"], "not allowed with argument"),
        (["featurize", "--limit", "0"], "argument --limit: value == 0, must be >= 1"),
        (["featurize", "--limit", "-1"], "argument --limit: value == -1, must be >= 1"),
        (["audit", "--smiles", "C", "CC", "--limit", "-1"], "argument --limit: value == -1"),
        (["audit", "--dataset", "qm9", "--limit", "0"], "argument --limit: value == 0"),
        (["audit", "--seed", "-1"], "argument --seed: value == -1, must be >= 0"),
        (["featurize", "--seed", "-1"], "argument --seed: value == -1, must be >= 0"),
        (["featurize", "--n-conformers", "0"], "argument --n-conformers: value == 0"),
        (["featurize", "--embed-timeout", "-5"], "argument --embed-timeout: value == -5"),
        (["featurize", "--fragments", "biggest"], "argument --fragments: invalid choice"),
        (["featurize", "--id-column", "name"], "--id-column names a column of --csv"),
        (["featurize", "--out", "x.txt"], "--out must name a .npz file"),
        (["featurize", "--out", "/no/such/dir/x.npz"], "folder /no/such/dir does not exist"),
        (["featurize", "--seed", "abc"], "argument --seed: expected a whole number, got 'abc'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["audit", "--symmetries", "scaling"], "argument --symmetries: expected symmetries from"),
        (["audit", "--require", "rotation,mirror"], "argument --require: expected symmetries from"),
        (
            ["audit", "--symmetries", "permutation", "--require", "rotation"],
            "--require rotation: not among --symmetries permutation",
        ),
        (["audit", "--model", "nonexistent"], "neither one of dense"),
        (["audit", "--n-samples", "0"], "argument --n-samples: value == 0, must be >= 1"),
        (["audit", "--resume"], "--resume continues the audit stored under --out"),
        (["featurize", "--smiles", "C", "--csv", "x.csv"], "not allowed with argument"),
        (["audit", "--smiles", "CCO", "--dataset", "delaney"], "--dataset is a source"),
    ],
)
def test_bad_arguments_give_one_line_and_status_2(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    [line] = captured.err.strip().splitlines()
    assert line.startswith("dc-invariant: error: ") and message in line
    assert "Traceback" not in captured.err


def test_csv_without_the_column(tmp_path, capsys):
    csv = tmp_path / "m.csv"
    csv.write_text("name,smi\na,C\n")
    assert main(["featurize", "--csv", str(csv)]) == 2
    assert "has no column 'smiles'; columns are ['name', 'smi']" in capsys.readouterr().err


def test_all_molecules_failing_is_exit_status_1(capsys):
    assert main(["featurize", "--smiles", "xx", "yy"]) == 1
    assert "0 of 2 molecules featurized" in capsys.readouterr().out


def test_unreadable_file(tmp_path, capsys, monkeypatch):
    csv = tmp_path / "locked.csv"
    csv.write_text("smiles\nC\n")
    # Root (as in CI) may read anything, so the permission answer is simulated.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert main(["featurize", "--csv", str(csv)]) == 2
    assert "permission denied" in capsys.readouterr().err


def test_audit_a_moleculenet_set_from_its_raw_file(tmp_path, capsys):
    rows = ["Compound ID,measured log solubility in mols per litre,smiles"]
    rows += [f"m{i},{-float(i)},{s}" for i, s in enumerate(["CCO", "c1ccccc1O", "CC(=O)O"])]
    (tmp_path / "delaney-processed.csv").write_text("\n".join(rows) + "\n")
    argv = ["audit", "--dataset", "delaney", "--data-dir", str(tmp_path), "--model", "rotation"]
    assert main([*argv, "--n-samples", "1", "--require", "rotation"]) == 0
    assert "3 molecules in, 3 audited" in capsys.readouterr().out
    assert main([*argv, "--id-column", "Compound ID"]) == 2  # a column of --csv only
    assert "not --dataset" in capsys.readouterr().err
    # DeepChem's loader drops what it cannot featurize: the report still counts it.
    rows.insert(2, "broken,-9.0,C1CC")
    (tmp_path / "delaney-processed.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    assert main([*argv, "--n-samples", "1", "--limit", "2", "--out", str(out)]) == 0
    assert "2 molecules in, 1 audited, 1 skipped" in capsys.readouterr().out
    skipped = pd.read_csv(out / "rotation" / "skipped.csv")
    assert skipped.values.tolist() == [["C1CC", "RDKit could not parse the SMILES"]]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["audit", "--dataset", "lipo", "--data-dir", str(empty)]) == 2
    assert "Lipophilicity.csv there (nothing is downloaded)" in capsys.readouterr().err
    assert main(["audit", "--dataset", "lipo"]) == 2
    assert "needs --data-dir" in capsys.readouterr().err


def test_cutoff_reaches_the_built_in_models():
    from dc_invariant.cli.audit import build_model

    assert build_model("rotation", 11, 9, "float64", 0, 4.0).hyperparameters["cutoff"] == 4.0
    assert build_model("translation", 11, 9, "float64", 0).hyperparameters["cutoff"] is None
    assert build_model("schnet", 11, 9, "float32", 0, 3.5).hyperparameters["cutoff"] == 3.5
    assert build_model("schnet", 11, 9, "float32", 0).hyperparameters["cutoff"] == 5.0


def test_audit_folder_and_model_mistakes_are_usage_errors(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    a_file = tmp_path / "report.txt"
    a_file.write_text("")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "dc_invariant_model.json").write_text('{"class": "RotationInvariantModel", ')
    base = ["audit", "--smiles", "CCO", "--n-samples", "1"]
    cases = [
        ([*base, "--model", str(empty)], "holds no dc_invariant_model.json"),
        ([*base, "--model", str(broken)], "dc_invariant_model.json is not valid JSON"),
        ([*base, "--out", str(a_file)], "is a file"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        [line] = err.strip().splitlines()
        assert message in line and "Traceback" not in err
    out = ["--model", "rotation", "--out", str(tmp_path / "run")]
    assert main([*base, *out]) == 0
    capsys.readouterr()
    assert main([*base, *out]) == 2  # the same command again: say how to go on
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "add --resume to continue it" in line and "resume=True" not in line


def test_library_messages_name_flags_on_the_command_line(capsys):
    argv = ["featurize", "--smiles", "N.N.Cl[Pt]Cl", "CCN.Cl", "--force-field", "MMFF"]
    assert main([*argv, "--fragments", "error"]) == 1
    err = capsys.readouterr().err
    assert "--fragments largest keeps the largest" in err
    assert "fragments=" not in err and "force_field" not in err


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["featurize", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: all)" in text and "(default: 60)" in text and "(default: H,C,N" in text
    assert "(default: None)" not in text
    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: [])" not in text and "(default: none)" in text
    assert "exit status: 0" in text and "3 an unexpected failure" in text


def test_featurize_out_keeps_every_conformer_and_the_ids(tmp_path, capsys):
    csv = tmp_path / "m.csv"
    csv.write_text("name,smiles\nethanol,CCO\nphenol,c1ccccc1O\n")
    path = tmp_path / "ens.npz"
    argv = ["featurize", "--csv", str(csv), "--id-column", "name", "--n-conformers", "3"]
    assert main([*argv, "--out", str(path)]) == 0
    assert "ethanol" in capsys.readouterr().out
    saved = np.load(path)
    assert saved["ids"].tolist() == ["ethanol", "phenol"]
    assert saved["n_conformers"].tolist() == [3, 3]
    n_atoms = saved["n_atoms"]
    assert saved["ensemble"].shape == (3 * n_atoms.sum(), 3)
    from dc_invariant import ConformerFeaturizer

    again = ConformerFeaturizer(n_conformers=3).featurize(["CCO", "c1ccccc1O"])
    first = saved["ensemble"][: 3 * n_atoms[0]].reshape(3, n_atoms[0], 3)
    np.testing.assert_array_equal(first, again[0].ensemble)
    assert not np.allclose(first[0], first[1])  # three different geometries, not one
    assert not list(tmp_path.glob("*.tmp*"))


def test_ids_are_read_as_written_and_an_empty_one_names_its_line(tmp_path):
    csv = tmp_path / "m.csv"
    # NA and None are ids (pandas reads them as missing), and the blank line 4 still counts.
    csv.write_text("id,smiles\n007,CCO\n,CCN\n\nNA,C\nNone,CC\n12,c1ccccc1O\n")
    out = tmp_path / "audit"
    argv = ["audit", "--csv", str(csv), "--id-column", "id", "--model", "rotation"]
    assert main([*argv, "--symmetries", "translation", "--out", str(out), "--limit", "5"]) == 0
    table = pd.read_csv(
        out / "rotation" / "molecules.csv", dtype={"id": str}, keep_default_na=False
    )
    assert list(dict.fromkeys(table["id"])) == ["007", "line 3 (empty cell)", "NA", "None", "12"]


def test_a_target_that_crashes_exits_3_with_its_traceback(tmp_path, capsys):
    target = tmp_path / "crash.py"
    target.write_text(
        "import deepchem\n"
        "def make():\n"
        "    def f(r, x):\n"
        "        raise ZeroDivisionError('a bug in the target')\n"
        "    return f\n"
    )
    assert main(["audit", "--smiles", "CCO", "CCN", "--target", f"{target}:make"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError: a bug in the target" in err
    assert err.strip().splitlines()[-1].startswith("dc-invariant: unexpected failure")
    assert "deepchem" not in err.lower().split("traceback")[0]  # DeepChem's import noise held


def test_a_pipeline_mismatch_is_one_line_naming_both_and_the_shapes(tmp_path, capsys):
    target = tmp_path / "pipeline.py"
    target.write_text(
        "import deepchem as dc\n"
        "def make():\n"
        "    model = dc.models.MultitaskRegressor(1, 435)\n"
        "    return dc.feat.CoulombMatrix(30, upper_tri=True), model\n"
    )
    assert main(["audit", "--smiles", "CCO", "CCN", "--target", f"{target}:make"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "CoulombMatrix -> MultitaskRegressor" in line and "(465,)" in line


def test_one_line_reasons_a_user_can_act_on(tmp_path, capsys):
    csv = tmp_path / "m.csv"
    csv.write_text("name,smiles\nethanol,CCO\nblank,\nbad,C(C)(C)(C)(C)C\n")
    assert main(["featurize", "--csv", str(csv)]) == 0
    out, err = capsys.readouterr()
    assert "line 3 (empty cell)" in out and "no SMILES (an empty cell, read as NaN)" in err
    assert "Explicit valence for atom # 0 C, 5" in err
    npz = tmp_path / "x.npz"
    npz.write_bytes(b"")
    assert main(["featurize", "--smiles", "CCO", "--out", str(npz)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_forces_are_not_told_about_enantiomers(capsys):
    assert main(["audit", "--smiles", "CCO", "--model", "rotation", "--output", "vector"]) == 0
    out = capsys.readouterr().out
    assert "enantiomers" not in out and "reads the geometry" in out
    assert main(["audit", "--smiles", "CCO", "--model", "rotation"]) == 0
    assert "enantiomers" in capsys.readouterr().out


def test_a_folder_named_like_a_built_in_model_is_not_silently_replaced(
    tmp_path, monkeypatch, capsys
):
    from dc_invariant.models import RotationInvariantModel

    RotationInvariantModel(model_dir=str(tmp_path / "rotation"), seed=7).save_checkpoint()
    monkeypatch.chdir(tmp_path)
    argv = ["audit", "--smiles", "CCO", "--n-samples", "1", "--symmetries", "rotation"]
    # An untrained built-in used to be audited in place of the saved model.
    assert main([*argv, "--model", "rotation"]) == 2
    assert "write ./rotation for the saved model" in capsys.readouterr().err
    assert main([*argv, "--model", "./rotation"]) == 0


def test_an_empty_value_is_refused_not_read_as_absent(tmp_path, capsys):
    # An unset shell variable must not fall back to the built-in molecules or models.
    for argv in (
        ["audit", "--csv", "", "--require", "rotation"],
        ["audit", "--smiles", "CCO", "--out", ""],
        ["audit", "--smiles", "CCO", "--target", "", "--model", "rotation"],
        ["featurize", "--smiles", "CCO", "--out", " "],
    ):
        assert main(argv) == 2, argv
        assert "was given an empty value" in capsys.readouterr().err
    assert not os.listdir(tmp_path)


def test_each_model_reports_in_its_own_folder_inside_out(tmp_path, capsys, monkeypatch):
    base = ["audit", "--smiles", "CCO", "--n-samples", "1", "--symmetries", "translation"]
    first, second = tmp_path / "a" / "m", tmp_path / "b" / "m"
    out = tmp_path / "out"
    assert main([*base, "--model", "rotation", "--model", "rotation", "--out", str(out)]) == 2
    assert "named twice" in capsys.readouterr().err
    # Two saved models in folders of the same name: refused before either is audited.
    from dc_invariant.models import RotationInvariantModel

    for folder in (first, second):
        RotationInvariantModel(n_features=11, seed=0, model_dir=str(folder)).save_checkpoint()
    assert main([*base, "--model", str(first), "--model", str(second), "--out", str(out)]) == 2
    assert "to the same folder" in capsys.readouterr().err and not out.exists()
    # ".." is the saved model's folder "m": its reports go to out/m, not beside out.
    (first / "sub").mkdir()
    monkeypatch.chdir(first / "sub")
    assert main([*base, "--model", "..", "--out", str(out)]) == 0
    assert os.listdir(out) == ["m"] and (out / "m" / "audit.json").is_file()


def test_audit_out_never_overwrites_reports_without_resume(tmp_path, capsys):
    argv = ["audit", "--model", "rotation", "--n-samples", "1", "--symmetries", "translation"]
    out = tmp_path / "out"
    assert main([*argv, "--smiles", "CCO", "--out", str(out)]) == 0
    report = (out / "rotation" / "audit.json").read_text()
    shutil.rmtree(out / "rotation" / "chunks")  # the store removed to save space
    capsys.readouterr()
    assert main([*argv, "--smiles", "CC", "--out", str(out)]) == 2
    assert "already holds audit results" in capsys.readouterr().err
    assert (out / "rotation" / "audit.json").read_text() == report


def test_a_row_of_empty_cells_is_a_failure_a_blank_line_is_not(tmp_path, capsys):
    csv = tmp_path / "m.csv"
    csv.write_text('smiles\nCCO\n""\n\nCC\n')
    assert main(["featurize", "--csv", str(csv)]) == 0
    assert "2 of 3 molecules featurized" in capsys.readouterr().out
    two = tmp_path / "two.csv"
    two.write_text("smiles,name\nCCO,a\n,\n\nCC,c\n")
    assert main(["featurize", "--csv", str(two), "--id-column", "name"]) == 0
    assert "2 of 3 molecules featurized" in capsys.readouterr().out
