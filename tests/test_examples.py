import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

# Each example runs as a subprocess.
pytestmark = pytest.mark.slow

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))

# What each example must print in its --small run.
EXPECTED = {
    "audit_coulomb_featurizers": ["verdicts match the featurizers' definitions: True"],
    "conformer_sensitivity": ["flexible molecules spread more than rigid ones: True"],
    "kernel_model_qm9": [
        "better than the mean by 10x: True",
        "reloaded model predicts identically: True",
        "all four symmetries hold: True",
        "within 1.5x of the exact fit: True",
    ],
    "kernel_conformer_ensembles": [
        "averaging the kernel changes the test MAE by",
        'conformers="average": test MAE',
        "reloaded model predicts identically: True",
    ],
    "featurize_csv": ["20 molecules featurized", "labels aligned with molecules: True"],
    "scale_out": [
        "same conformers as a serial run: True",
        "same audit report as a serial run: True",
    ],
    "train_invariant_model": [
        "forces rotate with the molecule",
        "model beats per-element least squares (it learned the geometry): True",
    ],
    "tutorial_tables": ["tutorial reproduced"],
}


def test_every_example_has_expectations():
    assert {p.stem for p in EXAMPLES} == set(EXPECTED)


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Run by a test of their own that also recomputes the figures they print.
CHECKED_SEPARATELY = {"train_invariant_model"}


@pytest.mark.parametrize(
    "path",
    [p for p in EXAMPLES if p.stem not in CHECKED_SEPARATELY],
    ids=[p.stem for p in EXAMPLES if p.stem not in CHECKED_SEPARATELY],
)
def test_example_runs_small(path, capsys):
    assert load(path).main(["--small"]) == 0
    out = capsys.readouterr().out
    for text in EXPECTED[path.stem]:
        assert text in out


def test_training_example_prints_figures_that_recompute(capsys):
    (path,) = [p for p in EXAMPLES if p.stem == "train_invariant_model"]
    module = load(path)
    result = module.run(small=True)
    assert module.report(result) == 0
    out = capsys.readouterr().out
    for text in EXPECTED[path.stem]:
        assert text in out
    printed = {
        key: float(re.search(rf"{label}:\s+(-?[\d.]+)", out).group(1))
        for key, label in (
            ("baseline", "predicting the training mean"),
            ("composition", "per-element least squares"),
            ("model", "trained SchNetModel"),
        )
    }
    train, test = result["train"], result["test"]
    # Independently: predictions against the labels, in label units, no transformers.
    model_mae = np.abs(result["model"].predict(test)[:, 0] - test.y[:, 0]).mean()
    baseline_mae = np.abs(test.y[:, 0] - np.mean(train.y)).mean()
    assert printed["model"] == pytest.approx(model_mae, abs=1e-3)
    assert printed["baseline"] == pytest.approx(baseline_mae, abs=1e-3)
    # The labels are an extensive energy with a geometric term: the mean is a poor model,
    # composition a good one, and the trained network must beat composition: its offsets
    # alone beat the mean before any training step.
    assert printed["composition"] < printed["baseline"]
    assert printed["model"] < printed["composition"]
