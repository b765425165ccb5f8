"""``skmtl score``: the leaderboard metric of a submission, computed locally."""

from __future__ import annotations

import argparse
from pathlib import Path


def run_score(submission: str | Path, solution: str | Path) -> dict[str, float]:
    """Score ``submission`` against ``solution`` and print one line (see skmtl.scoring)."""
    from skmtl.scoring import score_submission

    scores = score_submission(submission, solution)
    print(f"{scores['n_rows']} rows: log loss {scores['log_loss']:.4f}, accuracy "
          f"{scores['accuracy']:.4f}, calibration error {scores['ece']:.4f} (mean confidence "
          f"{scores['mean_confidence']:.4f})")
    return scores


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "score", help="log loss and accuracy of a submission against the answers",
        description="Multi-class log loss as Kaggle computes it (class columns by name, "
                    "rows clipped to [1e-15, 1 - 1e-15] and renormalised), accuracy, and "
                    "the expected calibration error of the top class (15 bins).")
    parser.add_argument("submission", help="submission CSV: id + one column per class")
    parser.add_argument("solution", help="answers CSV: id + true class")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    run_score(args.submission, args.solution)
    return 0
