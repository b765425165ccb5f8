"""PretrainedFeaturizer plumbing, on a tiny random-weight backbone (fast)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.base import clone

from skmtl import PretrainedFeaturizer
from skmtl.io.images import ImageDecodeError, resize_image

SIZE = 32


@pytest.fixture(scope="module")
def tiny():
    """A 2-conv Keras model: output (SIZE/4, SIZE/4, 6), fixed random weights."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="c2")(x)
    return keras.Model(inputs, x, name="tiny")


def scale(x):
    return x / 255.0


def make(tiny, **params):
    params.setdefault("preprocess", scale)
    params.setdefault("batch_size", 4)
    return PretrainedFeaturizer(tiny, **params)


@pytest.fixture(scope="module")
def images():
    """Eight random RGB images of different sizes, uint8."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (20 + 3 * i, 40 - 2 * i, 3), dtype=np.uint8) for i in range(8)]


@pytest.fixture
def png_files(tmp_path, images):
    paths = []
    for i, image in enumerate(images):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths


class CallCounter:
    """Counts images that go through the backbone."""

    def __init__(self, monkeypatch):
        self.images = 0
        original = PretrainedFeaturizer._run_model

        def counting(featurizer, batch):
            self.images += len(batch)
            return original(featurizer, batch)

        monkeypatch.setattr(PretrainedFeaturizer, "_run_model", counting)


@pytest.fixture
def calls(monkeypatch):
    return CallCounter(monkeypatch)


# ---------------------------------------------------------------- inputs
def test_every_input_kind_gives_the_same_features(tiny, images, png_files):
    ref = make(tiny).fit_transform(png_files)
    assert ref.shape == (8, 6) and ref.dtype == np.float32 and np.isfinite(ref).all()
    same_as_ref = [
        np.array(png_files),
        np.array(png_files, dtype=object),
        pd.Series(png_files),
        pd.DataFrame({"file": png_files}),
        pd.DataFrame({"label": ["a"] * 8, "path": png_files}),
        tuple(png_files),
        images,  # list of arrays of different sizes, lossless PNG -> identical
    ]
    for X in same_as_ref:
        np.testing.assert_array_equal(make(tiny).fit_transform(X), ref)


def test_arrays_batch_grayscale_and_float(tiny, images):
    batch = np.stack([resize_image(im, (SIZE, SIZE)).astype(np.uint8) for im in images])
    feats = make(tiny).fit_transform(batch)
    assert feats.shape == (8, 6)
    np.testing.assert_allclose(make(tiny).fit_transform(batch.astype(np.float32)), feats,
                               rtol=1e-5, atol=1e-6)
    gray = batch[..., 0]
    np.testing.assert_allclose(
        make(tiny).fit_transform(gray),
        make(tiny).fit_transform(np.repeat(gray[..., None], 3, axis=-1)),
        rtol=1e-6,
    )
    np.testing.assert_allclose(make(tiny).fit_transform(gray[..., None]),
                               make(tiny).fit_transform(gray), rtol=1e-6)


@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        ([], ValueError, "empty"),
        (np.zeros((0, 8, 8, 3)), ValueError, "empty"),
        ("one.jpg", TypeError, "single path"),
        (np.zeros((4, 10)), ValueError, r"shape \(4, 10\)"),
        (np.zeros((2, 8, 8, 4)), ValueError, r"shape \(2, 8, 8, 4\)"),
        (np.zeros((2, 8, 8, 3), dtype=bool), ValueError, "dtype bool"),
        ([1, 2, 3], TypeError, r"X\[0\] is 1"),
        (pd.DataFrame({"a": ["x"], "b": ["y"]}), ValueError, "'path' column"),
        ({"a": 1}, TypeError, "dict"),
    ],
)
def test_bad_x_gets_a_clear_error(tiny, X, error, match):
    with pytest.raises(error, match=match):
        make(tiny).fit(X)


def test_non_finite_or_out_of_range_arrays_are_refused(tiny):
    bad = np.zeros((3, 8, 8, 3), np.float32)
    bad[1, 0, 0, 0] = np.nan
    fitted = make(tiny).fit(bad)
    with pytest.raises(ValueError, match="#1"):
        fitted.transform(bad)


# ---------------------------------------------------------------- settings
@pytest.mark.parametrize("mode", ["squash", "center_crop", "pad"])
def test_resize_modes_match_resizing_by_hand(tiny, images, mode):
    by_hand = np.stack([resize_image(im, (SIZE, SIZE), mode) for im in images])
    np.testing.assert_allclose(
        make(tiny, resize=mode).fit_transform(images),
        make(tiny).fit_transform(by_hand),
        rtol=1e-5, atol=1e-6,
    )


def test_resize_modes_differ(tiny, images):
    feats = [make(tiny, resize=m).fit_transform(images) for m in ("squash", "center_crop", "pad")]
    assert not np.allclose(feats[0], feats[1]) and not np.allclose(feats[0], feats[2])


def test_flip_equals_features_of_mirrored_images(tiny, images):
    native = np.stack([resize_image(im, (SIZE, SIZE)) for im in images])
    np.testing.assert_allclose(
        make(tiny, flip=True).fit_transform(native),
        make(tiny).fit_transform(native[:, :, ::-1]),
        rtol=1e-6, atol=1e-7,
    )
    assert not np.allclose(make(tiny, flip=True).fit_transform(native),
                           make(tiny).fit_transform(native))


def test_pooling_max_and_spatial_map(tiny, images):
    spatial = make(tiny, pooling=None).fit(images)
    assert spatial.feature_shape_ == (8, 8, 6) and spatial.n_features_out_ == 384
    maps = spatial.transform(images).reshape(-1, 8, 8, 6)
    np.testing.assert_allclose(maps.mean(axis=(1, 2)), make(tiny).fit_transform(images),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps.max(axis=(1, 2)),
                               make(tiny, pooling="max").fit_transform(images), rtol=1e-6)
    names = spatial.get_feature_names_out()
    assert (names[0], names[7], names[-1]) == ("tiny__h0w0c0", "tiny__h0w1c1", "tiny__h7w7c5")


def test_layer_by_name_and_index(tiny, images):
    by_name = make(tiny, layer="c1").fit(images)
    assert by_name.feature_shape_ == (4,)
    by_index = make(tiny, layer=1).fit(images)
    np.testing.assert_array_equal(by_name.transform(images), by_index.transform(images))
    with pytest.raises(ValueError, match="'nope' is not a layer of 'tiny'"):
        make(tiny, layer="nope").fit(images)


def test_input_size_override_upscales(images):
    feats = PretrainedFeaturizer("mobilenet_v3_small", weights=None, input_size=48,
                                 batch_size=8).fit(images)
    assert feats.input_size_ == (48, 48)
    assert feats.transform(images[:3]).shape == (3, 576)


def test_named_backbone_weights_none_is_seeded(images):
    a = PretrainedFeaturizer("mobilenet_v3_small", weights=None, input_size=32)
    b = clone(a)
    np.testing.assert_array_equal(a.fit_transform(images[:2]), b.fit_transform(images[:2]))


# ---------------------------------------------------------------- sklearn API
def test_feature_names_and_pandas_output(tiny, png_files):
    series = pd.Series(png_files, index=list("abcdefgh"))
    feat = make(tiny).set_output(transform="pandas").fit(series)
    assert list(feat.get_feature_names_out()) == [f"tiny__{k}" for k in range(6)]
    frame = feat.transform(pd.Series(png_files, index=list("abcdefgh")))
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == [f"tiny__{k}" for k in range(6)]
    assert list(frame.index) == list("abcdefgh")


def test_clone_get_params_and_pickle(tiny, images, tmp_path):
    feat = make(tiny, cache=tmp_path, flip=True)
    assert clone(feat).get_params()["flip"] is True
    feat.fit(images)
    before = feat.transform(images)
    model = feat.__dict__["_model"]
    restored = pickle.loads(pickle.dumps(feat))
    assert "_model" not in restored.__dict__
    assert feat.__dict__["_model"] is model  # pickling leaves the original as it was
    np.testing.assert_array_equal(restored.transform(images), before)


def test_transform_before_fit_raises(tiny, images):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        make(tiny).transform(images)


def test_parameter_validation(tiny, images):
    with pytest.raises(ValueError, match="resize"):
        make(tiny, resize="stretch").fit(images)
    with pytest.raises(ValueError, match="batch_size"):
        make(tiny, batch_size=0).fit(images)
    with pytest.raises(ValueError, match="preprocess"):
        PretrainedFeaturizer(tiny).fit(images)
    with pytest.raises(ValueError, match="Unknown backbone 'resnet5'"):
        PretrainedFeaturizer("resnet5").fit(images)


def test_tags():
    from sklearn.base import is_classifier, is_regressor

    feat = PretrainedFeaturizer()
    tags = feat.__sklearn_tags__()
    assert tags.transformer_tags is not None and not is_classifier(feat) and not is_regressor(feat)
    assert tags.input_tags.string and not tags.input_tags.two_d_array


# ---------------------------------------------------------------- cache
def test_cache_computes_each_image_once_in_any_order(tiny, png_files, tmp_path, calls):
    feat = make(tiny, cache=tmp_path / "c").fit(png_files)
    first = feat.transform(png_files[:5])
    assert calls.images == 5
    # A different subset and order: only the three new images are computed.
    rev = feat.transform(png_files[::-1])
    assert calls.images == 8
    np.testing.assert_array_equal(rev[::-1][:5], first)
    feat.transform(png_files)
    clone(feat).fit(png_files).transform(png_files)
    assert calls.images == 8


def test_fully_cached_transform_needs_no_preprocessing(tiny, png_files, tmp_path,
                                                       monkeypatch):
    """Serving from the cache must not resolve (and import) the backbone's preprocessing."""
    feat = make(tiny, cache=tmp_path / "c").fit(png_files)
    expected = feat.transform(png_files)
    monkeypatch.setattr(PretrainedFeaturizer, "_preprocess_fn",
                        lambda self: pytest.fail("preprocessing resolved for cached images"))
    np.testing.assert_array_equal(feat.transform(png_files), expected)


def test_cache_accepts_joblib_memory_and_shares_with_path(tiny, png_files, tmp_path, calls):
    import joblib

    make(tiny, cache=joblib.Memory(tmp_path, verbose=0)).fit_transform(png_files)
    make(tiny, cache=str(tmp_path)).fit_transform(png_files)
    assert calls.images == 8
    make(tiny, cache=joblib.Memory(None)).fit_transform(png_files)  # no location: no cache
    assert calls.images == 16


def test_duplicate_images_are_computed_once_with_a_cache(tiny, png_files, tmp_path, calls):
    out = make(tiny, cache=tmp_path).fit_transform([png_files[0], png_files[1], png_files[0]])
    assert calls.images == 2
    np.testing.assert_array_equal(out[0], out[2])


def test_content_not_path_is_the_key(tiny, png_files, tmp_path, calls):
    feat = make(tiny, cache=tmp_path / "c").fit(png_files)
    feat.transform(png_files[:1])
    # Same path, new content: recomputed, never stale.
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(png_files[0])
    new = feat.transform(png_files[:1])
    assert calls.images == 2
    np.testing.assert_array_equal(new, make(tiny).fit_transform(png_files[:1]))


@pytest.mark.parametrize(
    "change",
    [
        {"resize": "pad"},
        {"pooling": "max"},
        {"pooling": None},
        {"layer": "c1"},
        {"flip": True},
        {"dtype": "bfloat16"},
        {"preprocess": np.negative},
    ],
    ids=lambda c: next(iter(c)),
)
def test_every_setting_invalidates_the_cache(tiny, images, tmp_path, calls, change):
    base = make(tiny, cache=tmp_path)
    base.fit_transform(images)
    changed = clone(base).set_params(**change)
    expected = clone(changed).set_params(cache=None).fit_transform(images)
    calls.images = 0
    np.testing.assert_array_equal(changed.fit_transform(images), expected)
    assert calls.images == len(images)


def test_input_size_invalidates_the_cache(images, tmp_path, calls):
    feat = PretrainedFeaturizer("mobilenet_v3_small", weights=None, input_size=32,
                                cache=tmp_path)
    feat.fit_transform(images)
    clone(feat).set_params(input_size=40).fit_transform(images)
    assert calls.images == 16


def test_input_size_must_fit_a_fixed_custom_model(tiny, images):
    with pytest.raises(ValueError, match=r"fixed at \(32, 32\)"):
        make(tiny, input_size=40).fit(images)


def test_other_weights_invalidate_the_cache(tiny, images, tmp_path, calls):
    import keras

    make(tiny, cache=tmp_path).fit_transform(images)
    other = keras.models.clone_model(tiny)  # same architecture, new random weights
    make(other, cache=tmp_path).fit_transform(images)
    assert calls.images == 16
    seeded = PretrainedFeaturizer("mobilenet_v3_small", weights=None, input_size=32,
                                  cache=tmp_path)
    seeded.fit_transform(images)
    clone(seeded).set_params(random_state=1).fit_transform(images)
    assert calls.images == 32


def test_different_lambdas_do_not_share_cached_features(tiny, images, tmp_path, calls):
    first = make(tiny, preprocess=lambda x: x / 255.0, cache=tmp_path).fit_transform(images)
    second = make(tiny, preprocess=lambda x: x / 127.5 - 1.0, cache=tmp_path)
    np.testing.assert_array_equal(
        second.fit_transform(images),
        make(tiny, preprocess=lambda x: x / 127.5 - 1.0).fit_transform(images),
    )
    assert not np.allclose(first, second.transform(images))
    # The same lambda written again is the same preprocess: served from the cache.
    before = calls.images
    make(tiny, preprocess=lambda x: x / 255.0, cache=tmp_path).fit_transform(images)
    assert calls.images == before


def _user_function(body: str):
    namespace = {"__name__": "user_module"}
    exec(f"def pre(x):\n    return {body}\n", namespace)
    return namespace["pre"]


def test_edited_preprocess_function_does_not_get_stale_features(tiny, images, tmp_path):
    old, new = _user_function("x / 255.0"), _user_function("x / 255.0 - 0.5")
    assert (old.__module__, old.__qualname__) == (new.__module__, new.__qualname__)
    make(tiny, preprocess=old, cache=tmp_path).fit_transform(images)
    np.testing.assert_array_equal(
        make(tiny, preprocess=new, cache=tmp_path).fit_transform(images),
        make(tiny, preprocess=new).fit_transform(images),
    )


def test_preprocess_that_cannot_be_keyed_refuses_to_cache(tiny, images, tmp_path):
    rng = np.random.default_rng(0)

    def noisy(x):
        return x / 255.0 + rng.normal(size=x.shape)

    with pytest.raises(ValueError, match=r"cannot be used with a feature cache.*'rng'"
                                         r".*cache=None"):
        make(tiny, preprocess=noisy, cache=tmp_path).fit_transform(images)
    assert make(tiny, preprocess=noisy).fit_transform(images).shape == (len(images), 6)


def test_same_weights_other_architecture_do_not_share_features(tiny, images, tmp_path):
    import keras

    def build(activation):
        inputs = keras.Input((SIZE, SIZE, 3))
        x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation=activation)(inputs)
        x = keras.layers.Conv2D(6, 3, strides=2, padding="same")(x)
        model = keras.Model(inputs, x, name="twin")
        model.set_weights(tiny.get_weights())
        return model

    linear, relu = build(None), build("relu")
    make(linear, cache=tmp_path).fit_transform(images)
    np.testing.assert_array_equal(
        make(relu, cache=tmp_path).fit_transform(images), make(relu).fit_transform(images)
    )
    # The same architecture built again (other automatic layer names) shares the entries.
    assert (make(build(None)).fit(images)._cache_settings()
            == make(linear).fit(images)._cache_settings())


def keyed_model():
    """A custom backbone with automatic names only, a nested ``Sequential`` (with its own
    input layer) and weights set from a fixed generator: the same model in any process."""
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.Sequential([keras.Input((8, 8, 4)), keras.layers.Conv2D(2, 1)])(x)
    model = keras.Model(inputs, x)
    rng = np.random.default_rng(0)
    model.set_weights([rng.standard_normal(w.shape).astype(w.dtype)
                       for w in model.get_weights()])
    return model


def cache_settings_of(model) -> str:
    """The settings the feature cache keys ``model``'s features by, as JSON."""
    featurizer = PretrainedFeaturizer(model, preprocess="mobilenet", batch_size=2)
    return json.dumps(featurizer.fit(np.zeros((1, 8, 8, 3), np.uint8))._cache_settings())


#: Run in a new process; ``history`` first does what a long session may have done.
_KEY_IN_A_NEW_PROCESS = """
import copy, pickle, sys
import keras
from tests.test_featurizer import cache_settings_of, keyed_model
if sys.argv[1] == "history":
    from skmtl import MultiBranchClassifier  # imports scikeras, which patches Model pickling
    for _ in range(3):
        keyed_model()  # moves Keras' automatic-name counters on
    pickle.dumps(keyed_model())  # scikeras registers the Functional class
    copy.deepcopy(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
print("SETTINGS", cache_settings_of(keyed_model()))
"""


def test_custom_backbone_cache_key_does_not_depend_on_the_process_history():
    """Issue 16: Dask workers and the session that started them must key a custom model
    alike, whatever models the session built, pickled or copied before."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root),
                                                       os.environ.get("PYTHONPATH", "")]))

    def in_a_new_process(history: str) -> dict:
        run = subprocess.run([sys.executable, "-c", _KEY_IN_A_NEW_PROCESS, history],
                             cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        [line] = [ln for ln in run.stdout.splitlines() if ln.startswith("SETTINGS ")]
        return json.loads(line.removeprefix("SETTINGS "))

    fresh = in_a_new_process("fresh")
    assert in_a_new_process("history") == fresh
    assert json.loads(cache_settings_of(keyed_model())) == fresh  # this (long) session


def test_damaged_cache_shard_is_recomputed_with_a_warning(tiny, images, tmp_path, calls):
    feat = make(tiny, cache=tmp_path).fit(images)
    good = feat.transform(images)
    [shard] = tmp_path.rglob("*.shard")
    time.sleep(0.05)
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0x55  # one bit pattern in one row
    shard.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="Damaged feature cache shard"):
        again = feat.transform(images)
    np.testing.assert_array_equal(again, good)
    assert calls.images == 16
    feat.transform(images)
    assert calls.images == 16  # the recomputed rows were stored in a new shard
    assert not list(tmp_path.rglob("*.tmp"))


class ReadCounter:
    """Counts image files read (to hash or to decode)."""

    def __init__(self, monkeypatch):
        import skmtl.features.sources as sources

        self.paths: list[str] = []
        original = sources.read_bytes

        def counting(path, **kwargs):
            self.paths.append(str(path))
            return original(path, **kwargs)

        monkeypatch.setattr(sources, "read_bytes", counting)


@pytest.fixture
def settled_files(png_files, monkeypatch):
    """The PNG files, dated in the past (the stat index skips files changed just now)."""
    import os

    monkeypatch.setattr("skmtl.features._file_keys.RACY_NS", 0)
    for i, path in enumerate(png_files):
        os.utime(path, ns=(1_600_000_000_000_000_000 + i,) * 2)
    return png_files


def test_cached_rerun_reads_no_image_file(tiny, settled_files, tmp_path, calls, monkeypatch):
    feat = make(tiny, cache=tmp_path).fit(settled_files)
    expected = feat.transform(settled_files)
    reads = ReadCounter(monkeypatch)
    np.testing.assert_array_equal(feat.transform(settled_files), expected)
    assert reads.paths == [] and calls.images == 8
    # cache_verify=True reads and hashes every file, and finds the same entries.
    verified = clone(feat).set_params(cache_verify=True).fit(settled_files)
    np.testing.assert_array_equal(verified.transform(settled_files), expected)
    assert sorted(reads.paths) == sorted(settled_files) and calls.images == 8


def test_file_rewritten_with_size_and_mtime_restored_is_recomputed(tiny, images, tmp_path,
                                                                   calls, monkeypatch):
    import os

    monkeypatch.setattr("skmtl.features._file_keys.RACY_NS", 0)
    first, second = (tmp_path / "a.bmp", tmp_path / "b.bmp")  # same size: uncompressed
    Image.fromarray(images[0]).save(first)
    Image.fromarray(images[0][::-1]).save(second)
    os.utime(first, ns=(1_600_000_000_000_000_000,) * 2)
    feat = make(tiny, cache=tmp_path / "c").fit([str(first)])
    feat.transform([str(first)])
    before = os.stat(first)
    time.sleep(0.05)
    with open(first, "r+b") as f:  # in place: same inode, same size
        f.write(second.read_bytes())
    os.utime(first, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(first)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino, before.st_size, before.st_mtime_ns)
    out = feat.transform([str(first)])
    assert calls.images == 2  # the new ctime gave it away
    np.testing.assert_array_equal(out, make(tiny).fit_transform([str(second)]))


def test_jit_compile_and_mixed_precision_match_float32(tiny, images):
    ref = make(tiny).fit_transform(images)
    jit = make(tiny, jit_compile=True).fit(images)
    np.testing.assert_allclose(jit.transform(images), ref, rtol=1e-4, atol=1e-4)
    # Keras refuses XLA once TensorFlow's op determinism is on (scikeras turns it on for a
    # seeded fit earlier in the session), falling back to plain graphs with a warning.
    from tensorflow.python.framework.config import is_op_determinism_enabled

    assert jit._get_model().jit_compile is (not is_op_determinism_enabled())
    assert make(tiny, jit_compile=False).fit(images)._get_model().jit_compile is False
    mixed = make(tiny, dtype="mixed_float16").fit_transform(images)
    assert mixed.dtype == np.float32
    np.testing.assert_allclose(mixed, ref, rtol=2e-2, atol=2e-2)


# ---------------------------------------------------------------- bad images
@pytest.fixture
def with_bad_files(png_files, tmp_path):
    truncated = tmp_path / "truncated.jpg"
    Image.fromarray(np.full((64, 64, 3), 100, np.uint8)).save(truncated, quality=95)
    truncated.write_bytes(truncated.read_bytes()[:300])
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image")
    return [*png_files[:3], str(truncated), png_files[3], str(tmp_path / "missing.png"),
            str(text), *png_files[4:]]


def test_bad_file_raises_naming_file_and_position(tiny, with_bad_files):
    with pytest.raises(ImageDecodeError, match=r"#3 .*truncated\.jpg"):
        make(tiny).fit_transform(with_bad_files)


def test_bad_files_keep_finished_work_in_the_cache(tiny, with_bad_files, tmp_path, calls):
    feat = make(tiny, cache=tmp_path / "c").fit(with_bad_files)
    with pytest.raises(ImageDecodeError, match=r"3 bad image\(s\).*missing\.png.*notes\.jpg"):
        feat.transform(with_bad_files)
    assert calls.images == 8  # every good image was computed and stored
    good = [p for p in with_bad_files if "png" in p and "missing" not in p]
    feat.transform(good)
    assert calls.images == 8  # the rerun computes nothing


def test_on_error_warn_fills_nan_and_records(tiny, with_bad_files, png_files):
    feat = make(tiny, on_error="warn").fit(with_bad_files)
    with pytest.warns(RuntimeWarning, match=r"3 image\(s\) could not be read"):
        out = feat.transform(with_bad_files)
    bad_rows = [3, 5, 6]
    assert np.isnan(out[bad_rows]).all()
    good_rows = [i for i in range(len(with_bad_files)) if i not in bad_rows]
    np.testing.assert_array_equal(out[good_rows], make(tiny).fit_transform(png_files))
    assert [i for i, _, _ in feat.failed_images_] == bad_rows
    assert feat.failed_images_[1][1].endswith("missing.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        feat.transform(png_files)
    assert feat.failed_images_ == []
