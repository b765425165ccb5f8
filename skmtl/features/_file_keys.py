"""Content keys of image files remembered by their stat, so a rerun does not re-read them.

A file's content key (the digest of its bytes) is stored under a digest of its absolute
path, inode, size, mtime and ctime. A file rewritten in place with its size and mtime
restored (``os.utime``) still gets a new ctime, which the user cannot set back, so its
key is computed again. A file changed less than :data:`RACY_NS` ago is not remembered
(timestamps may be too coarse to show a second change within that time).

The index is a folder of append-only files of fixed 40-byte records (stat digest,
content key, CRC-32 of both), one file per writing process, so processes never write the
same file; a torn last record (a killed writer) or a damaged one is ignored. When there
are many files, one process merges them under the store's lock.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
import zlib
from pathlib import Path

from skmtl._utils.files import atomic_write
from skmtl.features._shards import store_lock

__all__ = ["RACY_NS", "FileKeys"]

#: Files changed less than this long ago are not remembered.
RACY_NS = 2_000_000_000
_RECORD = 40
_MERGE_AT = 16
#: Per process and folder: the records read so far, and how far each file was read.
_MEMO: dict[str, tuple[dict[bytes, str], dict[str, int]]] = {}
_LOCK = threading.Lock()


def _stat_id(path: str, st: os.stat_result, cwd: str | None = None) -> bytes:
    """Digest of the path (made absolute, not normalised) and the stat that dates it."""
    if not os.path.isabs(path):
        path = os.path.join(cwd or os.getcwd(), path)
    text = f"{path}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}"
    return _blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).digest()


_blake2b = hashlib.blake2b


def _record(stat_id: bytes, key: str) -> bytes:
    body = stat_id + bytes.fromhex(key)
    return body + zlib.crc32(body).to_bytes(4, "little")


class FileKeys:
    """The persistent (stat -> content key) index of one cache location.

    Parameters
    ----------
    folder : path
        ``<cache>/skmtl-features/file-keys``, shared by every setting.
    verify : bool, default=False
        Never trust the index: :meth:`lookup` always misses, so every file is read and
        hashed (and the index refreshed).
    """

    def __init__(self, folder: str | os.PathLike, *, verify: bool = False) -> None:
        self.folder = Path(folder)
        self.verify = verify
        self._own: Path | None = None

    def _known(self) -> dict[bytes, str]:
        """Every record in the folder, reading only what was appended since last time."""
        with _LOCK:
            known, offsets = _MEMO.setdefault(str(self.folder), ({}, {}))
            try:
                entries = list(os.scandir(self.folder))
            except FileNotFoundError:
                return known
            names = {e.name for e in entries if e.name.endswith(".keys")}
            for name in sorted(names):
                start = offsets.get(name, 0)
                try:
                    with open(self.folder / name, "rb") as f:
                        f.seek(start)
                        data = f.read()
                except FileNotFoundError:
                    continue
                whole = len(data) - len(data) % _RECORD  # a torn record is left for later
                for i in range(0, whole, _RECORD):
                    body = data[i : i + 36]
                    if int.from_bytes(data[i + 36 : i + 40], "little") == zlib.crc32(body):
                        known[body[:16]] = body[16:].hex()
                offsets[name] = start + whole
            return known

    def lookup(self, path: str) -> tuple[str | None, bytes | None]:
        """(remembered key or None, stat id to remember it under or None if racy)."""
        st = os.stat(path)
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_NS:
            return None, None
        stat_id = _stat_id(path, st)
        if self.verify:
            return None, stat_id
        return self._known().get(stat_id), stat_id

    def lookup_many(self, paths: list[str]) -> list[tuple[str | None, bytes | None]]:
        """:meth:`lookup` of each path; an unreadable one gives (None, None)."""
        known = {} if self.verify else self._known()
        settled = time.time_ns() - RACY_NS
        cwd, stat, found = os.getcwd(), os.stat, []
        for path in paths:
            try:
                st = stat(path)
            except OSError:
                found.append((None, None))
                continue
            if st.st_mtime_ns > settled or st.st_ctime_ns > settled:
                found.append((None, None))
                continue
            stat_id = _stat_id(path, st, cwd)
            found.append((known.get(stat_id), stat_id))
        return found

    @staticmethod
    def still(path: str, stat_id: bytes) -> bool:
        """Whether ``path`` still has the stat ``stat_id`` was taken from."""
        try:
            return _stat_id(path, os.stat(path)) == stat_id
        except OSError:
            return False

    def remember(self, pairs: list[tuple[bytes, str]]) -> None:
        """Append (stat id, content key) records to this process's file."""
        if not pairs:
            return
        known = _MEMO.setdefault(str(self.folder), ({}, {}))[0]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if self._own is None:
                self._own = self.folder / f"{os.getpid()}-{secrets.token_hex(4)}.keys"
            fd = os.open(self._own, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                os.write(fd, b"".join(_record(s, k) for s, k in pairs))
            finally:
                os.close(fd)
        except OSError:  # a read-only cache still serves features
            return
        with _LOCK:
            known.update((s, k) for s, k in pairs)
        self._maybe_merge()

    def _maybe_merge(self) -> None:
        files = list(self.folder.glob("*.keys"))
        if len(files) <= _MERGE_AT:
            return
        with store_lock(self.folder, blocking=False) as held:
            if not held:
                return
            records = {}
            files = sorted(self.folder.glob("*.keys"))
            for file in files:
                data = file.read_bytes()
                for i in range(0, len(data) - len(data) % _RECORD, _RECORD):
                    body = data[i : i + 36]
                    if int.from_bytes(data[i + 36 : i + 40], "little") == zlib.crc32(body):
                        records[body[:16]] = body[16:]
            merged = self.folder / f"merged-{time.time_ns():016x}-{secrets.token_hex(4)}.keys"
            with atomic_write(merged) as f:
                f.write(b"".join(_record(s, k.hex()) for s, k in records.items()))
            for file in files:
                file.unlink(missing_ok=True)
            self._own = None
