"""An offline bundle: everything a Kaggle notebook without internet needs besides its image.

Layout (fixed, so that scripts can rely on it)::

    <bundle>/wheels/          skmtl and every distribution it needs that the image lacks
    <bundle>/skmtl-home/      SKMTL_HOME: weights/ (converted EfficientNet-Lite weights)
                              and keras/models/ (Keras ImageNet weight files)
    <bundle>/model.joblib     the fitted model, and model.joblib.sha256 (when given)
    <bundle>/weights/<name>/  local weights files the model was fitted with (when any)
    <bundle>/features/        the feature cache (when given)
    <bundle>/README.md        the two cells to paste
    <bundle>/manifest.json    what is where, and where each wheel came from

``pip install --no-index --find-links <bundle>/wheels skmtl`` installs what is missing, and
``SKMTL_HOME=<bundle>/skmtl-home`` finds the weights; the folder is only read.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

from skmtl.cli import _wheels

__all__ = ["KAGGLE_IMAGE", "make_bundle"]

#: What the Kaggle Python image has (with everything these need): not bundled.
KAGGLE_IMAGE = ("tensorflow", "keras", "scikit-learn", "numpy", "pandas", "pillow", "tqdm",
                "joblib")

WHEELS = "wheels"
HOME = "skmtl-home"
MODEL = "model.joblib"
FEATURES = "features"
WEIGHTS = "weights"


def source_tree() -> Path | None:
    """The source tree skmtl is imported from (with its pyproject.toml), if any."""
    root = Path(__file__).resolve().parents[2]  # <root>/skmtl/cli/_bundle.py
    return root if (root / "pyproject.toml").is_file() else None


def model_backbones(model: Any) -> dict[str, Any]:
    """Backbone name -> weights ("imagenet", None or a path) of a fitted model's featurizers."""
    from skmtl.ensemble import featurizers_in

    found: dict[str, Any] = {}
    for member in getattr(model, "estimators_", [model]):
        for featurizer in featurizers_in(getattr(member, "features_", member)):
            if isinstance(featurizer.backbone, str):
                found.setdefault(featurizer.backbone, featurizer.weights)
    if not found:
        raise ValueError("The model holds no featurizer of a named backbone.")
    return found


def bundle_wheels(folder: Path, *, offline: bool, present: tuple[str, ...] = KAGGLE_IMAGE
                  ) -> dict[str, str]:
    """skmtl's wheel and those of its missing requirements into ``folder``; wheel -> source
    ("source tree", "index" or "installed (repacked)")."""
    sources: dict[str, str] = {}
    tree = source_tree()
    if tree is not None:
        own = _wheels.build_source_wheel(tree, folder)
        sources[own.name] = "source tree"
    else:
        own, _ = _wheels.repack_installed("skmtl", folder)
        sources[own.name] = "installed (repacked)"
    needed = _wheels.missing_requirements(_wheels.wheel_requirements(own), set(present))
    for name, version in sorted(needed.items()):
        if not offline:
            try:
                sources[_wheels.download_wheel(name, version, folder).name] = "index"
                continue
            except (OSError, ValueError) as exc:
                warnings.warn(f"{exc}; repacking the installed {name} {version} instead.",
                              RuntimeWarning, stacklevel=2)
        wheel, skipped = _wheels.repack_installed(name, folder)
        sources[wheel.name] = "installed (repacked)" + (
            f", left out: {', '.join(skipped)}" if skipped else "")
    return sources


def bundle_weights(home: Path, backbones: dict[str, Any], bundle: Path) -> dict[str, str]:
    """Weights of ``backbones`` into ``home`` (ImageNet) or ``bundle/weights`` (files)."""
    from skmtl.backbones import get_backbone_spec
    from skmtl.backbones.registry import _keras_cache_dir, bundled_keras_weights_dir

    placed: dict[str, str] = {}
    for name, weights in backbones.items():
        spec = get_backbone_spec(name)
        if weights is None:
            placed[name] = "random weights: nothing to bundle"
        elif not (isinstance(weights, str) and weights == "imagenet"):
            source = Path(weights)
            if not source.is_file():
                raise FileNotFoundError(f"Weights file '{source}' of backbone '{name}' does "
                                        "not exist.")
            target = bundle / WEIGHTS / name / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            placed[name] = target.relative_to(bundle).as_posix()
        elif spec.family == "efficientnet_lite":
            from skmtl.backbones.lite import save_converted_weights

            (home / "weights").mkdir(parents=True, exist_ok=True)
            target = save_converted_weights(int(name[-1]), home / "weights")
            placed[name] = target.relative_to(bundle).as_posix()
        else:
            found = [d / spec.weights_file for d in (_keras_cache_dir(),
                                                     bundled_keras_weights_dir())
                     if spec.weights_file and (d / spec.weights_file).is_file()]
            if not found:
                raise FileNotFoundError(
                    f"The ImageNet weights of '{name}' ({spec.weights_file}) are not in the "
                    f"local Keras cache '{_keras_cache_dir()}': build the backbone once with "
                    f"network (python -c \"import skmtl; skmtl.build_backbone('{name}')\"), "
                    "then bundle again.")
            target = home / "keras" / "models" / spec.weights_file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(found[0], target)
            placed[name] = target.relative_to(bundle).as_posix()
    return placed


def copy_model(source: Path, target: Path) -> None:
    """Copy a model file byte for byte, and write its checksum file (named for ``target``)
    once the copy is checked against the source's checksum file."""
    from skmtl.cli._model_file import _recorded_sha256, checksum_path, file_sha256

    shutil.copyfile(source, target)
    digest = file_sha256(target)
    if digest != _recorded_sha256(checksum_path(source), source):
        raise ValueError(f"Model file '{source}' does not match its checksum file.")
    checksum_path(target).write_text(f"{digest}  {target.name}\n", encoding="utf-8")


def make_bundle(out: str | Path, *, model: str | Path | None = None,
                backbones: list[str] | None = None, cache: str | Path | None = None,
                offline: bool = False) -> dict[str, Any]:
    """Write the bundle folder ``out`` (new or empty) and return its manifest.

    ``model`` (a file written by ``skmtl fit``, checked against its checksum) is copied,
    and its backbones' weights are bundled; ``backbones`` adds ImageNet weights of more
    backbones (default without a model: the CLI's three Lite backbones). ``cache`` is a
    feature cache folder to copy. ``offline`` never asks the package index: the wheels
    of skmtl's requirements are then repacked from the installed distributions.
    """
    from skmtl.cli._model_file import checksum_path, load_model
    from skmtl.cli.fit import DEFAULT_BACKBONES

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"'{out}' exists and is not an empty folder; give a new one.")
    chosen: dict[str, Any] = {}
    fitted = None
    if model is not None:
        if not checksum_path(model).is_file():
            raise ValueError(f"Model file '{model}' has no checksum file beside it; bundle "
                             "only models written by 'skmtl fit'.")
        fitted = load_model(model)
        chosen.update(model_backbones(fitted))
    if backbones or model is None:
        names = backbones or DEFAULT_BACKBONES.split(",")
        chosen.update({n: "imagenet" for n in names if n not in chosen})
    if cache is not None and not Path(cache).is_dir():
        raise FileNotFoundError(f"Feature cache folder '{cache}' does not exist.")

    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"layout": {"wheels": WHEELS, "skmtl_home": HOME}}
    manifest["weights"] = bundle_weights(out / HOME, chosen, out)
    (out / HOME).mkdir(exist_ok=True)
    if fitted is not None:
        copy_model(Path(model), out / MODEL)
        manifest["layout"]["model"] = MODEL
    if cache is not None:
        shutil.copytree(cache, out / FEATURES)
        manifest["layout"]["features"] = FEATURES
    manifest["wheels"] = bundle_wheels(out / WHEELS, offline=offline)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    (out / "README.md").write_text(readme(out.name, manifest), encoding="utf-8")
    return manifest


def readme(name: str, manifest: dict[str, Any]) -> str:
    """The bundle's README: what it holds and the two notebook cells to paste."""
    layout = manifest["layout"]
    root = f"/kaggle/input/{name}"
    lines = [
        f"# {name}: skmtl for notebooks without internet",
        "",
        "Made by `skmtl bundle`. Upload this folder as a Kaggle dataset, add it to the "
        "notebook (Add Input), and paste the two cells below (change BUNDLE if Kaggle "
        "named the dataset differently, and COMP to the competition's folder).",
        "",
        "Cell 1, install what the Kaggle image lacks (no index needed):",
        "",
        "```",
        f"!pip install --no-index --find-links {root}/{WHEELS} skmtl",
        "```",
        "",
        "Cell 2, point skmtl at the bundled weights and predict:",
        "",
        "```python",
        "import os",
        f'BUNDLE = "{root}"',
        'COMP = "/kaggle/input/<competition>"',
        f'os.environ["SKMTL_HOME"] = f"{{BUNDLE}}/{HOME}"  # only read, never written',
    ]
    if "model" in layout:
        lines.append(f"!skmtl predict --model {{BUNDLE}}/{MODEL} "
                     "--test-csv {COMP}/sample_submission.csv --images {COMP}/test "
                     "--sample-submission {COMP}/sample_submission.csv "
                     "--cache /kaggle/working/features --out submission.csv")
    else:
        lines.append("!skmtl fit --train {COMP}/train --cache /kaggle/working/features "
                     "--out model.joblib")
    lines += ["```", "", "Contents:", "",
              f"- `{WHEELS}/`: " + ", ".join(f"`{w}` ({s})"
                                            for w, s in manifest["wheels"].items()),
              f"- `{HOME}/`: " + "; ".join(f"{k}: `{v}`" for k, v in manifest["weights"].items())]
    if "model" in layout:
        lines.append(f"- `{MODEL}` and `{MODEL}.sha256` (checked by `skmtl predict`; a model "
                     "file is a pickle: use only your own)")
    if "features" in layout:
        lines.append(f"- `{FEATURES}/`: the feature cache. Kaggle inputs are read-only: copy "
                     f"it first (`!cp -r {{BUNDLE}}/{FEATURES} /kaggle/working/features`) so "
                     "that new images can be added to it.")
    if any(v.startswith(f"{WEIGHTS}/") for v in manifest["weights"].values()):
        lines.append(f"- `{WEIGHTS}/`: local weights files the model was fitted with; pass "
                     f"`--weights NAME={{BUNDLE}}/{WEIGHTS}/NAME/FILE` to `skmtl predict`.")
    return "\n".join(lines) + "\n"
