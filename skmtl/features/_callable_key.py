"""Identify a callable by what it computes, for the feature cache key.

A custom ``preprocess`` changes features, so the cache folder must change whenever the
function does: two lambdas, or a function edited under the same name, must not share
features. :func:`callable_key` hashes

* a Python function's code (bytecode, constants, names, nested code objects, flags),
  its defaults, the values of its closure cells and the globals its code loads,
  recursively for the functions it references;
* ``functools.partial``: the function, its arguments and keywords;
* bound methods: the function and the instance;
* instances of a class with ``__call__``: the class and the instance's ``__dict__``;
* functions, classes and ufuncs of installed libraries (the standard library and
  site-packages): their qualified name and the library's version;
* modules: their name (installed) or the digest of their source file (your own);
* plain values (numbers, strings, bytes, None, tuples, lists, dicts, sets) and numeric
  NumPy arrays by content.

Anything else (an open file, a random generator, a Keras layer with variables...) cannot
be keyed reliably: :func:`callable_key` raises :class:`UnkeyableCallableError`.
"""

from __future__ import annotations

import dis
import functools
import hashlib
import importlib.metadata
import os
import site
import sys
import sysconfig
import types
from typing import Any

import numpy as np

__all__ = ["UnkeyableCallableError", "callable_key", "preprocess_cache_name"]

_PLAIN = (type(None), type(...), bool, int, float, complex, str, bytes)
_GLOBAL_OPS = {"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"}
_CLASS_SKIP = {"__dict__", "__weakref__", "__module__", "__qualname__", "__doc__"}


class UnkeyableCallableError(ValueError):
    """A callable references something whose value cannot be digested."""


@functools.lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    paths = set(site.getsitepackages()) | {site.getusersitepackages()}
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(sysconfig.get_paths().get(name, ""))
    return tuple(os.path.realpath(p) + os.sep for p in paths if p)


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


@functools.lru_cache(maxsize=512)
def _library_version(module_name: str) -> str | None:
    """The version of the installed library a module belongs to; None for your own code.

    Builtin modules and the standard library count as libraries (the Python version).
    """
    top = module_name.partition(".")[0]
    module = sys.modules.get(module_name) or sys.modules.get(top)
    path = getattr(module, "__file__", None)
    if module is None or top in ("__main__", "__mp_main__"):
        return None
    if path is not None and not os.path.realpath(path).startswith(_library_roots()):
        return None
    dists = _packages_distributions().get(top, [])
    for dist in dists:
        try:
            return f"{dist}=={importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover
            continue
    version = getattr(sys.modules.get(top), "__version__", None)
    return f"{top}=={version}" if version else f"python=={sys.version_info[:2]}"


def _file_digest(path: str) -> str:
    from skmtl.features.store import digest_file

    return digest_file(path)


class _Keyer:
    def __init__(self) -> None:
        self.hash = hashlib.blake2b(digest_size=20)
        self.active: set[int] = set()

    def token(self, *parts: Any) -> None:
        for part in parts:
            data = part if isinstance(part, bytes) else str(part).encode()
            self.hash.update(len(data).to_bytes(8, "little") + data)

    def key(self, obj: Any, where: str) -> None:
        if isinstance(obj, _PLAIN):
            self.token(type(obj).__name__, repr(obj))
            return
        if id(obj) in self.active:  # recursion (a function calling itself)
            self.token("cycle", getattr(obj, "__qualname__", type(obj).__qualname__))
            return
        self.active.add(id(obj))
        try:
            self._key(obj, where)
        finally:
            self.active.discard(id(obj))

    def _key(self, obj: Any, where: str) -> None:
        if isinstance(obj, tuple | list):
            self.token(type(obj).__name__, len(obj))
            for item in obj:
                self.key(item, where)
        elif isinstance(obj, dict):
            self.token("dict", len(obj))
            for k, v in obj.items():  # insertion order: part of the value
                self.key(k, where)
                self.key(v, f"{where}[{k!r}]")
        elif isinstance(obj, set | frozenset):
            sub = sorted(callable_key(item, where) for item in obj)
            self.token(type(obj).__name__, *sub)
        elif isinstance(obj, np.ndarray | np.generic):
            if np.asarray(obj).dtype.hasobject:
                raise UnkeyableCallableError(f"{where} is an object array")
            from skmtl.features.store import digest_array

            self.token("ndarray", digest_array(np.asarray(obj)))
        elif isinstance(obj, types.ModuleType):
            version = _library_version(obj.__name__)
            path = getattr(obj, "__file__", None)
            self.token("module", obj.__name__,
                       version if version or path is None else _file_digest(path))
        elif isinstance(obj, functools.partial):
            self.token("partial")
            self.key(obj.func, f"{where}.func")
            self.key(obj.args, f"{where}.args")
            self.key(obj.keywords, f"{where}.keywords")
        elif isinstance(obj, types.MethodType):
            self.token("method")
            self.key(obj.__func__, where)
            self.key(obj.__self__, f"{where}.__self__")
        elif isinstance(obj, types.FunctionType):
            self._function(obj, where)
        elif isinstance(obj, types.CodeType):
            self._code(obj, where)
        elif isinstance(obj, type):
            self._class(obj, where)
        elif isinstance(obj, np.ufunc):
            self.token("ufunc", obj.__name__, _library_version("numpy"))
        elif isinstance(obj, types.BuiltinFunctionType | types.BuiltinMethodType):
            owner = getattr(obj, "__self__", None)
            module = getattr(obj, "__module__", None) or getattr(owner, "__name__", "")
            self.token("builtin", module, obj.__qualname__, _library_version(module or "builtins"))
            if owner is not None and not isinstance(owner, types.ModuleType):
                self.key(owner, f"{where}.__self__")
        elif isinstance(obj, types.WrapperDescriptorType | types.MethodDescriptorType
                        | types.ClassMethodDescriptorType):
            self.token("descriptor", obj.__qualname__)
            self.key(obj.__objclass__, where)
        elif isinstance(obj, staticmethod | classmethod):
            self.token(type(obj).__name__)
            self.key(obj.__func__, where)
        elif isinstance(obj, property):
            self.token("property")
            for part in (obj.fget, obj.fset, obj.fdel):
                self.key(part, where)
        elif (isinstance(getattr(obj, "__qualname__", None), str)
              and _library_version(getattr(obj, "__module__", None) or "") is not None):
            # a library's function-like object (e.g. NumPy's array-function dispatchers)
            self.token("libcallable", obj.__module__, obj.__qualname__,
                       _library_version(obj.__module__))
        elif callable(obj) and hasattr(obj, "__dict__"):
            self.token("instance")
            self.key(type(obj), f"{where} (class)")
            self.key(vars(obj), f"{where}.__dict__")
        else:
            raise UnkeyableCallableError(
                f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}, whose value "
                "cannot be digested"
            )

    def _function(self, fn: types.FunctionType, where: str) -> None:
        version = _library_version(fn.__module__ or "")
        if version is not None:  # installed library: its name and version say it all
            self.token("libfunction", fn.__module__, fn.__qualname__, version)
            return
        name = fn.__qualname__
        self.token("function", sys.version_info[:2])
        self._code(fn.__code__, name)
        self.key(fn.__defaults__, f"default of {name}")
        self.key(fn.__kwdefaults__, f"default of {name}")
        for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
            try:
                value = cell.cell_contents
            except ValueError:  # empty cell
                self.token("empty cell", var)
                continue
            self.token("cell", var)
            self.key(value, f"variable {var!r} that {name} closes over")
        for global_name in sorted(_global_names(fn.__code__)):
            self.token("global", global_name)
            if global_name in fn.__globals__:
                self.key(fn.__globals__[global_name], f"global {global_name!r} used by {name}")
            else:
                builtins = fn.__globals__.get("__builtins__", {})
                builtins = vars(builtins) if isinstance(builtins, types.ModuleType) else builtins
                if global_name in builtins:
                    self.key(builtins[global_name], f"builtin {global_name!r}")
                else:
                    self.token("undefined")

    def _code(self, code: types.CodeType, where: str) -> None:
        self.token("code", code.co_code, code.co_argcount, code.co_posonlyargcount,
                   code.co_kwonlyargcount, code.co_flags, code.co_names, code.co_varnames,
                   code.co_freevars, code.co_cellvars,
                   getattr(code, "co_exceptiontable", b""))
        self.token("consts", len(code.co_consts))
        for const in code.co_consts:
            self.key(const, where)

    def _class(self, cls: type, where: str) -> None:
        version = _library_version(cls.__module__)
        if version is not None:
            self.token("libclass", cls.__module__, cls.__qualname__, version)
            return
        self.token("class", cls.__qualname__)
        for base in cls.__bases__:
            self.key(base, f"base of {cls.__qualname__}")
        for attr, value in sorted(vars(cls).items()):
            if attr not in _CLASS_SKIP:
                self.token(attr)
                self.key(value, f"{cls.__qualname__}.{attr}")


def _global_names(code: types.CodeType) -> set[str]:
    names = {ins.argval for ins in dis.get_instructions(code) if ins.opname in _GLOBAL_OPS}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def callable_key(fn: Any, where: str = "preprocess") -> str:
    """A hex digest that changes whenever ``fn`` may compute something else.

    Parameters
    ----------
    fn : callable
        A function, lambda, ``functools.partial``, bound method, callable instance,
        NumPy ufunc or builtin.
    where : str, default="preprocess"
        How to name ``fn`` in error messages.

    Returns
    -------
    str
        40 hex characters.

    Raises
    ------
    UnkeyableCallableError
        ``fn`` references a value that cannot be digested; the message says which.
    """
    keyer = _Keyer()
    keyer.key(fn, where)
    return keyer.hash.hexdigest()


def preprocess_cache_name(fn: Any) -> str:
    """``module.qualname#key`` of a callable ``preprocess``, for the cache settings.

    Raises
    ------
    ValueError
        ``fn`` cannot be keyed reliably: the message says why and what to do instead.
    """
    try:
        key = callable_key(fn, "preprocess")
    except UnkeyableCallableError as exc:
        raise ValueError(
            f"This preprocess cannot be used with a feature cache: {exc}, so its features "
            "could not be told apart from those of another preprocess. Use cache=None, or "
            "a function whose defaults, closure and globals are numbers, strings, arrays, "
            "functions or modules (e.g. a module-level function, or functools.partial "
            "with such arguments)."
        ) from exc
    name = getattr(fn, "__qualname__", type(fn).__qualname__)
    return f"{getattr(fn, '__module__', '')}.{name}#{key}"
