"""Where skmtl keeps per-user files.

``$SKMTL_HOME/weights`` caches converted EfficientNet-Lite weights and
``$SKMTL_HOME/keras/models`` may hold Keras ImageNet weight files (an offline bundle's
``skmtl-home``, see ``skmtl bundle``). skmtl only reads them when they exist, so the folder may
be read-only.
"""

from __future__ import annotations

import os
from pathlib import Path


def skmtl_home() -> Path:
    """``$SKMTL_HOME``, else ``$XDG_CACHE_HOME/skmtl``, else ``~/.cache/skmtl``."""
    if os.environ.get("SKMTL_HOME"):
        return Path(os.environ["SKMTL_HOME"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "skmtl"
