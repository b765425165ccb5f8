"""Shard files of the feature store: immutable blocks of (content key, feature row) pairs.

One shard is one file, written once (to a temporary name, then renamed into place) and
never modified: ::

    header (64 bytes): magic, rows, values per row, CRC-32 of the keys, CRC-32 of the rows
    keys: rows x 20 bytes (the content keys, binary)
    zero padding to a multiple of 64 bytes
    rows: rows x values float32, C order (memory-mapped when read)

A file whose length differs from what its header says, or whose keys do not match their
checksum, is damaged as soon as it is opened; the rows' checksum is checked the first
time a process reads rows from the file (memoised by inode, size, mtime and ctime, so a
file changed in place is checked again). Writers never share a file (each name holds the
writer's pid and a random token), so two processes need no lock to add features;
:func:`store_lock` serialises only the merging of small shards and the migration of the
old one-file-per-image layout.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import secrets
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from skmtl._utils.files import atomic_write

__all__ = ["KEY_BYTES", "SUFFIX", "DamagedShard", "Shard", "ShardIndex", "migrate_npy_layout",
           "new_shard_name", "store_lock", "write_shard"]

MAGIC = b"SKMTLSH1"
_HEADER = struct.Struct("<8sQQII")
HEADER_SIZE = 64
KEY_BYTES = 20
SUFFIX = ".shard"

#: (path, inode, size, mtime_ns, ctime_ns) of shards whose rows passed their checksum.
_VERIFIED: set[tuple] = set()


class DamagedShard(ValueError):
    """A shard file that cannot be trusted (short, garbage, checksum mismatch)."""


def _rows_offset(n_rows: int) -> int:
    end = HEADER_SIZE + n_rows * KEY_BYTES
    return -(-end // 64) * 64


def new_shard_name() -> str:
    """A name no other writer uses: time, pid and a random token (sorts by age)."""
    return f"{time.time_ns():016x}-{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"


def write_shard(folder: Path, keys: Sequence[str], rows: np.ndarray) -> Path:
    """Write ``rows`` (n, values) under their hex ``keys`` as one new shard, atomically."""
    rows = np.ascontiguousarray(rows, dtype=np.float32).reshape(len(keys), -1)
    key_block = b"".join(bytes.fromhex(k) for k in keys)
    if len(key_block) != KEY_BYTES * len(keys):
        raise ValueError(f"content keys must be {KEY_BYTES} bytes (hex {2 * KEY_BYTES})")
    header = _HEADER.pack(MAGIC, len(keys), rows.shape[1], zlib.crc32(key_block),
                          zlib.crc32(memoryview(rows).cast("B")))
    path = folder / new_shard_name()
    with atomic_write(path) as f:
        f.write(header.ljust(HEADER_SIZE, b"\0"))
        f.write(key_block)
        f.write(b"\0" * (_rows_offset(len(keys)) - HEADER_SIZE - len(key_block)))
        f.write(memoryview(rows).cast("B"))
    return path


class Shard:
    """An opened shard: its keys in memory, its rows memory-mapped on first read.

    Raises :class:`DamagedShard` when the header, the length or the keys are wrong.
    """

    def __init__(self, path: Path, values_per_row: int) -> None:
        self.path = path
        st = os.stat(path)
        self.identity = (str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with open(path, "rb") as f:
            head = f.read(HEADER_SIZE)
            if len(head) < HEADER_SIZE:
                raise DamagedShard(f"{st.st_size} bytes, shorter than the header")
            magic, n_rows, values, self._crc_keys, self._crc_rows = _HEADER.unpack_from(head)
            if magic != MAGIC:
                raise DamagedShard("not a feature shard (bad magic bytes)")
            if values != values_per_row:
                raise DamagedShard(f"{values} values per row, expected {values_per_row}")
            self.n_rows, self.values = int(n_rows), int(values)
            self.offset = _rows_offset(self.n_rows)
            expected = self.offset + 4 * self.n_rows * self.values
            if st.st_size != expected:
                raise DamagedShard(f"{st.st_size} bytes, expected {expected} (truncated?)")
            key_block = f.read(KEY_BYTES * self.n_rows)
        if zlib.crc32(key_block) != self._crc_keys:
            raise DamagedShard("the keys do not match their checksum")
        self.keys = [key_block[i : i + KEY_BYTES].hex()
                     for i in range(0, len(key_block), KEY_BYTES)]
        self._rows: np.ndarray | None = None

    def rows(self) -> np.ndarray:
        """All rows, memory-mapped, checked against their checksum once per process."""
        if self._rows is None:
            if self.n_rows == 0:
                rows = np.zeros((0, self.values), np.float32)
            else:
                rows = _map_rows(self.path, self.offset, (self.n_rows, self.values))
            if self.identity not in _VERIFIED:
                if zlib.crc32(memoryview(np.ascontiguousarray(rows)).cast("B")) != \
                        self._crc_rows:
                    raise DamagedShard("the feature rows do not match their checksum")
                _VERIFIED.add(self.identity)
            self._rows = rows
        return self._rows

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows at the given positions (a contiguous range is sliced, not gathered)."""
        data = self.rows()
        if len(rows) and rows[-1] - rows[0] + 1 == len(rows) and np.all(np.diff(rows) == 1):
            return data[rows[0] : rows[-1] + 1]
        return data[rows]


def _map_rows(path: Path, offset: int, shape: tuple[int, int]) -> np.ndarray:
    """The rows, memory-mapped read-only; pre-faulted in one go where the OS can
    (``MAP_POPULATE``: a page fault per 4 KiB page costs more than the copy itself)."""
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if not populate:  # pragma: no cover - not Linux
        return np.memmap(path, np.float32, "r", offset=offset, shape=shape)
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_SHARED | populate,
                           prot=mmap.PROT_READ)
    return np.frombuffer(mapped, np.float32, count=shape[0] * shape[1],
                         offset=offset).reshape(shape)


@contextmanager
def store_lock(folder: Path, *, blocking: bool = True) -> Iterator[bool]:
    """An exclusive lock on ``folder`` between processes; yields whether it is held.

    Without ``fcntl`` (Windows) nothing is locked and False is yielded: callers then skip
    the work that needs the lock (merging, migrating), which is only housekeeping.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield False
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class ShardIndex:
    """Which shard and row holds each key, for the shards a process has opened."""

    def __init__(self, directory: Path, values: int) -> None:
        self.directory = directory
        self.folder = directory / "shards"
        self.values = values
        self.shards: dict[str, Shard] = {}
        #: content key -> global row id; the rows of shard ``order[i]`` are numbered from
        #: ``starts[i]``.
        self.where: dict[str, int] = {}
        self.order: list[str] = []
        self.starts: list[int] = []
        self.total = 0
        self.lock = threading.RLock()
        self.migrated = False

    def refresh(self) -> None:
        with self.lock:
            if not self.migrated:
                self.migrated = True
                migrate_npy_layout(self.directory, self.values)
            # A shard listed by the scan but gone by the time it is opened was merged
            # away by another process: scan again to find the shard that now holds its rows.
            for _ in range(5):
                if not self._scan():
                    break

    def _scan(self) -> bool:
        """Bring the index up to the folder's shards; True when a listed shard vanished."""
        try:
            entries = {e.name: e for e in os.scandir(self.folder) if e.name.endswith(SUFFIX)}
        except FileNotFoundError:
            entries = {}
        identities = {n: _identity(entries[n]) for n in self.shards if n in entries}
        vanished = any(i is None for i in identities.values())
        stale = [n for n, s in self.shards.items() if identities.get(n) != s.identity]
        for name in stale:
            del self.shards[name]
        if stale:
            self._rebuild()
        for name in sorted(entries):
            if name in self.shards:
                continue
            try:
                self.shards[name] = Shard(self.folder / name, self.values)
            except FileNotFoundError:  # merged away meanwhile (not a dangling link)
                vanished = vanished or not os.path.lexists(self.folder / name)
                continue
            except (DamagedShard, OSError) as exc:
                self.set_aside(name, exc)
                continue
            self._add(name)
        return vanished

    def _add(self, name: str) -> None:
        """Number the new shard's rows after all others: key -> global row id."""
        keys = self.shards[name].keys
        self.order.append(name)
        self.starts.append(self.total)
        self.where.update(zip(keys, range(self.total, self.total + len(keys)), strict=True))
        self.total += len(keys)

    def _rebuild(self) -> None:
        self.where, self.order, self.starts, self.total = {}, [], [], 0
        for name in sorted(self.shards):
            self._add(name)

    def forget(self) -> None:
        self.shards = {}
        self._rebuild()
        self.refresh()

    def set_aside(self, name: str, exc: Exception) -> None:
        """Warn about a damaged shard, rename it ``*.damaged`` and drop its rows."""
        path = self.folder / name
        warnings.warn(f"Damaged feature cache shard '{path}' ({exc}); its rows are "
                      "recomputed.", RuntimeWarning, stacklevel=4)
        with contextlib.suppress(OSError):
            os.replace(path, path.with_suffix(".damaged"))
        if self.shards.pop(name, None) is not None:
            self._rebuild()


def _identity(entry: os.DirEntry) -> tuple | None:
    """The file's path, inode, size and times; None once it is gone (merged away)."""
    try:
        st = entry.stat()
    except FileNotFoundError:
        return None
    return (entry.path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def migrate_npy_layout(directory: Path, values: int) -> int:
    """Move the one-``.npy``-per-image entries of earlier versions into one shard.

    Returns the number of entries migrated. Entries that cannot be read or have another
    size are dropped (they would have been recomputed anyway).
    """
    try:
        old = [p for p in directory.iterdir() if p.is_dir() and len(p.name) == 2]
    except FileNotFoundError:
        return 0
    if not old:
        return 0
    with store_lock(directory) as held:
        if not held:
            return 0
        keys, rows, files = [], [], []
        for folder in old:
            for file in folder.glob("*.npy"):
                files.append(file)
                try:
                    features = np.load(file, allow_pickle=False)
                except Exception:
                    continue
                if features.size == values and np.issubdtype(features.dtype, np.floating) \
                        and len(file.stem) == 2 * KEY_BYTES:
                    keys.append(file.stem)
                    rows.append(features.reshape(-1))
        if keys:
            (directory / "shards").mkdir(parents=True, exist_ok=True)
            write_shard(directory / "shards", keys, np.stack(rows))
        for file in files:
            file.unlink(missing_ok=True)
        for folder in old:
            with contextlib.suppress(OSError):
                folder.rmdir()
        return len(keys)
