"""The backbone zoo: every table row builds and matches its documented sizes."""

from __future__ import annotations

import pandas as pd
import pytest

from skmtl.backbones import BACKBONES, build_backbone, get_backbone_spec, list_backbones


def _rows() -> list:
    return [
        pytest.param(name, marks=[pytest.mark.slow] if spec.slow else [], id=name)
        for name, spec in BACKBONES.items()
    ]


@pytest.mark.parametrize("name", _rows())
def test_zoo_entry_builds_headless_with_documented_sizes(name):
    import keras

    spec = get_backbone_spec(name)
    # NASNet insists on its native size; the others are built at their smallest input to
    # stay cheap (channels and parameter count do not depend on it). The slow rows run in
    # CI by a second command of .ci/run (about 3 minutes on 2 cores), not in the default
    # suite.
    size = spec.input_size if spec.family == "nasnet" else spec.min_size
    model = build_backbone(name, weights=None, input_size=size)
    try:
        assert model.output_shape[-1] == spec.feature_size
        assert len(model.output_shape) == 4  # headless: a feature map, no pooling
        assert model.count_params() == spec.params
    finally:
        keras.backend.clear_session()


def test_names_are_lower_case_with_underscores():
    for name in BACKBONES:
        assert name == name.lower() and "-" not in name and " " not in name


def test_playbook_families_are_all_present():
    expected = {
        "xception", "resnet50", "resnet101", "resnet152", "resnet50_v2", "inception_v3",
        "inception_resnet_v2", "densenet121", "densenet169", "densenet201", "vgg16", "vgg19",
        "mobilenet", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
        *(f"efficientnet_b{i}" for i in range(8)),
        *(f"efficientnet_v2_{v}" for v in ("b0", "b1", "b2", "b3", "s", "m", "l")),
        *(f"convnext_{v}" for v in ("tiny", "small", "base", "large")),
        "nasnet_mobile", "nasnet_large",
        "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
    }
    assert expected <= set(BACKBONES)


def test_lookup_forgives_case_and_hyphens_and_suggests_names():
    assert get_backbone_spec("EfficientNet-Lite0").name == "efficientnet_lite0"
    with pytest.raises(ValueError, match="resnet50"):
        get_backbone_spec("resnet5O")


def test_list_backbones_table():
    table = list_backbones()
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == [
        "name", "family", "input_size", "feature_size", "params", "offline_weights",
    ]
    assert len(table) == len(BACKBONES)
    row = table.set_index("name").loc["efficientnet_lite0"]
    assert (row.input_size, row.feature_size, bool(row.offline_weights)) == (224, 1280, True)
    assert table.set_index("name").loc["xception", "input_size"] == 299


def test_input_size_below_minimum_is_refused():
    with pytest.raises(ValueError, match="at least 71"):
        build_backbone("xception", weights=None, input_size=32)


def test_missing_weights_file_names_file_and_backbone(tmp_path):
    missing = tmp_path / "nope.h5"
    with pytest.raises(FileNotFoundError, match=r"nope\.h5.*mobilenet_v3_small"):
        build_backbone("mobilenet_v3_small", weights=missing)


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_weights_file_of_another_architecture_is_refused(tmp_path):
    import keras
    import numpy as np

    path = tmp_path / "small.weights.h5"
    saved = build_backbone("mobilenet_v3_small", weights=None, input_size=96)
    saved.save_weights(path)
    # The right architecture loads its own file back, exactly...
    model = build_backbone("mobilenet_v3_small", weights=path, input_size=96)
    for a, b in zip(saved.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # ...another one gets an error naming the file and the backbone.
    with pytest.raises(ValueError, match=r"small\.weights\.h5.*'mobilenet'"):
        build_backbone("mobilenet", weights=path, input_size=96)
    keras.backend.clear_session()


def test_corrupt_weights_file_is_refused(tmp_path):
    path = tmp_path / "garbage.h5"
    path.write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(ValueError, match=r"garbage\.h5.*mobilenet_v3_small"):
        build_backbone("mobilenet_v3_small", weights=path, input_size=96)
