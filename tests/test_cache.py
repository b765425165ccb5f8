"""The per-image feature store on its own (no TensorFlow): shards, damage, migration,
concurrent writers, and the persistent stat -> content key index."""

from __future__ import annotations

import json
import multiprocessing
import os
import time

import joblib
import numpy as np
import pytest

from skmtl.features import store
from skmtl.features._file_keys import FileKeys
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
    assert not cache.shard_folder.exists()  # kept in memory until flushed
    cache.flush()
    assert len(list(cache.shard_folder.glob("*.shard"))) == 1
    again = FeatureCache(tmp_path, SETTINGS, (4,))
    np.testing.assert_array_equal(again.load(key), np.arange(4, dtype=np.float32))
    assert json.loads((cache.directory / "settings.json").read_text()) == SETTINGS
    assert len(again) == 1
    assert not list(tmp_path.rglob("*.tmp"))


def test_fill_gathers_rows_into_positions(tmp_path):
    cache = FeatureCache(tmp_path, SETTINGS, (2, 2), flush_rows=3)
    keys = [digest_bytes(bytes([i])) for i in range(10)]
    for i, key in enumerate(keys):
        cache.save(key, np.full((2, 2), i, np.float32))
    cache.flush()
    assert len(list(cache.shard_folder.glob("*.shard"))) == 4
    out = np.full((6, 4), -1, np.float32)
    wanted = [keys[7], "00" * 20, keys[2], keys[7], keys[9]]
    found = FeatureCache(tmp_path, SETTINGS, (2, 2)).fill(wanted, out, [5, 4, 3, 2, 0])
    assert found.tolist() == [True, False, True, True, True]
    assert out[:, 0].tolist() == [9, -1, 7, 2, -1, 7]


def test_settings_address_separate_folders(tmp_path):
    a = FeatureCache(tmp_path, SETTINGS, (4,))
    b = FeatureCache(tmp_path, {**SETTINGS, "flip": True}, (4,))
    assert a.directory != b.directory
    a.save("ab" * 20, np.ones(4, np.float32))
    a.flush()
    assert b.load("ab" * 20) is None
    assert FeatureCache(tmp_path, dict(reversed(SETTINGS.items())), (4,)).directory == a.directory


def test_digests_depend_on_content_dtype_and_shape():
    x = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert digest_array(x) == digest_array(x.copy())
    assert digest_array(x) != digest_array(x.reshape(4, 3))
    assert digest_array(x) != digest_array(x.astype(np.float32))
    assert digest_array(x[:, ::2]) == digest_array(np.ascontiguousarray(x[:, ::2]))
    assert digest_bytes(b"a") != digest_bytes(b"b") and len(digest_bytes(b"a")) == 40


def _two_shards(tmp_path, *, read: bool = True):
    """Keys 0-3 (row i full of i) in two shards, which this process has ``read``."""
    cache = FeatureCache(tmp_path, SETTINGS, (4,), flush_rows=2)
    keys = [f"{i:02x}" * 20 for i in range(4)]
    for i, key in enumerate(keys):
        cache.save(key, np.full(4, i, np.float32))
    shards = sorted(cache.shard_folder.glob("*.shard"))
    assert len(shards) == 2
    if read:
        assert cache.fill(keys, np.zeros((4, 4), np.float32)).all()  # read (and checked)
        time.sleep(0.05)  # the damage below changes the file's mtime/ctime, as in real life
    return keys, shards


@pytest.mark.parametrize("damage", ["truncated", "rows flipped", "keys flipped", "garbage",
                                    "empty"])
def test_damaged_shard_is_set_aside_and_nothing_else_lost(tmp_path, damage):
    keys, shards = _two_shards(tmp_path)
    data = bytearray(shards[0].read_bytes())
    if damage == "truncated":
        data = data[:-3]
    elif damage == "rows flipped":
        data[-1] ^= 0xFF
    elif damage == "keys flipped":
        data[70] ^= 0xFF
    elif damage == "garbage":
        data = bytearray(b"\x93NUMPY garbage" * 20)
    else:
        data = bytearray()
    shards[0].write_bytes(bytes(data))
    out = np.zeros((4, 4), np.float32)
    with pytest.warns(RuntimeWarning, match=r"Damaged feature cache shard .*\.shard"):
        found = FeatureCache(tmp_path, SETTINGS, (4,)).fill(keys, out)
    assert found.tolist() == [False, False, True, True]  # the first shard held keys 0, 1
    assert out[2:, 0].tolist() == [2, 3]
    assert not shards[0].exists() and shards[0].with_suffix(".damaged").exists()
    assert shards[1].exists()


def test_shard_of_another_row_length_is_damaged(tmp_path):
    other = FeatureCache(tmp_path, SETTINGS, (5,))
    other.save("ef" * 20, np.ones(5, np.float32))
    other.flush()
    with pytest.warns(RuntimeWarning, match=r"5 values per row, expected 4"):
        assert FeatureCache(tmp_path, SETTINGS, (4,)).load("ef" * 20) is None


def test_old_one_npy_per_image_layout_is_migrated(tmp_path):
    cache = FeatureCache(tmp_path, SETTINGS, (4,))
    keys = [f"{i:02x}" * 20 for i in range(5)]
    for i, key in enumerate(keys):  # written as earlier versions did
        (cache.directory / key[:2]).mkdir(parents=True, exist_ok=True)
        np.save(cache.directory / key[:2] / f"{key}.npy", np.full(4, i, np.float32))
    (cache.directory / keys[4][:2] / f"{keys[4]}.npy").write_bytes(b"torn")
    for i, key in enumerate(keys[:4]):
        np.testing.assert_array_equal(cache.load(key), np.full(4, i, np.float32))
    assert cache.load(keys[4]) is None  # a damaged entry is recomputed, as before
    assert not list(cache.directory.rglob("*.npy"))
    assert len(list(cache.shard_folder.glob("*.shard"))) == 1
    assert len(FeatureCache(tmp_path, SETTINGS, (4,))) == 4


def test_many_small_shards_are_merged(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "COMPACT_AT", 5)
    cache = FeatureCache(tmp_path, SETTINGS, (3,), flush_rows=2)
    keys = [f"{i:02x}" * 20 for i in range(40)]
    for i, key in enumerate(keys):
        cache.save(key, np.full(3, i, np.float32))
    cache.flush()
    assert len(list(cache.shard_folder.glob("*.shard"))) <= 6
    out = np.zeros((40, 3), np.float32)
    assert FeatureCache(tmp_path, SETTINGS, (3,)).fill(keys, out).all()
    assert out[:, 0].tolist() == list(range(40))


def test_resolve_cache_location(tmp_path):
    assert resolve_cache_location(None) is None
    assert resolve_cache_location(str(tmp_path)) == tmp_path
    assert resolve_cache_location(tmp_path) == tmp_path
    assert resolve_cache_location(joblib.Memory(tmp_path, verbose=0)) == tmp_path
    assert resolve_cache_location(joblib.Memory(None)) is None
    with pytest.raises(TypeError, match=r"joblib\.Memory"):
        resolve_cache_location(3)


def test_digest_file_sees_a_rewrite_with_size_and_mtime_restored(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"A" * 64)
    os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    first = digest_file(str(path))
    rewrite_keeping_stat(path, b"B" * 64)
    assert digest_file(str(path)) != first


def rewrite_keeping_stat(path, data: bytes) -> None:
    """Overwrite ``path`` in place with as many bytes (same inode, same size) and restore
    its mtime: a change that (inode, size, mtime) cannot see."""
    before = path.stat()
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino, before.st_size, before.st_mtime_ns)
    assert digest_file(str(path)) == digest_file(str(path))


def _writer(location, seed, keys):
    import warnings

    warnings.filterwarnings("error", "Damaged feature cache shard")  # merged is not damaged
    store.COMPACT_AT = 2  # every process merges shards while the others write
    cache = FeatureCache(location, SETTINGS, (256,), flush_rows=7)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        for k in rng.permutation(keys):
            cache.save(k, np.full(256, int(k[:2], 16), np.float32))
            loaded = FeatureCache(location, SETTINGS, (256,)).load(k)
            assert loaded is None or loaded[0] == int(k[:2], 16)
        cache.flush()


def test_processes_writing_the_same_entries_never_corrupt(tmp_path):
    keys = [f"{i:02x}" * 20 for i in range(60)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(tmp_path, s, keys)) for s in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    cache = FeatureCache(tmp_path, SETTINGS, (256,))
    out = np.zeros((60, 256), np.float32)
    assert cache.fill(keys, out).all()
    np.testing.assert_array_equal(out, np.repeat(np.arange(60, dtype=np.float32), 256)
                                  .reshape(60, 256))
    assert len(list(cache.shard_folder.glob("*.shard"))) <= 8  # merged as they went
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*.damaged"))


def _merge_elsewhere(folder):
    """What another process's merge does: one new shard with all rows, old ones gone."""
    from skmtl.features._shards import Shard, write_shard

    olds = sorted(folder.glob("*.shard"))
    shards = [Shard(p, 4) for p in olds]
    keys = [k for s in shards for k in s.keys]
    write_shard(folder, keys, np.concatenate([s.rows() for s in shards]))
    for p in olds:
        p.unlink()


@pytest.mark.filterwarnings("error")
def test_shard_merged_away_between_index_and_read_is_found_merged(tmp_path, monkeypatch):
    keys, _ = _two_shards(tmp_path, read=False)
    reader = FeatureCache(tmp_path, SETTINGS, (4,))
    real_index_of = store._index_of

    def index_then_merge(cache):
        index = real_index_of(cache)  # knows both shards, has read no rows yet
        monkeypatch.setattr(store, "_index_of", real_index_of)
        _merge_elsewhere(reader.shard_folder)
        return index

    monkeypatch.setattr(store, "_index_of", index_then_merge)
    out = np.zeros((4, 4), np.float32)
    # Before the fix: both shards "damaged" (a warning, an error here), rows recomputed.
    assert reader.fill(keys, out).all()
    np.testing.assert_array_equal(out[:, 0], np.arange(4))
    assert not list(tmp_path.rglob("*.damaged"))


def _compact_old_layout(location):
    store.COMPACT_AT = 1
    cache = FeatureCache(location, SETTINGS, (4,))
    cache.compact()  # the first use of this folder in the process


def test_compacting_a_folder_of_the_old_layout_does_not_deadlock(tmp_path):
    cache = FeatureCache(tmp_path, SETTINGS, (4,), flush_rows=1)
    keys = [f"{i:02x}" * 20 for i in range(3)]
    for i, key in enumerate(keys[:2]):
        cache.save(key, np.full(4, i, np.float32))  # two small shards to merge
    (cache.directory / keys[2][:2]).mkdir()  # and one entry as earlier versions wrote it
    np.save(cache.directory / keys[2][:2] / f"{keys[2]}.npy", np.full(4, 2, np.float32))
    # A fresh process: migrating took the folder's lock again inside compact's own lock.
    proc = multiprocessing.get_context("spawn").Process(target=_compact_old_layout,
                                                        args=(tmp_path,))
    proc.start()
    proc.join(timeout=60)
    if proc.is_alive():
        proc.kill()
    assert proc.exitcode == 0
    assert len(list(cache.shard_folder.glob("*.shard"))) == 1
    out = np.zeros((3, 4), np.float32)
    assert FeatureCache(tmp_path, SETTINGS, (4,)).fill(keys, out).all()
    assert out[:, 0].tolist() == [0, 1, 2]


@pytest.mark.filterwarnings("error")
def test_shard_merged_away_between_scan_and_stat(tmp_path, monkeypatch):
    keys, _ = _two_shards(tmp_path, read=False)
    reader = FeatureCache(tmp_path, SETTINGS, (4,))
    assert len(reader) == 4
    real_scandir = os.scandir

    def scan_then_merge(path):
        entries = list(real_scandir(path))  # DirEntry.stat() is not cached on Linux
        monkeypatch.setattr(os, "scandir", real_scandir)
        _merge_elsewhere(reader.shard_folder)
        return iter(entries)

    monkeypatch.setattr(os, "scandir", scan_then_merge)
    out = np.zeros((4, 4), np.float32)
    # Before the fix: FileNotFoundError from the stat of a listed shard.
    assert reader.fill(keys, out).all()
    np.testing.assert_array_equal(out[:, 0], np.arange(4))


# ---------------------------------------------------------------- stat -> content key index
@pytest.fixture
def old_file(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(b"A" * 64)
    os.utime(path, ns=(1_600_000_000_000_000_000,) * 2)
    return path


def test_file_keys_remembered_across_processes_by_stat(tmp_path, old_file, monkeypatch):
    monkeypatch.setattr("skmtl.features._file_keys.RACY_NS", 0)
    index = FileKeys(tmp_path / "fk")
    [(key, stat_id)] = index.lookup_many([str(old_file)])
    assert key is None
    index.remember([(stat_id, digest_bytes(old_file.read_bytes()))])
    monkeypatch.setattr("skmtl.features._file_keys._MEMO", {})  # as a new process would
    assert FileKeys(tmp_path / "fk").lookup(str(old_file))[0] == digest_bytes(b"A" * 64)
    assert FileKeys(tmp_path / "fk", verify=True).lookup(str(old_file))[0] is None
    # A torn last record (a writer killed mid-write) is ignored, the others still read.
    [own] = (tmp_path / "fk").glob("*.keys")
    with open(own, "ab") as f:
        f.write(b"torn")
    monkeypatch.setattr("skmtl.features._file_keys._MEMO", {})
    assert FileKeys(tmp_path / "fk").lookup(str(old_file))[0] == digest_bytes(b"A" * 64)


def test_file_keys_miss_after_rewrite_with_size_and_mtime_restored(tmp_path, old_file,
                                                                  monkeypatch):
    monkeypatch.setattr("skmtl.features._file_keys.RACY_NS", 0)
    index = FileKeys(tmp_path / "fk")
    _, stat_id = index.lookup(str(old_file))
    index.remember([(stat_id, digest_bytes(b"A" * 64))])
    assert index.lookup(str(old_file))[0] == digest_bytes(b"A" * 64)
    time.sleep(0.05)
    rewrite_keeping_stat(old_file, b"B" * 64)
    assert index.lookup(str(old_file))[0] is None


def test_recently_changed_file_is_not_remembered(tmp_path):
    path = tmp_path / "new.jpg"
    path.write_bytes(b"new")
    assert FileKeys(tmp_path / "fk").lookup(str(path)) == (None, None)
