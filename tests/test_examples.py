"""Every example in examples/ runs, on small settings (``--quick``), and writes its outputs.

Each runs in a subprocess, as a user runs it (``python examples/<name>.py --quick``), with
this checkout first on the path. The digits examples need nothing but scikit-learn's data;
those on ../shared/data skip when it is absent; one heavy composition is marked slow.
Figures are checked when matplotlib is installed (the ``docs``/``examples`` extras, part
of ``dev``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared_data

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

#: example, extra arguments, shared data set (or None), files it must write, figures.
CASES = [
    ("digits_upscaled", [], None, ["digits_oof.csv"],
     ["digits_confusion.png", "digits_reliability.png", "digits_wrong.png",
      "digits_learning_curve.png"]),
    ("multi_backbone", ["--dataset", "digits"], None, ["multibranch_heldout.csv"],
     ["multibranch_training.png", "multibranch_confusion.png"]),
    ("submission_from_folder", [], None, ["submission.csv"], []),
    ("stacking", [], "cats_dogs", ["stacking_submission.csv"], []),
    ("cat_breeds_recipe", [], "cat_breeds", ["cat_breeds_submission.csv"], []),
    ("birds_kfold_flip", [], "birds", ["birds_submission.csv"], ["birds_reliability.png"]),
    ("stack_finetuned", [], "cats_dogs", ["stack_finetuned_val.csv"], []),
]

#: Quick runs whose first printed accuracy must beat chance by far (digits: 10%, 50%).
MIN_ACCURACY = {"digits_upscaled": 0.8, "submission_from_folder": 0.9}


def _run(name: str, args: list[str], out: Path) -> str:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--quick", "--out", str(out), *args],
        capture_output=True, text=True, env=env, timeout=900, check=False)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    return done.stdout


#: Left to ``pytest -m slow``: the cat breeds recipe composes the multi-branch head, flips
#: and K folds, which the other examples run one or two at a time; its quick run trains
#: 3 folds x 2 Keras members and took 2 minutes of the suite's 15 (the others 10-75 s).
#: The fine-tuned stack trains two backbones end to end per fold (minutes on a CPU). The
#: other examples on ../shared/data (10-25 s each) go with them, to keep the default suite
#: under 15 minutes; .ci/run runs every slow example after it.
SLOW = {"cat_breeds_recipe", "stack_finetuned", "multi_backbone", "birds_kfold_flip",
        "stacking"}


def _marks(name: str, data: str | None) -> list:
    return ([pytest.mark.shared_data] if data else []) + (
        [pytest.mark.slow] if name in SLOW else [])


@pytest.mark.parametrize(
    ("name", "args", "data", "files", "figures"),
    [pytest.param(*case, id=case[0], marks=_marks(case[0], case[2])) for case in CASES])
def test_example_runs(name, args, data, files, figures, tmp_path):
    if data is not None:
        shared_data(data)
    stdout = _run(name, args, tmp_path)
    for file in files + (figures if HAS_MATPLOTLIB else []):
        assert (tmp_path / file).is_file(), f"{name} did not write {file}:\n{stdout}"
    for file in files:
        import pandas as pd

        frame = pd.read_csv(tmp_path / file)
        assert len(frame) > 0 and frame.columns[0] == "id"
        assert frame.iloc[:, 1:].notna().all().all()
    if name in MIN_ACCURACY:  # a bug that scrambles labels or columns falls to chance
        line = next(s for s in stdout.splitlines() if "accuracy " in s)
        accuracy = float(line.split("accuracy ")[1].split(",")[0])
        assert accuracy > MIN_ACCURACY[name], line


def test_every_example_is_run():
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")}
    assert scripts == {case[0] for case in CASES}

