"""Helpers the examples share: where the data sets are, and the figures they draw.

Not part of skmtl. Figures need matplotlib (``pip install -e ".[examples]"``); without it
the examples still run and write everything else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

#: ../shared/data next to the repository (see its README); absent on a fresh machine.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with the options every example has."""
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small settings (a subset, small images): a smoke run of a minute")
    p.add_argument("--out", type=Path, default=Path("example_output"),
                   help="folder for the submission and the figures")
    p.add_argument("--cache", default=None,
                   help="per-image feature cache folder (a rerun computes nothing)")
    return p


def require(path: Path, what: str) -> Path:
    """``path``, or exit with status 2 and a message saying where the data should be."""
    if not path.exists():
        sys.exit(f"{what} not found at {path}; pass --data (see ../shared/data/README.md).")
    return path


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no figures (pip install -e '.[examples]')")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"wrote {path}")
    return path


def confusion_matrix_figure(y_true, y_pred, classes, path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix (each row: where that class's images went)."""
    plt = _pyplot()
    if plt is None:
        return
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y_true, y_pred, labels=classes, normalize="true")
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * n, 0.8 + 0.45 * n))
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                if cm[i, j] >= 0.005:
                    ax.text(j, i, f"{cm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if cm[i, j] > 0.5 else "black")
        ax.set_xticks(range(n), [str(c) for c in classes], rotation=45, ha="right")
        ax.set_yticks(range(n), [str(c) for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix (rows sum to 1)")
    _save(fig, path)


def reliability_figure(proba, y_true, classes, path: Path, n_bins: int = 10) -> None:
    """Reliability diagram of the top class: confidence against how often it is right."""
    plt = _pyplot()
    if plt is None:
        return
    from skmtl.scoring import expected_calibration_error, reliability_table

    labels = np.searchsorted(np.asarray(classes), np.asarray(y_true))
    table = reliability_table(proba, labels, n_bins=n_bins)
    ece = expected_calibration_error(proba, labels, n_bins=n_bins)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    ax.plot(table.confidence, table.accuracy, "o-", label="model")
    ax.set_xlabel("confidence of the predicted class")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"reliability diagram (ECE {ece:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    _save(fig, path)


def confidently_wrong_figure(images, proba, y_true, classes, path: Path, n: int = 12) -> None:
    """The ``n`` mistakes made with the highest confidence, as a grid of images."""
    plt = _pyplot()
    if plt is None:
        return
    classes = np.asarray(classes)
    predicted = classes[proba.argmax(1)]
    wrong = np.flatnonzero(predicted != np.asarray(y_true))
    if not len(wrong):
        print("no mistakes: no grid of confidently wrong images")
        return
    order = wrong[np.argsort(-proba[wrong].max(1))][:n]
    cols = min(6, len(order))
    rows = -(-len(order) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), order, strict=False):
        image = images[i]
        if isinstance(image, str | Path):
            from skmtl.io.images import load_image

            image = load_image(image)
        ax.imshow(image, cmap="gray" if np.ndim(image) == 2 else None)
        ax.set_title(f"{predicted[i]} ({proba[i].max():.2f})\ntrue {y_true[i]}", fontsize=8)
    fig.suptitle("most confidently wrong: predicted (confidence), true", fontsize=9)
    _save(fig, path)


def learning_curve_figure(sizes, train_scores, test_scores, path: Path,
                          ylabel: str = "log loss", title: str = "learning curve") -> None:
    """Score against the number of training images (mean and spread over the folds)."""
    plt = _pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for scores, label in [(train_scores, "training"), (test_scores, "cross-validation")]:
        mean, std = scores.mean(1), scores.std(1)
        ax.plot(sizes, mean, "o-", label=label)
        ax.fill_between(sizes, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("training images")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)


def training_curves_figure(history, path: Path) -> None:
    """Loss per epoch of a Keras head: one line per member model (``history_``).

    Keras' loss includes the L2 penalty of the kernels, so it is not the log loss.
    """
    plt = _pyplot()
    if plt is None:
        return
    # a list of per-model dicts, or one dict of lists (scikeras' layout)
    runs = [history] if isinstance(history, dict) else list(history)
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for k, run in enumerate(runs):
        for key, style in [("loss", "-"), ("val_loss", "--")]:
            if key in run and len(run[key]):
                ax.plot(np.arange(1, len(run[key]) + 1), run[key], style, color=f"C{k}",
                        label=f"model {k + 1} {key.replace('_', ' ')}")
    ax.set_xlabel("epoch")
    ax.set_yscale("log")
    ax.set_ylabel("Keras loss (cross-entropy + L2 penalty)")
    ax.set_title("training curves (solid: training, dashed: held out)")
    ax.legend(fontsize=6, ncol=2)
    _save(fig, path)
