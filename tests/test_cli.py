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


# ---------------------------------------------------------------- the flags of issue 17
#: A fast model: Lite0 with random weights on 32x32 images, 2 folds.
FAST = ["--backbones", "efficientnet_lite0", "--weights", "none", "--input-size", "32",
        "--cv", "2", "--quiet"]


def _fit(competition, model, *extra):
    return main(["fit", "--train", str(competition / "train"), "--out", str(model), *FAST,
                 *extra])


def test_option_values_are_parsed_never_evaluated():
    from skmtl.cli._options import parse_head_params, parse_input_size, parse_weights

    params = parse_head_params(["C=0.1", "cv=5", "fit_intercept=false", "Cs=0.01,1",
                                "class_weight=none", "solver=__import__('os')"])
    assert params == {"C": 0.1, "cv": 5, "fit_intercept": False, "Cs": [0.01, 1],
                      "class_weight": None, "solver": "__import__('os')"}
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_head_params(["C"])
    with pytest.raises(ValueError, match="'bogus' is not a parameter"):
        parse_head_params(["bogus=1"], valid=["C"])
    assert parse_input_size("64") == 64 and parse_input_size("48x64") == (48, 64)
    with pytest.raises(ValueError, match="expected N or HxW"):
        parse_input_size("big")
    two = ["efficientnet_lite0", "efficientnet_lite1"]
    assert parse_weights(["w.h5"], ["efficientnet_lite0"]) == {"efficientnet_lite0": "w.h5"}
    assert parse_weights(["none"], two) == dict.fromkeys(two)
    assert parse_weights(["efficientnet_lite1=/x/y=z.h5"], two) == {
        "efficientnet_lite1": "/x/y=z.h5"}
    with pytest.raises(ValueError, match="say which one"):
        parse_weights(["w.h5"], two)
    with pytest.raises(ValueError, match="'resnet50' is not one of the backbones"):
        parse_weights(["resnet50=w.h5"], two)


def test_fit_flags_reach_the_model_and_oof_is_written(competition, tmp_path, capsys):
    import joblib

    model, oof = tmp_path / "m.joblib", tmp_path / "oof.csv"
    assert _fit(competition, model, "--seed", "3", "--batch-size", "4", "--device", "cpu",
                "--head-param", "C=0.5", "--head-param", "cv=2", "--oof", str(oof)) == 0
    assert f"out-of-fold probabilities to {oof}" in capsys.readouterr().out
    fitted = joblib.load(model)
    assert fitted.random_state == 3 and len(fitted.estimators_) == 2
    for member in fitted.estimators_:
        featurizer = member.named_steps["features"].transformer_list[0][1]
        assert (featurizer.weights, featurizer.input_size, featurizer.batch_size,
                featurizer.device, featurizer.random_state) == (None, 32, 4, "cpu", 3)
        head = member.named_steps["head"]
        head = getattr(head, "estimator", head)
        assert (head.C, head.cv, head.random_state) == (0.5, 2, 3)
    frame = pd.read_csv(oof)
    assert list(frame.columns) == ["id", "flower", "temple"] and len(frame) == 18
    assert "temple/temple0" in set(frame.id)
    assert abs(frame[["flower", "temple"]].to_numpy() - fitted.oof_proba_).max() < 1e-7
    # the seed is the only source of randomness: same seed, same out-of-fold probabilities
    again = tmp_path / "oof2.csv"
    assert _fit(competition, tmp_path / "m2.joblib", "--seed", "3", "--head-param", "C=0.5",
                "--head-param", "cv=2", "--oof", str(again)) == 0
    assert again.read_bytes() == oof.read_bytes()


def test_fit_oof_ids_come_from_the_labels_csv(competition, tmp_path):
    oof = tmp_path / "oof.csv"
    assert main(["fit", "--train", str(competition / "labels.csv"), "--images",
                 str(competition / "images"), "--out", str(tmp_path / "m.joblib"),
                 "--oof", str(oof), *FAST]) == 0
    ids = pd.read_csv(oof, dtype=str).id
    assert sorted(ids) == sorted(pd.read_csv(competition / "labels.csv", dtype=str).id)


@pytest.fixture(scope="module")
def fast_model(competition, tmp_path_factory):
    model = tmp_path_factory.mktemp("fast") / "model.joblib"
    assert _fit(competition, model) == 0
    return model


def test_predict_from_a_test_csv_equals_the_folder(competition, fast_model, tmp_path):
    folder, listed = tmp_path / "folder.csv", tmp_path / "listed.csv"
    sample = competition / "sample.csv"
    assert main(["predict", "--model", str(fast_model), "--test", str(competition / "test"),
                 "--sample-submission", str(sample), "--out", str(folder), "--quiet"]) == 0
    assert main(["predict", "--model", str(fast_model), "--test-csv", str(sample),
                 "--images", str(competition / "test"), "--sample-submission", str(sample),
                 "--batch-size", "3", "--device", "cpu", "--out", str(listed),
                 "--quiet"]) == 0
    a, b = pd.read_csv(folder), pd.read_csv(listed)
    assert list(a.id) == list(b.id) == list(pd.read_csv(sample).id)
    assert abs(a[["temple", "flower"]] - b[["temple", "flower"]]).to_numpy().max() < 1e-6


def test_predict_cache_override(competition, fast_model, tmp_path):
    cache = tmp_path / "features"
    out = tmp_path / "sub.csv"
    args = ["predict", "--model", str(fast_model), "--test", str(competition / "test"),
            "--out", str(out), "--quiet"]
    assert main([*args, "--cache", str(cache)]) == 0
    from skmtl.cli.cache import cache_info

    assert sum(folder.images for folder in cache_info(cache)) == 4  # the 4 test images
    first = out.read_bytes()
    assert main([*args, "--cache", "none"]) == 0
    assert out.read_bytes() == first
    assert main([*args, "--cache", str(cache)]) == 0  # served from the cache
    assert out.read_bytes() == first


def test_weights_file_for_a_backbone(competition, tmp_path, capsys):
    import keras

    from skmtl.backbones import build_backbone

    weights = tmp_path / "lite0.weights.h5"
    keras.utils.set_random_seed(7)
    build_backbone("efficientnet_lite0", weights=None, input_size=32).save_weights(weights)
    model, out = tmp_path / "m.joblib", tmp_path / "sub.csv"
    assert main(["fit", "--train", str(competition / "train"), "--out", str(model),
                 "--backbones", "efficientnet_lite0", "--weights", str(weights),
                 "--input-size", "32", "--cv", "2", "--quiet"]) == 0
    test = ["predict", "--model", str(model), "--test", str(competition / "test"), "--quiet"]
    assert main([*test, "--out", str(out)]) == 0
    moved = tmp_path / "elsewhere.weights.h5"
    weights.rename(moved)  # as on Kaggle: the file is attached at another path
    capsys.readouterr()
    assert main([*test, "--out", str(tmp_path / "x.csv")]) == 2
    assert "lite0.weights.h5' for backbone 'efficientnet_lite0' does not exist" in \
        capsys.readouterr().err
    assert main([*test, "--weights", f"efficientnet_lite0={moved}",
                 "--out", str(tmp_path / "y.csv")]) == 0
    assert (tmp_path / "y.csv").read_bytes() == out.read_bytes()


@pytest.mark.parametrize("argv, message", [
    (["fit", "--train", "T", *FAST, "--head-param", "bogus=1"],
     "'bogus' is not a parameter of the logistic head"),
    (["fit", "--train", "T", "--head-param", "C"], "expected KEY=VALUE"),
    (["fit", "--train", "T", "--input-size", "big"], "expected N or HxW"),
    (["fit", "--train", "T", "--batch-size", "0"], "--batch-size 0"),
    (["fit", "--train", "T", "--backbones", "efficientnet_lite0,efficientnet_lite1",
      "--weights", "w.h5"], "say which one"),
    (["fit", "--train", "T", "--seed", "x"], "argument --seed: invalid int value"),
    (["predict", "--model", "m.joblib"], "give the test images as --test DIR"),
    (["predict", "--model", "m.joblib", "--test", "a", "--test-csv", "b.csv"],
     "give the test images as --test DIR"),
    (["predict", "--model", "m.joblib", "--test-csv", "b.csv"], "--images DIR is needed"),
    (["bundle"], "the following arguments are required: out"),
    (["fit"], "the following arguments are required: --train"),
])
def test_every_cli_error_is_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "T" / "a").mkdir(parents=True)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and err.startswith("skmtl")


def test_test_csv_names_missing_images(competition, tmp_path):
    from skmtl.io.datasets import load_test_csv

    ids = tmp_path / "ids.csv"
    pd.DataFrame({"id": ["t_temple0", "t_flower1.jpg", "nope"]}).to_csv(ids, index=False)
    with pytest.raises(ValueError, match=r"1 ids in 'ids\.csv' have no image .*nope"):
        load_test_csv(ids, competition / "test")
    pd.DataFrame({"id": ["t_temple0", "t_flower1.jpg"]}).to_csv(ids, index=False)
    frame = load_test_csv(ids, competition / "test")
    assert list(frame.id) == ["t_temple0", "t_flower1.jpg"]
    assert [p.rsplit("/", 1)[1] for p in frame.path] == ["t_temple0.jpg", "t_flower1.jpg"]
