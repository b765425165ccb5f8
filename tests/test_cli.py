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
