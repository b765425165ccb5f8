"""Wheels for an offline install: skmtl's own, downloaded ones, and installed ones repacked.

- :func:`missing_requirements` walks the requirements of skmtl (read from its wheel) through
  the installed distributions, stopping at the packages an image already has (Kaggle's).
- :func:`build_source_wheel` builds skmtl's wheel from its source tree (``pip wheel
  --no-deps --no-build-isolation``: no index needed).
- :func:`download_wheel` gets a wheel of the installed version from the index (pip's HTTP
  cache makes a repeat cheap); it needs the index.
- :func:`repack_installed` writes a wheel from an installed distribution's files (its
  ``RECORD``), which needs no network. Files installed outside site-packages (console
  scripts, which pip regenerates from ``entry_points.txt``, and data files) are left out.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as metadata
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from email.parser import Parser
from pathlib import Path

__all__ = ["build_source_wheel", "canonical", "download_wheel", "missing_requirements",
           "repack_installed", "wheel_requirements"]

#: A zip entry's date for reproducible wheels (the earliest a zip can hold).
_EPOCH = (1980, 1, 1, 0, 0, 0)


def canonical(name: str) -> str:
    """PEP 503 normalised name: ``Scikit_Learn`` -> ``scikit-learn``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pip(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def _tail(process: subprocess.CompletedProcess) -> str:
    lines = [line for line in (process.stderr or process.stdout).splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"exit status {process.returncode}"


def wheel_requirements(wheel: str | Path) -> list[str]:
    """The ``Requires-Dist`` lines of a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist()
                    if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(name).decode("utf-8"))
    return meta.get_all("Requires-Dist") or []


def missing_requirements(requirements: list[str], present: set[str]) -> dict[str, str]:
    """Name -> installed version of every distribution needed by ``requirements`` (extras
    and markers that do not apply left out) that is not in ``present``, recursively.

    Raises
    ------
    ValueError
        A needed distribution is not installed here, or its version does not fit.
    """
    from packaging.requirements import Requirement

    present = {canonical(n) for n in present}
    found: dict[str, str] = {}
    queue = list(requirements)
    while queue:
        requirement = Requirement(queue.pop(0))
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonical(requirement.name)
        if name in present or name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ValueError(f"'{requirement}' is needed but not installed here: pip install "
                             "it, then bundle again.") from None
        if not requirement.specifier.contains(dist.version, prereleases=True):
            raise ValueError(f"'{requirement}' is needed but {name} {dist.version} is "
                             "installed here.")
        found[name] = dist.version
        queue += dist.requires or []
    return found


def build_source_wheel(source: Path, dest: Path) -> Path:
    """skmtl's wheel from its source tree, built in a clean copy (no stale ``build/``).

    Uses the installed setuptools (``--no-build-isolation``), so no index is needed.
    """
    with tempfile.TemporaryDirectory(prefix="skmtl-wheel-") as tmp:
        tree = Path(tmp) / "src"
        shutil.copytree(source / "skmtl", tree / "skmtl",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for extra in ("pyproject.toml", "README.md", "LICENSE", "setup.py", "setup.cfg"):
            if (source / extra).is_file():
                shutil.copy2(source / extra, tree / extra)
        built = Path(tmp) / "wheel"
        done = _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(built), str(tree))
        wheels = sorted(built.glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise ValueError(f"Could not build skmtl's wheel from '{source}' ({_tail(done)}); "
                             "it needs setuptools and wheel installed.")
        dest.mkdir(parents=True, exist_ok=True)
        return Path(shutil.move(str(wheels[0]), dest / wheels[0].name))


def download_wheel(name: str, version: str, dest: Path, timeout: float = 15) -> Path:
    """A wheel of ``name==version`` from the package index (or pip's cache of it).

    Raises OSError when the index cannot give one (no network, no wheel published).
    """
    with tempfile.TemporaryDirectory(prefix="skmtl-download-") as tmp:
        done = _pip("download", "--no-deps", "--only-binary=:all:", "-q", "--timeout",
                    str(timeout), "--retries", "1", "-d", tmp, f"{name}=={version}")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise OSError(f"pip download {name}=={version}: {_tail(done)}")
        dest.mkdir(parents=True, exist_ok=True)
        return Path(shutil.move(str(wheels[0]), dest / wheels[0].name))


def _tag(wheel_text: str) -> str:
    """One compressed tag (``py2.py3-none-any``) from the ``Tag:`` lines of a WHEEL file."""
    tags = [line.split(":", 1)[1].strip() for line in wheel_text.splitlines()
            if line.startswith("Tag:")]
    if not tags:
        raise ValueError("no Tag in WHEEL")
    parts = list(zip(*(t.split("-") for t in tags), strict=True))
    return "-".join(".".join(dict.fromkeys(".".join(p).split("."))) for p in parts)


def _entry(name: str) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name, _EPOCH)
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.external_attr = 0o644 << 16
    return entry


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def repack_installed(name: str, dest: Path) -> tuple[Path, list[str]]:
    """A wheel of the installed distribution ``name``, from the files its RECORD lists.

    Returns the wheel and the files left out (installed outside site-packages).

    Raises
    ------
    ValueError
        Not installed, installed without a RECORD, or installed in editable mode.
    """
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise ValueError(f"{name} is not installed here, so it cannot be repacked.") from None
    direct = dist.read_text("direct_url.json")
    if direct and json.loads(direct).get("dir_info", {}).get("editable"):
        raise ValueError(f"{name} is installed in editable mode: build its wheel from its "
                         "source tree instead.")
    files, wheel_text = dist.files, dist.read_text("WHEEL")
    if not files or not wheel_text:
        raise ValueError(f"{name} {dist.version} was installed without a RECORD or WHEEL "
                         "file, so it cannot be repacked into a wheel.")
    info = next(f.parts[0] for f in files if f.parts[0].endswith(".dist-info"))
    skipped, entries = [], []
    for file in files:
        if file.parts[0] == "..":
            skipped.append(file.as_posix())
        elif not ("__pycache__" in file.parts or file.suffix == ".pyc" or (
                file.parts[0] == info and file.name in (
                    "RECORD", "INSTALLER", "REQUESTED", "direct_url.json"))):
            entries.append(file)
    target = dest / f"{info[: -len('.dist-info')]}-{_tag(wheel_text)}.whl"
    dest.mkdir(parents=True, exist_ok=True)
    record = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(entries, key=lambda f: (f.parts[0] == info, f.as_posix())):
            data = Path(dist.locate_file(file)).read_bytes()
            zf.writestr(_entry(file.as_posix()), data)
            record.append(f"{file.as_posix()},{_record_hash(data)},{len(data)}")
        record.append(f"{info}/RECORD,,")
        zf.writestr(_entry(f"{info}/RECORD"), "\n".join(record) + "\n")
    return target, skipped
