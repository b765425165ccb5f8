"""Reading PyTorch state dicts without PyTorch."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from skmtl.backbones.lite import _packaged_pth
from skmtl.backbones.torch_weights import load_torch_state_dict

DATA = Path(__file__).parent / "data"


def expected_tensors() -> dict[str, np.ndarray]:
    """What tests/data/make_tiny_state_dicts.py saved."""
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    return {
        "weight": base,
        "transposed": base.T,
        "slice": base[1:, 1:3],
        "half": np.array([0.5, -2.0], np.float16),
        "steps": np.array(7, np.int64),
        "param": np.ones((2, 2), np.float32),
    }


@pytest.mark.parametrize("name", ["tiny_zip.pth", "tiny_legacy.pth"])
def test_both_serialisations_read_exactly(name):
    state = load_torch_state_dict(DATA / name)
    expected = expected_tensors()
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert state[key].dtype == value.dtype, key
        np.testing.assert_array_equal(state[key], value, err_msg=key)


def test_packaged_lite0_weights_are_legacy_and_complete():
    import zipfile

    path = _packaged_pth(0)
    assert not zipfile.is_zipfile(path)
    state = load_torch_state_dict(path)
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert sum(k.endswith("_depthwise_conv.weight") for k in state) == 16


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        load_torch_state_dict(tmp_path / "nope.pth")


@pytest.mark.parametrize("fraction", [0.3, 0.9])
def test_truncated_file_names_the_file(tmp_path, fraction):
    data = _packaged_pth(0).read_bytes()
    bad = tmp_path / "cut.pth"
    bad.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ValueError, match=r"cut\.pth' is not a readable PyTorch weights file"):
        load_torch_state_dict(bad)


def test_truncated_zip_file(tmp_path):
    data = (DATA / "tiny_zip.pth").read_bytes()
    bad = tmp_path / "cut_zip.pth"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut_zip\.pth"):
        load_torch_state_dict(bad)


def test_random_bytes(tmp_path):
    bad = tmp_path / "noise.pth"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match=r"noise\.pth"):
        load_torch_state_dict(bad)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_forbidden_globals_are_refused(tmp_path):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {}):
            pickle.dump(header, f)
        pickle.dump({"x": _Evil()}, f)
    with pytest.raises(ValueError, match=r"refusing to load global (posix|os|nt)\.system"):
        load_torch_state_dict(evil)
