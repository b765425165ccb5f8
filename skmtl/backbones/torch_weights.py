"""Read PyTorch ``.pth`` state dicts into NumPy arrays, without PyTorch.

Both serialisations are supported: the legacy one (before PyTorch 1.6: a sequence of
pickles followed by raw storage bytes) and the zip layout (``<name>/data.pkl`` plus one
file per storage). The unpickler is restricted: it rebuilds tensors, storages and ordered
dicts and refuses every other global, so a malicious file cannot run code.
"""

from __future__ import annotations

import io
import os
import pickle
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


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A storage whose bytes arrive later (legacy) or are read on demand (zip)."""

    def __init__(self, dtype: np.dtype, numel: int) -> None:
        self.dtype, self.numel, self.data = dtype, numel, None


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> np.ndarray:
        flat = self.storage.data
        if flat is None:
            raise ValueError("a tensor refers to a storage that the file does not contain")
        itemsize = flat.dtype.itemsize
        if self.size and self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride,
                                                                       strict=True)) >= len(flat):
            raise ValueError("a tensor reaches past the end of its storage")
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :], shape=self.size, strides=[s * itemsize for s in self.stride]
        )
        return np.array(view)


def _rebuild_tensor(storage, offset, size, stride, *args) -> _Tensor:
    return _Tensor(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, *args) -> Any:
    return data


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
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, int(numel))
        return self.storages[key]


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


def _load_legacy(f: io.BufferedReader) -> dict[str, np.ndarray]:
    storages: dict[str, _Storage] = {}
    if pickle.load(f) != _LEGACY_MAGIC:
        raise ValueError("wrong magic number")
    pickle.load(f)  # protocol version
    pickle.load(f)  # sys info
    obj = _RestrictedUnpickler(f, storages).load()
    keys = _RestrictedUnpickler(f, storages).load()
    for key in keys:
        storage = storages[str(key)]
        (numel,) = struct.unpack("<q", f.read(8))
        nbytes = numel * storage.dtype.itemsize
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise ValueError("the file is truncated")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    return _materialise(obj)


def _load_zip(path: Path) -> dict[str, np.ndarray]:
    storages: dict[str, _Storage] = {}
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise ValueError("the zip archive has no data.pkl")
        prefix = pkl[: -len("data.pkl")]
        with archive.open(pkl) as f:
            obj = _RestrictedUnpickler(io.BytesIO(f.read()), storages).load()
        for key, storage in storages.items():
            raw = archive.read(f"{prefix}data/{key}")
            storage.data = np.frombuffer(raw, dtype=storage.dtype)[: storage.numel]
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
            AttributeError, struct.error, zipfile.BadZipFile, OSError) as exc:
        raise ValueError(
            f"'{path}' is not a readable PyTorch weights file: {exc or type(exc).__name__}"
        ) from exc
