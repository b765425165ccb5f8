"""featurize_on_dask and scikit-learn under joblib's Dask backend, on a 2-worker LocalCluster.

A tiny random-weight Keras model; the preprocessing function logs how many images each
worker process computes (and can kill its process once, to play a worker lost mid-run).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

from skmtl import PretrainedFeaturizer  # noqa: E402
from skmtl.distributed import featurize_on_dask, model_builds, settings_token  # noqa: E402

SIZE = 16
N = 24


def counted_scale(x):
    """Preprocessing that logs the images it sees per process, and dies once if armed."""
    log = Path(os.environ["SKMTL_TEST_COUNTS"])
    done = sum(int(n) for f in log.glob("*.log") for n in f.read_text().split())
    armed = log / "kill-armed"
    if armed.exists() and done >= 8:
        try:
            armed.unlink()  # whoever removes it dies; nobody else will
        except FileNotFoundError:
            pass
        else:
            os._exit(1)
    with open(log / f"{os.getpid()}.log", "a") as f:
        f.write(f"{len(x)}\n")
    return x / 255.0


@pytest.fixture(scope="module")
def counts_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("counts")


def computed(counts_dir) -> int:
    return sum(int(n) for f in counts_dir.glob("*.log") for n in f.read_text().split())


@pytest.fixture(scope="module")
def client(counts_dir):
    old = os.environ.get("SKMTL_TEST_COUNTS")
    os.environ["SKMTL_TEST_COUNTS"] = str(counts_dir)  # inherited by the workers
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:  # bounded: a worker restarted by the killed-worker test must not hang teardown
        client.close(timeout=60)
        cluster.close(timeout=60)
    if old is None:
        os.environ.pop("SKMTL_TEST_COUNTS")
    else:
        os.environ["SKMTL_TEST_COUNTS"] = old


@pytest.fixture(scope="module")
def tiny():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(5, 3, strides=2, padding="same", name="c1")(inputs)
    return keras.Model(inputs, x, name="tiny_dask")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for i in range(N):
        label = i % 2
        image = rng.integers(0, 128, (20, 24, 3)) + 120 * label
        Image.fromarray(image.astype(np.uint8)).save(folder / f"{i}.png")
        paths.append(str(folder / f"{i}.png"))
        labels.append(label)
    return paths, np.array(labels)


def make(tiny, **params):
    return PretrainedFeaturizer(tiny, preprocess=counted_scale, batch_size=2, **params)


@pytest.fixture(scope="module")
def reference(tiny, files, counts_dir):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKMTL_TEST_COUNTS", str(counts_dir))
        out = make(tiny).fit_transform(files[0])
    for f in counts_dir.glob("*.log"):
        f.unlink()
    return out


def test_same_rows_in_order_and_one_model_per_worker(client, tiny, files, reference,
                                                     counts_dir):
    paths = files[0]
    featurizer = make(tiny).fit(paths)
    shuffled = [paths[i] for i in np.random.default_rng(1).permutation(N)] + paths[:3]
    for _ in range(2):
        out = featurize_on_dask(featurizer, shuffled, client=client, partition_size=4)
        np.testing.assert_allclose(out, np.concatenate(
            [reference[[paths.index(p) for p in shuffled[:N]]], reference[:3]]),
            rtol=1e-5, atol=1e-6)
    assert computed(counts_dir) == 2 * N  # no cache: each call computes, duplicates once
    builds = client.run(model_builds)
    token = settings_token(featurizer)
    assert sorted(b.get(token, 0) for b in builds.values()) in ([1, 1], [0, 1])
    assert sum(b.get(token, 0) for b in builds.values()) >= 1


def test_unfitted_featurizer_and_shared_cache(client, tiny, files, reference, counts_dir,
                                              tmp_path):
    paths = files[0]
    before = computed(counts_dir)
    out = featurize_on_dask(make(tiny, cache=tmp_path), paths, client=client,
                            partition_size=5)
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-6)
    assert computed(counts_dir) - before == N
    # The workers share the cache folder: a rerun computes nothing.
    featurize_on_dask(make(tiny, cache=tmp_path), paths[::-1], client=client,
                      partition_size=7)
    assert computed(counts_dir) - before == N


def test_a_local_transform_reads_what_the_workers_stored(client, tiny, files, reference,
                                                           counts_dir, tmp_path):
    paths = files[0]
    out = featurize_on_dask(make(tiny, cache=tmp_path), paths, client=client,
                            partition_size=5)
    before = computed(counts_dir)
    np.testing.assert_array_equal(make(tiny, cache=tmp_path).fit_transform(paths), out)
    assert computed(counts_dir) == before


class _Done:
    def __init__(self, value):
        self.value = value


class _InlineClient:
    """Runs each submitted task at once; keeps what ``_same`` returned (what Dask holds)."""

    def __init__(self):
        self.held = []

    def submit(self, fn, *args, pure=True):
        done = _Done(fn(*[a.value if isinstance(a, _Done) else a for a in args]))
        if fn.__name__ == "_same":
            self.held.append(done.value)
        return done

    def gather(self, futures):
        return [f.value for f in futures]


def test_dask_holds_the_featurizer_as_bytes_and_each_worker_its_own_copy(
        tiny, files, reference, tmp_path, monkeypatch):
    """The featurizer Dask holds as a task result may be on its way to another worker
    while a partition runs: building the model on that object made the pickling fail and
    Dask then waited forever (the hang seen in the tests). It travels as bytes, and each
    worker process unpickles its own copy once."""
    from skmtl import distributed as skmtl_distributed

    monkeypatch.setenv("SKMTL_TEST_COUNTS", str(tmp_path))
    monkeypatch.setattr(skmtl_distributed, "_FEATURIZERS", {})
    monkeypatch.setattr(skmtl_distributed, "_BUILDS", {})
    featurizer = make(tiny).fit(files[0])
    inline = _InlineClient()
    out = featurize_on_dask(featurizer, files[0], client=inline, partition_size=5)
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-6)
    (held,) = inline.held
    assert isinstance(held, bytes)
    (own, _), = skmtl_distributed._FEATURIZERS.values()
    assert own is not featurizer and "_model" in vars(own)
    assert model_builds() == {settings_token(featurizer): 1}  # 5 partitions, one model


def _cache_settings(featurizer):
    return featurizer._cache_settings()


def test_workers_key_the_backbone_alike_after_passing_it_on(client, tiny, files):
    """A worker that sends the featurizer to another pickles its Keras model, which (with
    scikeras loaded: MultiBranchClassifier imports it) registers the model's class under
    another name in that worker; the cache key must not change with it (issue 16)."""
    from skmtl import MultiBranchClassifier  # noqa: F401  (imports scikeras)

    featurizer = make(tiny).fit(files[0])
    first, second = sorted(client.scheduler_info()["workers"])
    remote = client.submit(lambda f: f, featurizer, workers=[first], pure=False)

    def settings_on(worker):
        return client.submit(_cache_settings, remote, workers=[worker], pure=False).result()

    before = settings_on(first)
    assert settings_on(second) == before  # fetched from the first worker
    assert settings_on(first) == before == featurizer._cache_settings()


def test_grid_search_and_cross_val_predict_under_joblib_dask_backend(client, tiny, files,
                                                                     tmp_path):
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, cross_val_predict
    from sklearn.pipeline import make_pipeline

    paths, y = files
    pipe = make_pipeline(make(tiny, cache=tmp_path), LogisticRegression(max_iter=300))
    grid = {"logisticregression__C": [0.01, 1.0]}
    serial = GridSearchCV(pipe, grid, cv=3).fit(paths, y)
    serial_pred = cross_val_predict(pipe, paths, y, cv=3, method="predict_proba")
    with joblib.parallel_backend("dask"):
        search = GridSearchCV(pipe, grid, cv=3, n_jobs=-1).fit(paths, y)
        pred = cross_val_predict(pipe, paths, y, cv=3, n_jobs=-1, method="predict_proba")
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               serial.cv_results_["mean_test_score"])
    assert search.best_params_ == serial.best_params_
    np.testing.assert_allclose(pred, serial_pred, rtol=1e-5, atol=1e-6)


def test_worker_killed_mid_run_loses_no_finished_partition(client, tiny, files, reference,
                                                           counts_dir, tmp_path):
    paths = files[0]
    for f in counts_dir.glob("*.log"):
        f.unlink()
    (counts_dir / "kill-armed").touch()
    out = featurize_on_dask(make(tiny, cache=tmp_path), paths, client=client,
                            partition_size=4)
    assert not (counts_dir / "kill-armed").exists()  # a worker did die
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-6)
    # Only the partition the dead worker was computing is computed again (at most the
    # batches it had done before dying: fewer than partition_size images).
    assert N <= computed(counts_dir) < N + 4
    featurize_on_dask(make(tiny, cache=tmp_path), paths, client=client, partition_size=4)
    assert computed(counts_dir) < N + 4  # the rerun computes nothing
