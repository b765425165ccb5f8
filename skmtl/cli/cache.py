"""``skmtl cache``: show and trim a feature cache folder (``info``, ``prune``).

A cache holds one folder per set of featurizer settings; each is listed with its
backbone, the number of images it holds, its size on disk and when it was last written,
and can be removed by age or by (a prefix of) its settings hash. The work is done by
:func:`cache_info` and :func:`prune_cache`, which the tests call directly.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CacheFolder", "cache_info", "parse_age", "prune_cache"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class CacheFolder:
    """One settings folder of a feature cache."""

    settings_hash: str
    path: Path
    backbone: str
    images: int
    bytes: int
    last_written: float  # POSIX time of the newest file
    settings: dict


def _root(location: str | Path) -> Path:
    location = Path(location)
    if location.name == "skmtl-features":
        return location
    if not location.is_dir():
        raise FileNotFoundError(f"No cache folder at '{location}'.")
    return location / "skmtl-features"


def cache_info(location: str | Path) -> list[CacheFolder]:
    """Every settings folder under ``location`` (the folder given as ``cache=``), oldest
    first. Images are distinct content keys, counted from the shards' keys (and the
    ``.npy`` files of the old layout)."""
    from skmtl.features._shards import KEY_BYTES, SUFFIX, Shard

    root = _root(location)
    folders = []
    for settings_file in sorted(root.glob("*/settings.json")):
        folder = settings_file.parent
        try:
            settings = json.loads(settings_file.read_text())
        except (OSError, ValueError):
            settings = {}
        keys: set[str] = set()
        size, newest = 0, 0.0
        for file in folder.rglob("*"):
            if not file.is_file():
                continue
            st = file.stat()
            size += st.st_size
            newest = max(newest, st.st_mtime)
            if file.suffix == ".npy" and len(file.stem) == 2 * KEY_BYTES:
                keys.add(file.stem)
            elif file.name.endswith(SUFFIX):
                try:
                    with open(file, "rb") as f:
                        header = f.read(64)
                    values = int.from_bytes(header[16:24], "little")
                    keys.update(Shard(file, values).keys)
                except (OSError, ValueError):
                    continue  # damaged: the featurizer sets it aside when it meets it
        folders.append(CacheFolder(folder.name, folder, str(settings.get("backbone", "?")),
                                   len(keys), size, newest, settings))
    return sorted(folders, key=lambda f: f.last_written)


def parse_age(text: str) -> float:
    """Seconds in ``"30d"``, ``"12h"``, ``"90m"``, ``"2w"`` or ``"45s"``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not match:
        raise ValueError(f"Cannot read the age {text!r}: use a number and one of s, m, h, "
                         "d, w (for example 30d).")
    return float(match[1]) * _UNITS[match[2]]


def prune_cache(location: str | Path, *, older_than: float | None = None,
                settings: str | None = None, dry_run: bool = False) -> list[CacheFolder]:
    """Remove the settings folders last written more than ``older_than`` seconds ago
    and/or whose hash starts with ``settings``; returns those removed (or that would be)."""
    if older_than is None and not settings:
        raise ValueError("Say what to prune: --older-than AGE and/or --settings HASH.")
    now = time.time()
    chosen = [f for f in cache_info(location)
              if (older_than is None or now - f.last_written > older_than)
              and (not settings or f.settings_hash.startswith(settings))]
    if not dry_run:
        for folder in chosen:
            shutil.rmtree(folder.path, ignore_errors=True)
    return chosen


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def _table(folders: list[CacheFolder]) -> str:
    lines = [f"{'settings':10s} {'backbone':22s} {'images':>8s} {'size':>10s}  last written"]
    for f in folders:
        date = time.strftime("%Y-%m-%d %H:%M", time.localtime(f.last_written))
        lines.append(f"{f.settings_hash[:10]:10s} {f.backbone[:22]:22s} {f.images:8d} "
                     f"{_size(f.bytes):>10s}  {date}")
    return "\n".join(lines)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("cache", help="show or trim a feature cache folder")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="one line per settings folder")
    info.add_argument("dir", help="the folder given as cache= / --cache")
    prune = actions.add_parser("prune", help="remove settings folders")
    prune.add_argument("dir", help="the folder given as cache= / --cache")
    prune.add_argument("--older-than", metavar="AGE",
                       help="last written more than AGE ago (30d, 12h, 2w...)")
    prune.add_argument("--settings", metavar="HASH",
                       help="the settings folder whose hash starts with HASH")
    prune.add_argument("--dry-run", action="store_true", help="list, remove nothing")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "info":
        folders = cache_info(args.dir)
        print(_table(folders) if folders else f"No features cached in '{args.dir}'.")
        return 0
    age = None if args.older_than is None else parse_age(args.older_than)
    removed = prune_cache(args.dir, older_than=age, settings=args.settings,
                          dry_run=args.dry_run)
    verb = "Would remove" if args.dry_run else "Removed"
    print(f"{verb} {len(removed)} settings folder(s), "
          f"{_size(sum(f.bytes for f in removed))}.")
    if removed:
        print(_table(removed))
    return 0
