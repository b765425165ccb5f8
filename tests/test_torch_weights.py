"""Reading PyTorch state dicts without PyTorch."""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import re
import struct
import sys
import types
import zipfile
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


# ---------------------------------------------------------------- crafted files
LEGACY_PARTS = ("magic", "protocol", "sys_info", "object", "keys")


def legacy_parts() -> tuple[list[bytes], bytes]:
    """tiny_legacy.pth cut into its five pickles and the raw storage bytes."""
    f = io.BytesIO((DATA / "tiny_legacy.pth").read_bytes())
    parts = []
    for _ in LEGACY_PARTS:
        start = f.tell()
        for _op in pickletools.genops(f):
            pass
        parts.append(f.getvalue()[start:f.tell()])
    return parts, f.read()


def write_legacy(path: Path, replace: dict[str, bytes] | None = None, tail: bytes | None = None):
    parts, rest = legacy_parts()
    for name, data in (replace or {}).items():
        parts[LEGACY_PARTS.index(name)] = data
    path.write_bytes(b"".join(parts) + (rest if tail is None else tail))
    return path


def write_zip(path: Path, data_pkl: bytes | None = None, compress: bool = False,
              members: dict[str, bytes] | None = None) -> Path:
    """tiny_zip.pth with its data.pkl (or other members) replaced."""
    with zipfile.ZipFile(DATA / "tiny_zip.pth") as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            raw = src.read(info)
            if info.filename.endswith("data.pkl") and data_pkl is not None:
                raw = data_pkl
            short = info.filename.split("/", 1)[1]
            raw = (members or {}).get(short, raw)
            dst.writestr(info.filename, raw,
                         zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)
    return path


class _Reduce:
    """Pickles as ``func(*args)``: what an attacker's file holds."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def evil_pickles(marker: Path) -> dict[str, bytes]:
    """Pickles that create ``marker`` when loaded by a plain ``pickle.load``."""
    code = f"open({str(marker)!r}, 'w').close()".encode()
    command = f"touch '{marker}'".encode()
    return {
        "os.system": pickle.dumps(_Reduce(os.system, command.decode()), protocol=2),
        "builtins.exec": pickle.dumps({"x": _Reduce(exec, code.decode())}, protocol=4),
        # by hand: GLOBAL 'posix system', the command, TUPLE1, REDUCE
        "posix.system": b"\x80\x02cposix\nsystem\nX" + struct.pack("<I", len(command))
        + command + b"\x85R.",
        # by hand, protocol 4: STACK_GLOBAL builtins.exec
        "stack_global": b"\x80\x04\x8c\x08builtins\x8c\x04exec\x93\x8c"
        + bytes([len(code)]) + code + b"\x85R.",
    }


def assert_refused(path: Path, marker: Path) -> None:
    with pytest.raises(ValueError, match=rf"{re.escape(path.name)}' is not a readable"):
        load_torch_state_dict(path)
    assert not marker.exists(), "the crafted file ran code"


def test_evil_pickles_do_run_code_under_plain_pickle(tmp_path):
    """The crafted pickles below are real: plain pickle.loads runs them."""
    for name in evil_pickles(tmp_path):
        marker = tmp_path / f"{name}.marker"
        pickle.loads(evil_pickles(marker)[name])
        assert marker.exists(), name


@pytest.mark.parametrize("position", LEGACY_PARTS)
@pytest.mark.parametrize("kind", ["os.system", "builtins.exec", "posix.system", "stack_global"])
def test_legacy_file_cannot_run_code_from_any_pickle(tmp_path, position, kind):
    marker = tmp_path / "pwned"
    path = write_legacy(tmp_path / "evil.pth", {position: evil_pickles(marker)[kind]})
    assert_refused(path, marker)


@pytest.mark.parametrize("kind", ["os.system", "builtins.exec", "posix.system", "stack_global"])
def test_zip_file_cannot_run_code(tmp_path, kind):
    marker = tmp_path / "pwned"
    path = write_zip(tmp_path / "evil_zip.pth", evil_pickles(marker)[kind])
    assert_refused(path, marker)


def test_evil_global_nested_inside_a_tensor(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"w": _Reduce(os.system, f"touch '{marker}'")}, protocol=2)
    for path in (write_legacy(tmp_path / "a.pth", {"object": payload}),
                 write_zip(tmp_path / "b.pth", payload)):
        with pytest.raises(ValueError, match=r"refusing to load global (posix|os|nt)\.system"):
            load_torch_state_dict(path)
    assert not marker.exists()


def test_header_refuses_any_global_even_harmless(tmp_path):
    from collections import OrderedDict

    path = write_legacy(tmp_path / "h.pth", {"sys_info": pickle.dumps(OrderedDict(), 2)})
    with pytest.raises(ValueError, match=r"h\.pth.*refusing to load global collections"):
        load_torch_state_dict(path)


def test_featurizer_weights_path_cannot_run_code(tmp_path):
    from skmtl import PretrainedFeaturizer

    marker = tmp_path / "pwned"
    path = write_legacy(tmp_path / "evil.pth", {"magic": evil_pickles(marker)["os.system"]})
    feat = PretrainedFeaturizer("efficientnet_lite0", weights=path, batch_size=1)
    image = np.zeros((1, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match=r"evil\.pth"):
        feat.fit_transform(image)
    assert not marker.exists()


# ---------------------------------------------------------------- sizes from the file
def _storage_pickle(numel: int, size: tuple, stride: tuple, offset: int = 0,
                    key: str = "0") -> bytes:
    """A state dict {"w": tensor} built by hand, with chosen sizes."""

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if obj == "STORAGE":
                return ("storage", FloatStorage, key, "cpu", numel)
            return None

    class FloatStorage:
        pass

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"

    def _rebuild_tensor_v2():
        pass

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    f = io.BytesIO()
    fake_torch = types.ModuleType("torch")
    fake_torch.FloatStorage = FloatStorage
    fake_utils = types.ModuleType("torch._utils")
    fake_utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    saved = {m: sys.modules.get(m) for m in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = fake_torch, fake_utils
    try:
        P(f, protocol=2).dump({"w": _Reduce(_rebuild_tensor_v2, "STORAGE", offset, size,
                                            stride, False)})
    finally:
        for m, mod in saved.items():
            if mod is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = mod
    return f.getvalue()


def test_hand_built_pickle_reads(tmp_path):
    data = np.arange(6, dtype=np.float32)
    path = write_legacy(
        tmp_path / "ok.pth",
        {"object": _storage_pickle(6, (2, 3), (3, 1)), "keys": pickle.dumps(["0"], 2)},
        tail=struct.pack("<q", 6) + data.tobytes(),
    )
    np.testing.assert_array_equal(load_torch_state_dict(path)["w"], data.reshape(2, 3))


@pytest.mark.parametrize(
    ("numel", "size", "stride", "offset", "tail_numel", "match"),
    [
        (6, (2, 3), (3, 1), 0, 1 << 40, "holds 1099511627776 elements, not 6"),
        (1 << 40, (2, 3), (3, 1), 0, 1 << 40, "truncated"),
        (6, (2, 3), (3, 1), 0, -5, "holds -5 elements"),
        (-6, (2, 3), (3, 1), 0, 6, "invalid storage size -6"),
        (6, (-2, 3), (3, 1), 0, 6, "invalid tensor size"),
        (6, (2, 3), (3, -1), 0, 6, "invalid tensor stride"),
        (6, (2, 3), (3, 1), -1, 6, "invalid storage offset"),
        (6, (1 << 40,), (0,), 0, 6, "more elements than its storage"),
        (6, (1 << 62,), (0,), 0, 6, "invalid tensor size"),
        (6, (2, 3), (3, 1), 1, 6, "past the end"),
        (6, (2, 3), (3,), 0, 6, "disagree"),
    ],
)
def test_sizes_are_checked_before_allocating(tmp_path, numel, size, stride, offset,
                                             tail_numel, match):
    path = write_legacy(
        tmp_path / "big.pth",
        {"object": _storage_pickle(numel, size, stride, offset), "keys": pickle.dumps(["0"], 2)},
        tail=struct.pack("<q", tail_numel) + np.zeros(6, np.float32).tobytes(),
    )
    with pytest.raises(ValueError, match=rf"big\.pth.*{match}"):
        load_torch_state_dict(path)


def test_zip_storage_shorter_than_declared(tmp_path):
    path = write_zip(tmp_path / "short.pth", _storage_pickle(1 << 40, (2,), (1,)))
    with pytest.raises(ValueError, match=r"short\.pth.*shorter than its storage"):
        load_torch_state_dict(path)


def test_zip_compressed_member_refused(tmp_path):
    path = write_zip(tmp_path / "deflated.pth", compress=True)
    with pytest.raises(ValueError, match=r"deflated\.pth.*compressed"):
        load_torch_state_dict(path)


def test_pickle_length_field_claiming_an_exabyte(tmp_path):
    huge = b"\x80\x04\x8e" + struct.pack("<Q", 1 << 60) + b"abc"  # BINBYTES8
    path = write_legacy(tmp_path / "claim.pth", {"object": huge})
    with pytest.raises(ValueError, match=r"claim\.pth"):
        load_torch_state_dict(path)
