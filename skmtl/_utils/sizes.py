"""One rule for sizes given as an int or a (height, width) pair."""

from __future__ import annotations

import numbers
from typing import Any

__all__ = ["size_pair"]


def size_pair(size: Any, name: str = "size") -> tuple[int, int]:
    """``(height, width)`` from an int or a pair of positive ints.

    Raises
    ------
    ValueError
        Naming ``name`` when ``size`` is neither (a bool, a float, a triple, zero...).
    """
    pair = (size, size) if isinstance(size, numbers.Integral) else tuple(size)
    if len(pair) != 2 or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in pair
    ):
        raise ValueError(f"{name} must be a positive int or (height, width), got {size!r}.")
    return int(pair[0]), int(pair[1])
