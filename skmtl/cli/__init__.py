"""The ``skmtl`` command line: one module per sub-command, the work done by plain functions.

``main(argv)`` is the entry point and returns the exit status, so tests call it directly.
User errors (a missing file, a bad option, a bad command line) print one line and exit with
status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["main"]

#: Sub-command name -> module in this package with ``add_parser(subparsers)`` and ``run(args)``.
COMMANDS = {
    "fit": "skmtl.cli.fit",
    "predict": "skmtl.cli.predict",
    "finetune": "skmtl.cli.finetune",
    "score": "skmtl.cli.score",
    "bundle": "skmtl.cli.bundle",
    "backbones": "skmtl.cli.backbones",
    "demo": "skmtl.cli.demo",
    "cache": "skmtl.cli.cache",
}

#: Errors a user can fix; anything else is a bug and keeps its traceback.
USER_ERRORS = (OSError, ValueError, TypeError, KeyError, ImportError)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``skmtl fit: error: ...``), status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = _Parser(
        prog="skmtl",
        description="Transfer learning for image classification, the Kaggle way.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        importlib.import_module(module).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``skmtl`` command line with ``argv`` (default: ``sys.argv[1:]``)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a bad command line (one line, status 2)
        return exc.code if isinstance(exc.code, int) else 2
    if not args.debug:  # TensorFlow's C++ start-up chatter is not for users
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return int(args.run(args) or 0)
    except USER_ERRORS as exc:
        if args.debug:
            raise
        print(f"skmtl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
