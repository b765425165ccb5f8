"""Read PyTorch ``.pth`` state dicts into NumPy arrays, without PyTorch.

Both serialisations are supported: the legacy one (before PyTorch 1.6: a sequence of
pickles followed by raw storage bytes) and the zip layout (``<name>/data.pkl`` plus one
file per storage).

Nothing in the file is trusted. Every pickle goes through a restricted unpickler: the
legacy header pickles (magic number, protocol version, system info) and the storage key
list may only hold plain data (no global at all); the state dict pickle may only name
tensor, storage and ordered dict rebuilders, which are local stand-ins that check their
arguments. So a crafted file cannot run code, and sizes, offsets and strides are checked
against the bytes the file really holds before anything is allocated: a file cannot make
the reader allocate much more memory than its own size.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["load_torch_state_dict"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


#: Largest element count, offset, dimension or stride accepted anywhere (2**48 elements is
#: far beyond any real weights file; the real bound is the file's size, checked later).
_MAX_COUNT = 1 << 48

#: Types a header pickle, or the storage key list, may hold.
_PLAIN_TYPES = (type(None), bool, int, float, str, bytes, tuple, list, dict)


def _count(value: Any, what: str) -> int:
    """A non-negative int below ``_MAX_COUNT`` (bool refused), or UnpicklingError."""
    if type(value) is not int or not 0 <= value < _MAX_COUNT:
        raise pickle.UnpicklingError(f"invalid {what} {value!r}")
    return value


def _counts(values: Any, what: str) -> tuple[int, ...]:
    if not isinstance(values, tuple | list) or len(values) > 64:
        raise pickle.UnpicklingError(f"invalid {what} {values!r}")
    return tuple(_count(v, what) for v in values)


class _StorageType:
    __slots__ = ("dtype",)  # no __dict__: a BUILD opcode cannot change the dtype

    def __init__(self, name: str) -> None:
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A storage whose bytes arrive later (legacy) or are read on demand (zip)."""

    __slots__ = ("data", "dtype", "numel")

    def __init__(self, dtype: np.dtype, numel: int) -> None:
        self.dtype, self.numel, self.data = dtype, numel, None


class _Tensor:
    __slots__ = ("offset", "size", "storage", "stride")

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> np.ndarray:
        flat = self.storage.data
        if flat is None:
            raise ValueError("a tensor refers to a storage that the file does not contain")
        numel = int(np.prod(self.size, dtype=object))
        if numel == 0:
            return np.zeros(self.size, flat.dtype)
        if numel > len(flat):  # e.g. a stride-0 expansion to a huge size
            raise ValueError(f"a tensor of shape {self.size} has more elements than its "
                             f"storage ({len(flat)})")
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride,
                                                             strict=True))
        if last >= len(flat):
            raise ValueError("a tensor reaches past the end of its storage")
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :], shape=self.size, strides=[s * itemsize for s in self.stride]
        )
        return np.array(view)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *args: Any) -> _Tensor:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor is not built on a storage")
    size, stride = _counts(size, "tensor size"), _counts(stride, "tensor stride")
    if len(size) != len(stride):
        raise pickle.UnpicklingError(f"tensor size {size} and stride {stride} disagree")
    return _Tensor(storage, _count(offset, "storage offset"), size, stride)


def _rebuild_parameter(data: Any, *args: Any) -> _Tensor:
    if not isinstance(data, _Tensor):
        raise pickle.UnpicklingError("a parameter does not hold a tensor")
    return data


class _PlainUnpickler(pickle.Unpickler):
    """Plain data only: every global and persistent id is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name} where plain data is expected"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("unexpected persistent id where plain data is expected")


def _check_plain(obj: Any, depth: int = 0) -> Any:
    if depth > 16 or not isinstance(obj, _PLAIN_TYPES):
        raise pickle.UnpicklingError(f"unexpected {type(obj).__name__} in a header")
    if isinstance(obj, tuple | list):
        for item in obj:
            _check_plain(item, depth + 1)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _check_plain(key, depth + 1)
            _check_plain(value, depth + 1)
    return obj


def _load_plain(f: Any) -> Any:
    return _check_plain(_PlainUnpickler(f).load())


class _RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds tensors and ordered dicts; refuses any other global."""

    def __init__(self, file: Any, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: a weights file should only hold "
            "tensors"
        )

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError("unexpected persistent id")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
        if not isinstance(key, str | int) or isinstance(key, bool):
            raise pickle.UnpicklingError("invalid storage key")
        key, numel = str(key), _count(numel, "storage size")
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(storage_type.dtype, numel)
        elif storage.dtype != storage_type.dtype or storage.numel != numel:
            raise pickle.UnpicklingError(f"storage {key} is declared twice, differently")
        return storage


def _materialise(obj: Any) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict):
        raise ValueError(f"it holds a {type(obj).__name__}, not a state dict")
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    out = {}
    for key, value in obj.items():
        if isinstance(value, _Tensor):
            out[str(key)] = value.array()
    return out


class _BoundedReader:
    """A file whose ``read(n)`` never asks for more than what is left.

    A pickle's length fields are untrusted, and both the buffered file reader and the C
    unpickler allocate the length they are given before finding the file short: a
    ``BINBYTES8`` claiming an exabyte fails with MemoryError, and a claim of a few GB
    really allocates. :meth:`next_pickle` therefore walks each pickle with
    :mod:`pickletools` first (which reads, and so checks, every length against the data
    that is there), then hands the unpickler only those bytes.
    """

    def __init__(self, f: io.BufferedReader) -> None:
        self._f = f
        self._size = os.fstat(f.fileno()).st_size

    def remaining(self) -> int:
        return max(self._size - self._f.tell(), 0)

    def read(self, n: int = -1) -> bytes:
        left = self.remaining()
        return self._f.read(left if n is None or n < 0 else min(n, left))

    def readline(self, limit: int = -1) -> bytes:
        return self._f.readline(limit)

    def next_pickle(self) -> io.BytesIO:
        start = self._f.tell()
        for _ in pickletools.genops(self):
            pass
        end = self._f.tell()
        self._f.seek(start)
        return io.BytesIO(self._f.read(end - start))


def _checked_pickle(data: bytes) -> io.BytesIO:
    """``data`` once :mod:`pickletools` has checked its lengths (see _BoundedReader)."""
    f = io.BytesIO(data)
    for _ in pickletools.genops(f):
        pass
    return io.BytesIO(data[: f.tell()])


def _load_legacy(f: io.BufferedReader) -> dict[str, np.ndarray]:
    reader = _BoundedReader(f)
    storages: dict[str, _Storage] = {}
    magic = _load_plain(reader.next_pickle())
    if type(magic) is not int or magic != _LEGACY_MAGIC:
        raise ValueError("wrong magic number")
    if _load_plain(reader.next_pickle()) != 1001:
        raise ValueError("unsupported legacy protocol version")
    sys_info = _load_plain(reader.next_pickle())
    if not isinstance(sys_info, dict) or sys_info.get("little_endian", True) is not True:
        raise ValueError("unsupported system info (big-endian data?)")
    obj = _RestrictedUnpickler(reader.next_pickle(), storages).load()
    keys = _load_plain(reader.next_pickle())
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValueError("the storage key list is not a list of strings")
    for key in keys:
        storage = storages[key]
        (numel,) = struct.unpack("<q", reader.read(8))
        if numel != storage.numel:
            raise ValueError(f"storage {key} holds {numel} elements, not {storage.numel}")
        nbytes = numel * storage.dtype.itemsize
        if nbytes > reader.remaining():
            raise ValueError("the file is truncated")
        storage.data = np.frombuffer(reader.read(nbytes), dtype=storage.dtype)
    return _materialise(obj)


def _read_member(archive: zipfile.ZipFile, name: str, nbytes: int | None = None) -> bytes:
    """An archive member, stored uncompressed like ``torch.save`` writes them (so a
    compressed "zip bomb" cannot expand in memory), and at least ``nbytes`` long."""
    info = archive.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"archive member {name} is compressed; torch.save never does that")
    if nbytes is not None and info.file_size < nbytes:
        raise ValueError(f"archive member {name} is shorter than its storage")
    with archive.open(info) as f:
        raw = f.read(info.file_size if nbytes is None else nbytes)
    if len(raw) != (info.file_size if nbytes is None else nbytes):
        raise ValueError(f"archive member {name} is truncated")
    return raw


def _load_zip(path: Path) -> dict[str, np.ndarray]:
    storages: dict[str, _Storage] = {}
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise ValueError("the zip archive has no data.pkl")
        prefix = pkl[: -len("data.pkl")]
        raw = _read_member(archive, pkl)
        obj = _RestrictedUnpickler(_checked_pickle(raw), storages).load()
        for key, storage in storages.items():
            raw = _read_member(archive, f"{prefix}data/{key}",
                               storage.numel * storage.dtype.itemsize)
            storage.data = np.frombuffer(raw, dtype=storage.dtype)
    return _materialise(obj)


def load_torch_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a PyTorch state dict file into ``{name: ndarray}``.

    Parameters
    ----------
    path : path
        A ``.pth``/``.pt`` file saved with ``torch.save(state_dict)``, in the legacy or
        the zip serialisation.

    Returns
    -------
    dict of str to ndarray
        Every tensor of the state dict, in file order.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not a readable PyTorch state dict (corrupt, truncated, or holding
        objects other than tensors).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PyTorch weights file '{path}' does not exist.")
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        with open(path, "rb") as f:
            return _load_legacy(f)
    except FileNotFoundError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError, TypeError,
            AttributeError, OverflowError, struct.error, zipfile.BadZipFile, OSError) as exc:
        raise ValueError(
            f"'{path}' is not a readable PyTorch weights file: {exc or type(exc).__name__}"
        ) from exc
