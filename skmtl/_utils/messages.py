"""Helpers for error messages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def few(items: Iterable[Any], n: int = 5, sep: str = ", ") -> str:
    """The first ``n`` items, joined by ``sep``, with how many more there are."""
    items = list(items)
    shown = sep.join(map(str, items[:n]))
    return f"{shown} (and {len(items) - n} more)" if len(items) > n else shown
