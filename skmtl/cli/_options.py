"""Options shared by ``fit`` and ``predict``, parsed into plain values (never evaluated).

- ``--head-param KEY=VALUE`` (repeated): VALUE is read as a bool (``true``/``false``), None
  (``none``), an int, a float, else kept as a string; a comma makes a list of such values.
- ``--weights`` (repeated): ``PATH`` for every backbone, or ``NAME=PATH`` for one; ``PATH``
  may be ``imagenet`` or ``none`` (random weights, seeded by ``--seed``).
- ``--input-size``: ``N`` or ``HxW``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["add_featurizer_options", "parse_head_params", "parse_input_size", "parse_value",
           "parse_weights", "set_featurizer_options"]


def parse_value(text: str) -> Any:
    """``"true"`` -> True, ``"none"`` -> None, ``"3"`` -> 3, ``"0.1"`` -> 0.1, ``"a,b"`` ->
    a list; anything else stays a string. Nothing is evaluated as code."""
    if "," in text:
        return [parse_value(part) for part in text.split(",") if part.strip()]
    word = text.strip()
    if word.lower() in ("true", "false"):
        return word.lower() == "true"
    if word.lower() in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(word)
        except ValueError:
            pass
    return word


def parse_head_params(items: Iterable[str] | None, valid: Iterable[str] | None = None
                      ) -> dict[str, Any]:
    """``["C=0.1", "cv=5"]`` -> ``{"C": 0.1, "cv": 5}``; unknown names are a ValueError."""
    params: dict[str, Any] = {}
    valid = None if valid is None else sorted(valid)
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--head-param {item!r}: expected KEY=VALUE, e.g. C=0.1.")
        if valid is not None and key not in valid:
            raise ValueError(f"--head-param {key!r} is not a parameter of the head; "
                             f"it has: {', '.join(valid)}.")
        params[key] = parse_value(value)
    return params


def parse_weights(items: Sequence[str] | None, backbones: Sequence[str]) -> dict[str, Any]:
    """Backbone name -> weights ("imagenet", None or a path) for every ``--weights`` item.

    ``PATH`` alone applies to the only backbone (``none`` and ``imagenet`` to every one);
    ``NAME=PATH`` to the backbone ``NAME`` only, which must be one of ``backbones``.
    """
    chosen: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if sep and name.strip() in backbones:
            targets, value = [name.strip()], value
        elif sep and name.strip().replace("_", "").isalnum() and "/" not in name:
            raise ValueError(f"--weights {item!r}: {name.strip()!r} is not one of the "
                             f"backbones ({', '.join(backbones)}).")
        else:
            targets, value = list(backbones), item
            if len(backbones) > 1 and item.strip().lower() not in ("none", "imagenet"):
                raise ValueError(f"--weights {item!r} with {len(backbones)} backbones: say "
                                 "which one it is for, as NAME=PATH.")
        word = value.strip()
        weights = None if word.lower() == "none" else word
        for target in targets:
            chosen[target] = weights
    return chosen


def parse_input_size(text: str | None) -> int | tuple[int, int] | None:
    """``"224"`` -> 224, ``"240x320"`` -> (240, 320) (height x width)."""
    if text is None:
        return None
    parts = text.lower().split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes) < 1:
        raise ValueError(f"--input-size {text!r}: expected N or HxW, e.g. 224 or 240x320.")
    return sizes[0] if len(sizes) == 1 else (sizes[0], sizes[1])


def add_featurizer_options(parser: argparse.ArgumentParser, *, at_fit: bool) -> None:
    """``--weights``, ``--device`` and ``--batch-size`` (both commands)."""
    parser.add_argument("--weights", action="append", metavar="[NAME=]PATH",
                        help="a local weights file (.weights.h5, or .pth for "
                             "EfficientNet-Lite) for the backbone NAME, or for the only "
                             "backbone; 'none' for random weights; repeat for several"
                        + ("" if at_fit else " (overrides the saved ones)"))
    parser.add_argument("--device", help="cpu, gpu or a TensorFlow device such as /GPU:1 "
                                         "(default: the first GPU if any)")
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help="images per forward pass (default: 32)")


def set_featurizer_options(featurizers: Iterable[Any], *, weights: dict | None = None,
                           **params: Any) -> None:
    """Set ``params`` (those not None) and per-backbone ``weights`` on fitted featurizers,
    so that their Keras model is rebuilt with them."""
    params = {k: v for k, v in params.items() if v is not None}
    for featurizer in featurizers:
        changed = dict(params)
        name = featurizer.backbone if isinstance(featurizer.backbone, str) else None
        if weights and name in weights:
            changed["weights"] = weights[name]
        if changed:
            featurizer.set_params(**changed)
            featurizer._discard_model()
