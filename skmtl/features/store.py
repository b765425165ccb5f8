"""Per-image feature store: content-keyed rows in consolidated shards.

Each image's features are stored under a hash of the image's *content* (file bytes or
array bytes) inside a folder keyed by every setting that changes features. So
``cross_val_predict`` and ``GridSearchCV``, which pass different subsets and orders of X,
are served from the same entries, and changing any setting can never return stale
features: it addresses another folder.

Layout::

    <location>/skmtl-features/<settings hash>/settings.json
    <location>/skmtl-features/<settings hash>/shards/<time>-<pid>-<token>.shard
    <location>/skmtl-features/file-keys/<pid>-<token>.keys   (stat -> content key)

Rows are kept in memory as they are computed and written as one shard every
``flush_rows`` rows and at the end of each ``transform`` (see :mod:`._shards` for the
format: atomic, checksummed, one writer per file, so processes sharing a cache need no
lock to write). A process reads every shard's keys once and memory-maps the rows, so a
fully cached transform of 100,000 rows costs one gather, not 100,000 file opens. When a
folder holds more than :data:`COMPACT_AT` shards, one process merges the small ones under
a lock. A damaged shard (short, garbage, checksum mismatch) is reported with a warning,
set aside as ``*.damaged`` and its rows recomputed; the other shards are untouched. The
one-``.npy``-per-image layout of earlier versions is migrated into a shard on first use.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from skmtl._utils.files import atomic_write
from skmtl.features._file_keys import FileKeys
from skmtl.features._shards import (
    SUFFIX,
    DamagedShard,
    ShardIndex,
    migrate_npy_layout,
    store_lock,
    write_shard,
)

__all__ = [
    "FeatureCache",
    "digest_architecture",
    "digest_array",
    "digest_bytes",
    "digest_file",
    "digest_weights",
    "migrate_npy_layout",
    "resolve_cache_location",
]

_DIGEST_SIZE = 20


def digest_bytes(data: bytes) -> str:
    """Content key of an encoded image file."""
    return hashlib.blake2b(data, digest_size=_DIGEST_SIZE).hexdigest()


def digest_array(image: np.ndarray) -> str:
    """Content key of an in-memory image: its dtype, shape and bytes."""
    image = np.ascontiguousarray(image)
    h = hashlib.blake2b(digest_size=_DIGEST_SIZE)
    h.update(f"{image.dtype.str}{image.shape}".encode())
    h.update(memoryview(image).cast("B"))
    return h.hexdigest()


def digest_weights(model: Any) -> str:
    """Hash of a Keras model's weights: part of the cache key of a custom backbone."""
    h = hashlib.blake2b(digest_size=16)
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def digest_architecture(model: Any) -> str:
    """Hash of a Keras model's architecture: with :func:`digest_weights`, the cache key of
    a custom backbone, so two models whose weights hold the same values do not share
    features.

    The key depends only on what the model computes, never on the history of the process
    that computes it, so every process (a Dask worker, a new session) finds the same
    entries. The model's serialised config (layers, their settings and connections) is
    hashed with

    - the names of its layers, nested ones included, replaced by their position, so the
      automatic names Keras gives (``conv2d_7``) do not change the key between sessions;
    - each object's ``registered_name`` left out: it says under which name a class is
      registered for deserialisation in *this* process, which changes when anything
      registers it (importing scikeras makes every ``Model`` that is then pickled or
      deep-copied register its class, ``Functional`` as ``">Functional"``); the class is
      still keyed by its module and name.

    A model that cannot be serialised is described by each layer's class, weight shapes
    and output shape.
    """
    import keras

    positions = _layer_positions(model)

    def canonical(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: canonical(v) for k, v in obj.items()
                    if not (k == "registered_name" and "class_name" in obj)}
        if isinstance(obj, list | tuple):
            return [canonical(v) for v in obj]
        if isinstance(obj, str):
            return positions.get(obj, obj)
        return obj

    try:
        config = keras.saving.serialize_keras_object(model)
        text = json.dumps(canonical(config), sort_keys=True, default=repr)
    except Exception:  # a custom layer without a usable get_config
        text = repr([
            (type(layer).__module__, type(layer).__qualname__,
             [tuple(w.shape) for w in layer.weights],
             str(getattr(layer, "output", None) and layer.output.shape))
            for layer in model.layers
        ])
    text = f"{type(model).__module__}.{type(model).__qualname__}:{text}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _layer_positions(model: Any) -> dict[str, str]:
    """Layer name -> ``"<layer i.j>"``, its position in the model (nested models and layers
    that hold layers included); the model's own name -> ``"<model>"``.

    ``_layers`` where Keras has it: a ``Sequential``'s ``layers`` leave out its input
    layer, whose (automatic) name its config holds.
    """
    positions = {model.name: "<model>"}

    def walk(layer: Any, prefix: str, seen: set[int]) -> None:
        subs = getattr(layer, "_layers", None)
        if not isinstance(subs, list):
            subs = getattr(layer, "layers", None)
        for i, sub in enumerate(subs or ()):
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            positions.setdefault(sub.name, f"<layer {prefix}{i}>")
            walk(sub, f"{prefix}{i}.", seen)

    walk(model, "", {id(model)})
    return positions


_FILE_DIGESTS: dict[tuple, str] = {}

#: A file changed less than this long ago may change again within the resolution of its
#: timestamps (coarse on many file systems), so its digest is not memoised.
_RACY_NS = 2_000_000_000


def digest_file(path: str) -> str:
    """Hash of a file's bytes: weights files.

    Memoised by path, inode, size, mtime and ctime: a file rewritten in place, even with
    its size and mtime restored (``os.utime``), gets a new ctime and is hashed again. A
    file modified in the last two seconds is never memoised (timestamps may be too coarse
    to show a second change).
    """
    stat = os.stat(path)
    memo = (os.path.abspath(path), stat.st_ino, stat.st_size, stat.st_mtime_ns,
            stat.st_ctime_ns)
    if memo in _FILE_DIGESTS:
        return _FILE_DIGESTS[memo]
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    if time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) > _RACY_NS:
        _FILE_DIGESTS[memo] = digest
    return digest


def resolve_cache_location(cache: Any) -> Path | None:
    """Turn the ``cache`` parameter (None, a path or a ``joblib.Memory``) into a folder."""
    if cache is None:
        return None
    if isinstance(cache, joblib.Memory):
        return None if cache.location is None else Path(cache.location)
    if isinstance(cache, str | os.PathLike):
        return Path(cache)
    raise TypeError(
        f"cache must be None, a directory path or a joblib.Memory, got {type(cache).__name__}."
    )


class FeatureCache:
    """Features of single images under one set of settings.

    Parameters
    ----------
    location : path
        Root folder, shared by all settings (created on first write).
    settings : mapping
        Everything that changes features. Hashed with :func:`joblib.hash`; also written
        to ``settings.json`` so a person can tell the folders apart.
    feature_shape : tuple of int
        Shape of one image's features; shards of another row length are damaged.
    verify : bool, default=False
        Read and hash every image file to find its key, instead of trusting the key
        remembered for the file's path, inode, size, mtime and ctime.
    flush_rows : int, default=1024
        Rows kept in memory before they are written as a shard (also written by
        :meth:`flush`, which the featurizer calls at the end of each transform).
    """

    def __init__(
        self, location: str | os.PathLike, settings: Mapping[str, Any], feature_shape: tuple,
        *, verify: bool = False, flush_rows: int = 1024,
    ) -> None:
        self.settings = dict(settings)
        self.feature_shape = tuple(feature_shape)
        self.values = int(np.prod(self.feature_shape))
        self.root = Path(location) / "skmtl-features"
        self.directory = self.root / joblib.hash(self.settings)
        self.file_keys = FileKeys(self.root / "file-keys", verify=verify)
        self.flush_rows = flush_rows
        self._pending: dict[str, np.ndarray] = {}

    @property
    def shard_folder(self) -> Path:
        return self.directory / "shards"

    # ------------------------------------------------------------------ reading
    def fill(self, keys: Sequence[str], out: np.ndarray,
             positions: Sequence[int] | None = None) -> np.ndarray:
        """Write the stored row of ``keys[j]`` into ``out[positions[j]]`` (default ``j``).

        Returns a boolean mask over ``keys``: True where a row was found.
        """
        positions = np.arange(len(keys)) if positions is None else np.asarray(positions)
        found = np.zeros(len(keys), dtype=bool)
        index = _index_of(self)
        for _ in range(5):
            # A shard merged away by another process between the scan and the read: its
            # rows now live in the merged shard, which a fresh scan finds.
            if not _fill_from(index, keys, out, positions, found):
                break
            index.refresh()
        for j in np.flatnonzero(~found):
            row = self._pending.get(keys[j])
            if row is not None:
                out[positions[j]] = row.reshape(-1)
                found[j] = True
        return found

    def load(self, key: str) -> np.ndarray | None:
        """Features stored for ``key``, or None when absent or damaged (with a warning)."""
        out = np.empty((1, self.values), np.float32)
        return out[0].reshape(self.feature_shape) if self.fill([key], out)[0] else None

    def __len__(self) -> int:
        index = _index_of(self)
        with index.lock:
            return len(index.where.keys() | self._pending.keys())

    # ------------------------------------------------------------------ writing
    def save(self, key: str, features: np.ndarray) -> None:
        """Add one image's features; written with the next shard (see ``flush_rows``)."""
        features = np.asarray(features, dtype=np.float32)
        if features.size != self.values:
            raise ValueError(f"features of shape {features.shape}, expected "
                             f"{self.feature_shape}")
        self._pending[key] = features.reshape(-1).copy()
        if len(self._pending) >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        """Write the rows kept in memory as one shard (atomic), then merge if needed."""
        if not self._pending:
            return
        if not (self.directory / "settings.json").is_file():
            self._write_settings()
        self.shard_folder.mkdir(parents=True, exist_ok=True)
        keys = list(self._pending)
        write_shard(self.shard_folder, keys, np.stack([self._pending[k] for k in keys]))
        self._pending.clear()
        if sum(1 for _ in self.shard_folder.glob("*" + SUFFIX)) > COMPACT_AT:
            self.compact(blocking=False)

    def _write_settings(self) -> None:
        with atomic_write(self.directory / "settings.json", "w") as f:
            json.dump(self.settings, f, indent=1, sort_keys=True, default=str)

    def compact(self, *, blocking: bool = True) -> None:
        """Merge the shards smaller than :data:`BIG_SHARD` rows into one (under a lock)."""
        _index_of(self)  # migrates an old layout first: that takes the lock itself
        with store_lock(self.directory, blocking=blocking) as held:
            if not held:
                return
            index = _index_of(self)
            with index.lock:
                small = [(n, s) for n, s in sorted(index.shards.items())
                         if s.n_rows < BIG_SHARD]
                if len(small) < 2:
                    return
                rows: dict[str, np.ndarray] = {}
                for name, shard in small:
                    try:
                        data = shard.rows()
                    except (DamagedShard, OSError) as exc:
                        index.set_aside(name, exc)
                        continue
                    rows.update(zip(shard.keys, data, strict=True))
                if rows:
                    write_shard(self.shard_folder, list(rows), np.stack(list(rows.values())))
                for name, _ in small:
                    (self.shard_folder / name).unlink(missing_ok=True)
                index.forget()


def _fill_from(index: ShardIndex, keys: Sequence[str], out: np.ndarray,
               positions: np.ndarray, found: np.ndarray) -> bool:
    """Fill the rows of the keys not ``found`` yet from the shards ``index`` knows.

    Returns True when a shard had vanished (merged away): the next refresh drops it.
    """
    vanished = False
    with index.lock:
        get = index.where.get
        ids = np.fromiter((-1 if found[j] else get(k, -1) for j, k in enumerate(keys)),
                          np.int64, count=len(keys))
        starts = np.asarray([*index.starts, index.total], np.int64)
        names = list(index.order)
        hit = np.flatnonzero(ids >= 0)
        order = np.argsort(ids[hit], kind="stable")
        hit, sorted_ids = hit[order], ids[hit][order]
        bounds = np.searchsorted(sorted_ids, starts)
        for s, name in enumerate(names):
            lo, hi = bounds[s], bounds[s + 1]
            if lo == hi:
                continue
            try:
                block = index.shards[name].take(sorted_ids[lo:hi] - starts[s])
            except FileNotFoundError:
                vanished = True
                continue
            except (DamagedShard, OSError) as exc:
                index.set_aside(name, exc)
                continue
            _put(out, positions[hit[lo:hi]], block)
            found[hit[lo:hi]] = True
    return vanished


def _put(out: np.ndarray, rows: np.ndarray, block: np.ndarray) -> None:
    """``out[rows] = block``, as one slice when ``rows`` is a contiguous range."""
    block = block.reshape(len(rows), -1)
    if rows[-1] - rows[0] + 1 == len(rows) and np.all(np.diff(rows) == 1):
        out[rows[0] : rows[-1] + 1] = block
    else:
        out[rows] = block


#: Merge small shards when a folder holds more than this many.
COMPACT_AT = 32
#: Shards of at least this many rows are left alone by merging.
BIG_SHARD = 65536

_INDEXES: dict[tuple[str, int], ShardIndex] = {}
_INDEXES_LOCK = threading.Lock()


def _index_of(cache: FeatureCache) -> ShardIndex:
    """The process-wide index of one settings folder, brought up to date."""
    with _INDEXES_LOCK:
        index = _INDEXES.setdefault((str(cache.directory), cache.values),
                                    ShardIndex(cache.directory, cache.values))
    index.refresh()
    return index


