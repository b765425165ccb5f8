"""The command line, through main(argv)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from skmtl.cli import main


def test_help_is_fast_and_does_not_import_tensorflow():
    code = ("import sys; from skmtl.cli import build_parser; build_parser(); "
            "import skmtl; assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
    out = subprocess.run([sys.executable, "-m", "skmtl", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "demo" in out and "backbones" in out


def test_backbones_lists_the_zoo(capsys):
    assert main(["backbones", "--offline"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_lite0" in out and "224" in out and "xception" not in out


def test_demo_runs_offline_and_writes_a_submission(tmp_path, capsys):
    out = tmp_path / "demo.csv"
    assert main(["demo", "--n-images", "100", "--cv", "3", "--out", str(out),
                 "--cache", str(tmp_path / "cache"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    accuracy = float(printed.split("accuracy")[1].split()[0])
    assert accuracy > 0.6  # 100 digits, 10 classes: chance is 0.1
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["id", *map(str, range(10))] and len(frame) == 100
    assert (frame.iloc[:, 1:].sum(axis=1) - 1).abs().max() < 1e-6


def test_user_errors_are_one_line_and_debug_shows_the_traceback(capsys):
    assert main(["demo", "--backbone", "resnet5O", "--n-images", "10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skmtl demo: error: Unknown backbone 'resnet5O'")
    assert "Traceback" not in err
    with pytest.raises(ValueError, match="Unknown backbone"):
        main(["--debug", "demo", "--backbone", "resnet5O", "--n-images", "10"])


@pytest.fixture(scope="module")
def competition(tmp_path_factory, sample_photos):
    """A tiny competition: train/<class>/, labels.csv + images/, test/, sample submission."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("competition")
    rng = np.random.default_rng(0)
    rows = []
    for label, photo in zip(["temple", "flower"], sample_photos, strict=True):
        h, w = photo.shape[:2]
        for k in range(9):
            top, left = rng.integers(0, h // 3), rng.integers(0, w // 3)
            crop = Image.fromarray(photo[top : top + h // 2, left : left + w // 2])
            (root / "train" / label).mkdir(parents=True, exist_ok=True)
            crop.save(root / "train" / label / f"{label}{k}.jpg")
            (root / "images").mkdir(exist_ok=True)
            crop.save(root / "images" / f"{label}{k}.jpg")
            rows.append((f"{label}{k}", label))
            if k < 2:
                (root / "test").mkdir(exist_ok=True)
                crop.save(root / "test" / f"t_{label}{k}.jpg")
    pd.DataFrame(rows, columns=["id", "kind"]).to_csv(root / "labels.csv", index=False)
    ids = sorted(p.stem for p in (root / "test").iterdir())[::-1]
    pd.DataFrame({"id": ids, "temple": 0.5, "flower": 0.5}).to_csv(root / "sample.csv",
                                                                    index=False)
    return root


def test_fit_then_predict_from_a_folder(competition, tmp_path, capsys):
    model = tmp_path / "model.joblib"
    assert main(["fit", "--train", str(competition / "train"), "--backbones",
                 "efficientnet_lite0", "--cv", "3", "--cache", str(tmp_path / "c"),
                 "--out", str(model), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "3-fold CV on 18 images" in printed
    assert float(printed.split("accuracy ")[1].split(";")[0]) >= 0.9
    out = tmp_path / "sub.csv"
    assert main(["predict", "--model", str(model), "--test", str(competition / "test"),
                 "--sample-submission", str(competition / "sample.csv"), "--out", str(out),
                 "--quiet"]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["id", "temple", "flower"]
    assert list(frame.id) == list(pd.read_csv(competition / "sample.csv").id)
    predicted = frame[["temple", "flower"]].idxmax(axis=1)
    assert (predicted == [i[2:].rstrip("0123456789") for i in frame.id]).all()


def test_fit_from_labels_csv_and_binary_submission(competition, tmp_path, capsys):
    model = tmp_path / "m.joblib"
    assert main(["fit", "--train", str(competition / "labels.csv"), "--images",
                 str(competition / "images"), "--backbones", "efficientnet_lite0",
                 "--cv", "2", "--tta", "none", "--out", str(model), "--quiet"]) == 0
    out = tmp_path / "binary.csv"
    assert main(["predict", "--model", str(model), "--test", str(competition / "test"),
                 "--kind", "binary", "--out", str(out), "--quiet"]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["id", "label"] and frame.label.between(0, 1).all()
    capsys.readouterr()
    assert main(["fit", "--train", str(competition / "labels.csv"), "--out",
                 str(tmp_path / "x.joblib")]) == 2
    assert "--images DIR is needed" in capsys.readouterr().err
    assert main(["predict", "--model", str(tmp_path / "none.joblib"), "--test",
                 str(competition / "test")]) == 2
    assert "none.joblib' does not exist" in capsys.readouterr().err
