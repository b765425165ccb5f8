"""``skmtl backbones``: list the backbone zoo."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("backbones", help="list the backbone zoo")
    parser.add_argument("--offline", action="store_true",
                        help="only backbones whose ImageNet weights work without network")
    parser.set_defaults(run=run)


def backbones_table(offline_only: bool = False):
    """The zoo as a DataFrame, optionally only what works offline."""
    from skmtl.backbones import list_backbones

    table = list_backbones()
    return table[table.offline_weights] if offline_only else table


def run(args: argparse.Namespace) -> int:
    print(backbones_table(args.offline).to_string(index=False))
    return 0
