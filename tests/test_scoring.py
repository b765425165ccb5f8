"""skmtl score: Kaggle's multi-class log loss, accuracy and calibration error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from skmtl.cli import main
from skmtl.scoring import expected_calibration_error, reliability_table, score_submission


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    classes = ["cat", "dog", "emu"]
    proba = rng.dirichlet([1, 1, 1], size=40)
    truth = rng.choice(classes, 40)
    ids = [f"{i:04d}" for i in range(40)]
    sub = pd.DataFrame(proba, columns=classes)
    sub.insert(0, "id", ids)
    # columns and rows in another order than the solution's: matched by name and id
    sub = sub[["id", "emu", "cat", "dog"]].iloc[::-1]
    sol = pd.DataFrame({"id": ids, "species": truth})
    sub.to_csv(tmp_path / "sub.csv", index=False)
    sol.to_csv(tmp_path / "sol.csv", index=False)
    return tmp_path / "sub.csv", tmp_path / "sol.csv", proba, truth, classes


def test_scores_match_scikit_learn(files):
    sub, sol, proba, truth, classes = files
    scores = score_submission(sub, sol)
    assert scores["log_loss"] == pytest.approx(log_loss(truth, proba, labels=classes))
    assert scores["accuracy"] == pytest.approx(
        np.mean(np.array(classes)[proba.argmax(1)] == truth))
    assert scores["n_rows"] == 40


def test_log_loss_clips_and_renormalises_like_kaggle(tmp_path):
    sub = pd.DataFrame({"id": ["a", "b"], "x": [0.0, 2.0], "y": [1.0, 2.0]})
    sol = pd.DataFrame({"id": ["a", "b"], "label": ["x", "x"]})
    scores = score_submission(sub, sol)
    assert scores["log_loss"] == pytest.approx((-np.log(1e-15) - np.log(0.5)) / 2, rel=1e-6)


def test_calibration_error_of_perfectly_and_badly_calibrated_predictions():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 20000)
    correct = rng.uniform(size=20000) < confidence  # right as often as it says
    proba = np.stack([confidence, 1 - confidence], axis=1)
    labels = np.where(correct, 0, 1)
    assert expected_calibration_error(proba, labels) < 0.01
    always_right = np.zeros(20000, dtype=int)
    assert expected_calibration_error(proba, always_right) == pytest.approx(
        1 - confidence.mean(), abs=1e-9)
    table = reliability_table(proba, labels)
    assert table["count"].sum() == 20000 and (table.low >= 0.45).all()


def test_cli_prints_one_line_and_errors_are_one_line(files, capsys, tmp_path):
    sub, sol = files[:2]
    assert main(["score", str(sub), str(sol)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("40 rows: log loss ") and out.count("\n") == 1
    wrong = pd.read_csv(sol, dtype=str).assign(species="yak")
    wrong.to_csv(tmp_path / "wrong.csv", index=False)
    assert main(["score", str(sub), str(tmp_path / "wrong.csv")]) == 2
    err = capsys.readouterr().err
    assert "no column for the classes" in err and "yak" in err and err.count("\n") == 1
    assert main(["score", str(sub), str(tmp_path / "absent.csv")]) == 2
    assert "absent.csv" in capsys.readouterr().err
