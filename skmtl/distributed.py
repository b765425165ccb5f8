"""Featurisation on a Dask cluster, and scikit-learn searches under joblib's Dask backend.

Needs ``pip install skmtl[dask]`` (``dask[distributed]``); nothing here is imported by
``import skmtl``.

:func:`featurize_on_dask` splits the images into partitions and runs each one as a batched
``transform`` on a worker. The featurizer travels to each worker once (as a task's result, without
its model: :class:`~skmtl.features.PretrainedFeaturizer` never pickles a built model) and is
kept in a per-process table keyed by its settings, so each worker process builds the
backbone once however many partitions and calls it serves. With ``cache=`` on a folder
that every worker sees (a shared or network file system), each partition stores its rows
when it ends: a worker killed mid-run loses only the partition it was computing, Dask
reruns that one, and a later call computes only what is missing.

Cross-validation and grid searches need nothing from this module: joblib's Dask backend
sends each fit to the cluster, and a shared ``cache=`` makes every fold read features
computed once::

    import joblib
    from dask.distributed import Client
    from sklearn.model_selection import GridSearchCV

    client = Client("scheduler-address:8786")  # or Client(LocalCluster(...))
    search = GridSearchCV(pipeline, {"logisticregression__C": [0.1, 1, 10]}, cv=5,
                          n_jobs=-1)
    with joblib.parallel_backend("dask"):
        search.fit(paths, labels)

There each fit featurises through the pipeline's own featurizer (one model per fit), so
run :func:`featurize_on_dask` first to fill the cache: the folds then only read it.
"""

from __future__ import annotations

import pickle
import threading
import uuid
import warnings
from collections.abc import Sequence
from typing import Any

import joblib
import numpy as np
from sklearn.base import clone

from skmtl._utils.messages import few
from skmtl.features import PretrainedFeaturizer
from skmtl.features.sources import as_image_sources

__all__ = ["featurize_on_dask", "model_builds"]

#: In each worker process: settings token -> (featurizer, lock). The lock lets one
#: partition at a time use a featurizer, so two threads never build its model twice.
_FEATURIZERS: dict[str, tuple[PretrainedFeaturizer, threading.Lock]] = {}
#: In each worker process: settings token -> models built (1 unless a build failed).
_BUILDS: dict[str, int] = {}
_TABLE_LOCK = threading.Lock()
#: Featurizers (with their models) a worker process keeps.
_KEEP = 4


def featurize_on_dask(featurizer: PretrainedFeaturizer, paths: Sequence[Any], client: Any = None,
                      partition_size: int = 256) -> np.ndarray:
    """``featurizer.transform(paths)``, computed on a ``dask.distributed`` cluster.

    Parameters
    ----------
    featurizer : PretrainedFeaturizer
        Fitted or not (it is then fitted on ``paths``, which only records shapes). Give
        it ``cache=`` on a folder every worker can reach to keep finished partitions.
    paths : sequence of paths
        Anything ``transform`` accepts; in-memory images are shipped to the workers.
        Repeated paths are computed once.
    client : distributed.Client, default=None
        The cluster; None uses the current default client.
    partition_size : int, default=256
        Images per task. Each task runs ``transform`` in batches of the featurizer's
        ``batch_size``; smaller partitions lose less when a worker dies, larger ones
        cost less scheduling.

    Returns
    -------
    ndarray of shape (n_images, n_features_out_), float32
        The rows ``featurizer.transform(paths)`` returns, in the same order.
    """
    from distributed import get_client

    if partition_size < 1:
        raise ValueError(f"partition_size must be at least 1, got {partition_size}.")
    client = client if client is not None else get_client()
    items = list(as_image_sources(paths).items)
    if not hasattr(featurizer, "feature_shape_"):
        featurizer = clone(featurizer).fit(items)
    unique: dict[Any, int] = {}
    inverse = np.empty(len(items), dtype=np.intp)
    for i, item in enumerate(items):
        key = item if isinstance(item, str) else ("#", i)
        inverse[i] = unique.setdefault(key, len(unique))
    firsts = [items[i] for i in _first_positions(inverse, len(unique))]
    token = settings_token(featurizer)
    # A task, not scattered data: Dask copies its result to each worker that needs it,
    # and can recompute it when the worker holding it dies (scattered data is lost). The
    # result is the pickled featurizer, bytes nothing can change while a worker sends them
    # on; each worker unpickles its own copy once (_run_partition).
    import cloudpickle  # a dependency of distributed; pickles a __main__ preprocess too

    remote = client.submit(_same, cloudpickle.dumps(featurizer), pure=False)
    starts = range(0, len(firsts), partition_size)
    futures = [client.submit(_run_partition, remote, token, firsts[s : s + partition_size],
                             pure=False) for s in starts]
    results = client.gather(futures)
    rows = np.concatenate([r for r, _ in results]) if results else np.empty(
        (0, featurizer.n_features_out_), np.float32)
    failed = [(s + i, item, err) for s, (_, fails) in zip(starts, results, strict=True)
              for i, item, err in fails]
    if failed:
        warnings.warn(f"{len(failed)} image(s) could not be read and got NaN features: "
                      + few((f"'{item}'" for _, item, _ in failed), 10, "; "),
                      RuntimeWarning, stacklevel=2)
    return rows[inverse]


def _same(obj: Any) -> Any:
    return obj


def _first_positions(inverse: np.ndarray, n_unique: int) -> list[int]:
    first = np.full(n_unique, -1, dtype=np.intp)
    for i in range(len(inverse) - 1, -1, -1):
        first[inverse[i]] = i
    return first.tolist()


def settings_token(featurizer: PretrainedFeaturizer) -> str:
    """A key of everything that makes two featurizers compute the same way.

    A named backbone is keyed by its parameters; a custom model by its architecture and
    weights (as the cache is). A preprocessing function that cannot be keyed gives a
    token of its own, so that featurizer is only reused within one call.
    """
    params = featurizer.get_params()
    try:
        identity = featurizer._cache_settings()
    except ValueError:
        return uuid.uuid4().hex
    params.pop("backbone")
    params.pop("preprocess")
    params["cache"] = str(getattr(params["cache"], "location", params["cache"]))
    return joblib.hash((type(featurizer).__qualname__, params, identity))


def _run_partition(pickled: bytes, token: str, items: list[Any]) -> tuple[np.ndarray, list]:
    """On a worker: ``transform`` one partition with this process's copy of the featurizer.

    ``pickled`` is the featurizer as bytes: the task result Dask holds may be on its way to
    another worker at this moment, and an object would change under that pickling once its
    model is built ("dictionary changed size during iteration"; Dask then waited forever on
    the partitions that needed it). The first partition of each settings token unpickles
    the featurizer this process keeps.
    """
    with _TABLE_LOCK:
        entry = _FEATURIZERS.get(token)
    if entry is None:
        fresh = (pickle.loads(pickled), threading.Lock())  # outside the table lock
        with _TABLE_LOCK:
            if token not in _FEATURIZERS:
                while len(_FEATURIZERS) >= _KEEP:  # the oldest model goes (once unused)
                    _FEATURIZERS.pop(next(iter(_FEATURIZERS)))
                _FEATURIZERS[token] = fresh
            entry = _FEATURIZERS[token]
    own, lock = entry
    with lock:
        had_model = "_model" in own.__dict__
        try:
            rows = own.transform(items)
        finally:
            if not had_model and "_model" in own.__dict__:
                with _TABLE_LOCK:
                    _BUILDS[token] = _BUILDS.get(token, 0) + 1
        return rows, list(own.failed_images_)


def model_builds() -> dict[str, int]:
    """Models built in this process, by settings token: run it on the workers with
    ``client.run(model_builds)`` to check that each built its model once."""
    with _TABLE_LOCK:
        return dict(_BUILDS)
