"""The transform loop of PretrainedFeaturizer, with bounded memory and nothing lost.

Cached images are served first (keys from the stat index, rows in one gather per shard);
the others are decoded and resized in a thread pool a couple of batches ahead of the
backbone, run in fixed-size batches, and handed to the cache, which writes a shard every
``flush_rows`` rows and when the loop ends, also when an error or an interrupt ends it.
The decoding threads share a budget of decoded pixels
(:data:`skmtl.io._large_images.DECODE_BUDGET`), so huge images are not decoded side by side
however far ahead the loop reads. An image that cannot be read is recorded, not
raised, until every other image is done (when there is a cache to keep the work in).
"""

from __future__ import annotations

import os
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from skmtl._utils.messages import few
from skmtl.features.sources import ImageSources
from skmtl.features.store import FeatureCache

__all__ = ["default_threads", "extract_features", "report_failures"]

_PREFETCH_BATCHES = 2


def default_threads() -> int:
    """Decoding threads when ``n_jobs=None``: one per CPU core, at most 8.

    Enough that a GPU running a small backbone is not waiting on decoding (Pillow releases
    the GIL while decoding and resampling); on a CPU-only machine the backbone and the
    decoders share the cores either way.
    """
    return min(8, os.cpu_count() or 1)


def extract_features(
    sources: ImageSources,
    *,
    load: Callable[[int], np.ndarray],
    make_preprocess: Callable[[], Callable[[np.ndarray], np.ndarray]],
    run_model: Callable[[np.ndarray], np.ndarray],
    feature_shape: tuple[int, ...],
    batch_size: int,
    cache: FeatureCache | None,
    n_jobs: int | None,
    stop_at_first_error: bool,
    progress: dict | None,
) -> tuple[np.ndarray, dict[int, Exception]]:
    """Features of every image (NaN rows for failures) and the failures by position.

    ``load(i)`` returns image ``i`` decoded and resized; ``make_preprocess()`` gives the
    preprocessing function, asked for only when some image is not cached (it may import
    the backbone's framework); ``run_model`` maps a preprocessed float32 batch to one
    flattened row per image. ``progress``: tqdm arguments, or None.
    """
    # Not np.full: every row is written once (found, computed or NaN for a failure), so
    # the pages of a large output are touched once.
    out = np.empty((len(sources), int(np.prod(feature_shape))), dtype=np.float32)
    failures: dict[int, Exception] = {}
    with ThreadPoolExecutor(n_jobs or default_threads()) as pool:
        todo = _serve_from_cache(sources, cache, out, failures, pool)
        if not todo:
            return out, failures
        try:
            _compute(sources, load, make_preprocess, run_model, feature_shape, batch_size,
                     cache, stop_at_first_error, progress, out, failures, todo, pool)
        finally:
            if cache is not None:
                cache.flush()  # what was computed is kept, even when an error stops us
    return out, failures


def _compute(sources, load, make_preprocess, run_model, feature_shape, batch_size, cache,
             stop_at_first_error, progress, out, failures, todo, pool) -> None:
    """Decode ahead, run the model batch by batch, store each row as it comes."""
    from tqdm.auto import tqdm

    preprocess = make_preprocess()
    keys = list(todo)
    with tqdm(total=len(keys), disable=progress is None, **(progress or {})) as bar:
        for batch_keys, images in _decoded_batches(_try(load), keys, todo, batch_size, pool):
            good = []
            for key, image in zip(batch_keys, images, strict=True):
                if isinstance(image, Exception):
                    failures[todo[key][0]] = image
                    if stop_at_first_error and cache is None:
                        raise image
                else:
                    good.append((key, image))
            if good:
                batch = preprocess(np.stack([image for _, image in good]))
                features = run_model(np.asarray(batch, dtype=np.float32))
                for (key, _), row in zip(good, features, strict=True):
                    out[todo[key]] = row
                    if cache is not None:
                        cache.save(key, row.reshape(feature_shape))
            bar.update(len(batch_keys))


def _serve_from_cache(sources, cache, out, failures, pool) -> dict[str, list[int]]:
    """Fill ``out`` from the cache; return the images left to compute, by content key.

    Keys of files come from the stat index where it knows them (no read), the rows from
    the shards in one gather per shard.
    """
    if cache is None:
        out[:] = np.nan
        return {str(i): [i] for i in range(len(sources))}
    positions, keys = [], []
    for i, key in enumerate(sources.keys(pool, cache.file_keys)):
        if isinstance(key, Exception):
            failures[i] = key
        else:
            positions.append(i)
            keys.append(key)
    found = cache.fill(keys, out, positions)
    out[list(failures)] = np.nan
    out[np.asarray(positions, dtype=np.intp)[~found]] = np.nan
    todo: dict[str, list[int]] = {}
    for j in np.flatnonzero(~found):
        todo.setdefault(keys[j], []).append(positions[j])
    return todo


def _decoded_batches(load, keys, todo, batch_size, pool) -> Iterator[tuple[list, list]]:
    """Batches of loaded images, decoded ahead in the thread pool (bounded)."""
    batches = [keys[s : s + batch_size] for s in range(0, len(keys), batch_size)]
    pending: deque = deque()
    for batch in batches[:_PREFETCH_BATCHES]:
        pending.append((batch, [pool.submit(load, todo[k][0]) for k in batch]))
    submitted = len(pending)
    while pending:
        batch, futures = pending.popleft()
        if submitted < len(batches):
            nxt = batches[submitted]
            pending.append((nxt, [pool.submit(load, todo[k][0]) for k in nxt]))
            submitted += 1
        yield batch, [f.result() for f in futures]


def report_failures(sources: ImageSources, failures: dict[int, Exception], *,
                    raise_errors: bool) -> list[tuple[int, str, str]]:
    """(position, image, error) of each failure; raises or warns naming them all.

    The error raised is of the first failure's type, with every bad image listed.
    """
    failed = [(i, sources.items[i] if sources.kind == "paths" else f"#{i}", str(exc))
              for i, exc in sorted(failures.items())]
    if not failures:
        return failed
    first = min(failures)
    listing = few((f"#{i} {sources.describe(i)}" for i in sorted(failures)), 10, "; ")
    if raise_errors:
        raise type(failures[first])(
            f"{failures[first]} ({len(failures)} bad image(s) in X: {listing}. "
            "Features of all other images are stored in the cache, so a rerun after "
            "fixing them computes only those.)"
        ) from failures[first]
    warnings.warn(
        f"{len(failures)} image(s) could not be read and got NaN features: "
        f"{listing}. See failed_images_.",
        RuntimeWarning,
        stacklevel=3,
    )
    return failed


def _try(fn: Callable, *bound: Any) -> Callable:
    """Wrap ``fn`` so that a bad image returns its exception instead of raising it."""

    def call(*args: Any) -> Any:
        try:
            return fn(*bound, *args)
        except (ValueError, OSError) as exc:
            return exc

    return call
