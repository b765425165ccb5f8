"""The per-image feature store on its own (no TensorFlow)."""

from __future__ import annotations

import json
import multiprocessing

import joblib
import numpy as np
import pytest

from skmtl.features.store import (
    FeatureCache,
    digest_array,
    digest_bytes,
    digest_file,
    resolve_cache_location,
)

SETTINGS = {"backbone": "b", "flip": False, "input_size": [32, 32]}


def test_round_trip_and_layout(tmp_path):
    cache = FeatureCache(tmp_path, SETTINGS, (4,))
    key = digest_bytes(b"image bytes")
    assert cache.load(key) is None
    cache.save(key, np.arange(4, dtype=np.float32))
    np.testing.assert_array_equal(cache.load(key), np.arange(4, dtype=np.float32))
    assert (cache.directory / key[:2] / f"{key}.npy").is_file()
    assert json.loads((cache.directory / "settings.json").read_text()) == SETTINGS
    assert len(cache) == 1
    assert not list(tmp_path.rglob("*.tmp"))


def test_settings_address_separate_folders(tmp_path):
    a = FeatureCache(tmp_path, SETTINGS, (4,))
    b = FeatureCache(tmp_path, {**SETTINGS, "flip": True}, (4,))
    assert a.directory != b.directory
    a.save("ab" * 20, np.ones(4, np.float32))
    assert b.load("ab" * 20) is None
    assert FeatureCache(tmp_path, dict(reversed(SETTINGS.items())), (4,)).directory == a.directory


def test_digests_depend_on_content_dtype_and_shape():
    x = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert digest_array(x) == digest_array(x.copy())
    assert digest_array(x) != digest_array(x.reshape(4, 3))
    assert digest_array(x) != digest_array(x.astype(np.float32))
    assert digest_array(x[:, ::2]) == digest_array(np.ascontiguousarray(x[:, ::2]))
    assert digest_bytes(b"a") != digest_bytes(b"b") and len(digest_bytes(b"a")) == 40


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty"), (b"\x93NUMPY garbage", "garbage")],
)
def test_damaged_entry_warns_and_reads_as_missing(tmp_path, content, reason):
    cache = FeatureCache(tmp_path, SETTINGS, (4,))
    cache.save("cd" * 20, np.ones(4, np.float32))
    path = cache.directory / "cd" / f"{'cd' * 20}.npy"
    path.write_bytes(content)
    with pytest.warns(RuntimeWarning, match=r"Damaged feature cache entry .*cdcd"):
        assert cache.load("cd" * 20) is None


def test_wrong_shape_entry_is_damaged(tmp_path):
    cache = FeatureCache(tmp_path, SETTINGS, (4,))
    other = FeatureCache(tmp_path, SETTINGS, (5,))
    other.save("ef" * 20, np.ones(5, np.float32))
    with pytest.warns(RuntimeWarning, match=r"shape \(5,\)"):
        assert cache.load("ef" * 20) is None


def test_resolve_cache_location(tmp_path):
    assert resolve_cache_location(None) is None
    assert resolve_cache_location(str(tmp_path)) == tmp_path
    assert resolve_cache_location(tmp_path) == tmp_path
    assert resolve_cache_location(joblib.Memory(tmp_path, verbose=0)) == tmp_path
    assert resolve_cache_location(joblib.Memory(None)) is None
    with pytest.raises(TypeError, match=r"joblib\.Memory"):
        resolve_cache_location(3)


def test_digest_file_sees_a_rewrite_with_size_and_mtime_restored(tmp_path):
    import os

    path = tmp_path / "weights.bin"
    path.write_bytes(b"A" * 64)
    os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    first = digest_file(str(path))
    stat = path.stat()
    with open(path, "r+b") as f:  # in place: same inode, same size
        f.write(b"B" * 64)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        stat.st_ino, stat.st_size, stat.st_mtime_ns)
    assert digest_file(str(path)) != first
    assert digest_file(str(path)) == digest_file(str(path))


def _writer(location, seed, keys):
    cache = FeatureCache(location, SETTINGS, (256,))
    rng = np.random.default_rng(seed)
    for _ in range(3):
        for k in keys:
            cache.save(k, np.full(256, int(k[:2], 16), np.float32) + 0 * rng.random())
            loaded = cache.load(k)
            assert loaded is None or loaded[0] == int(k[:2], 16)


def test_two_processes_writing_the_same_entries_never_corrupt(tmp_path):
    keys = [f"{i:02x}" * 20 for i in range(60)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(tmp_path, s, keys)) for s in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    cache = FeatureCache(tmp_path, SETTINGS, (256,))
    for k in keys:
        np.testing.assert_array_equal(cache.load(k), np.full(256, int(k[:2], 16), np.float32))
    assert not list(tmp_path.rglob("*.tmp"))
