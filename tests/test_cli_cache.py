"""``skmtl cache info`` / ``skmtl cache prune`` (no TensorFlow)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from skmtl.cli import main
from skmtl.cli.cache import cache_info, parse_age, prune_cache
from skmtl.features.store import FeatureCache


@pytest.fixture
def two_settings(tmp_path):
    """A cache with Lite0 features of 5 images (one shard, one duplicate) and old Lite1
    features of 3 images in the one-.npy-per-image layout of earlier versions."""
    lite0 = FeatureCache(tmp_path, {"backbone": "efficientnet_lite0"}, (8,), flush_rows=3)
    for i in [0, 1, 2, 3, 4, 1]:
        lite0.save(f"{i:02x}" * 20, np.full(8, i, np.float32))
    lite0.flush()
    lite1 = FeatureCache(tmp_path, {"backbone": "efficientnet_lite1"}, (8,))
    lite1.save("aa" * 20, np.ones(8, np.float32))
    lite1.flush()  # writes settings.json; then the entries are made old-style
    for file in lite1.shard_folder.glob("*"):
        file.unlink()
    for i in range(3):
        (lite1.directory / f"{i:02x}").mkdir()
        np.save(lite1.directory / f"{i:02x}" / f"{i:02x}{'0' * 38}.npy", np.ones(8, np.float32))
    month_ago = time.time() - 40 * 86400
    for file in lite1.directory.rglob("*"):
        os.utime(file, (month_ago, month_ago))
    return tmp_path, lite0, lite1


def test_cache_info_lists_each_settings_folder(two_settings, capsys):
    location, lite0, lite1 = two_settings
    old, new = cache_info(location)  # oldest first
    assert (old.backbone, old.images, old.settings_hash) == ("efficientnet_lite1", 3,
                                                             lite1.directory.name)
    assert (new.backbone, new.images) == ("efficientnet_lite0", 5)
    assert new.bytes == sum(f.stat().st_size for f in lite0.directory.rglob("*") if f.is_file())
    assert time.time() - new.last_written < 600 and time.time() - old.last_written > 39 * 86400
    assert main(["cache", "info", str(location)]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_lite0" in out and "efficientnet_lite1" in out
    assert lite0.directory.name[:10] in out


def test_cache_prune_by_age_and_by_settings(two_settings, capsys):
    location, lite0, lite1 = two_settings
    assert main(["cache", "prune", str(location), "--older-than", "30d", "--dry-run"]) == 0
    assert "Would remove 1 settings folder" in capsys.readouterr().out
    assert lite1.directory.exists()
    assert main(["cache", "prune", str(location), "--older-than", "30d"]) == 0
    assert not lite1.directory.exists() and lite0.directory.exists()
    removed = prune_cache(location, settings=lite0.directory.name[:6])
    assert [f.backbone for f in removed] == ["efficientnet_lite0"]
    assert cache_info(location) == []
    assert main(["cache", "info", str(location)]) == 0
    assert "No features cached" in capsys.readouterr().out


def test_cache_cli_user_errors(tmp_path, capsys):
    assert main(["cache", "info", str(tmp_path / "nowhere")]) == 2
    assert "No cache folder" in capsys.readouterr().err
    assert main(["cache", "prune", str(tmp_path)]) == 2
    assert "--older-than" in capsys.readouterr().err
    assert main(["cache", "prune", str(tmp_path), "--older-than", "soon"]) == 2
    assert parse_age("12h") == 12 * 3600 and parse_age("2w") == 14 * 86400
