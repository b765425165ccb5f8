"""Huge images: decoded small (JPEG draft, box reduction) and few at a time (pixel budget)."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageFile
from PIL.JpegImagePlugin import JpegImageFile

import skmtl.io._large_images as large
import skmtl.io.images as images
from skmtl.features.sources import ImageSources
from skmtl.features.streaming import extract_features
from skmtl.io.images import RESIZE_MODES, decode_image, prepare_image, resize_image


def picture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Gradients, stripes and noise: detail at every scale, like a photo but harsher."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    img = np.empty((h, w, 3), np.float32)
    img[..., 0] = 255 * y * (1 - x)
    img[..., 1] = 127.5 + 100 * np.sin(60 * x + 40 * y) * np.cos(25 * y)
    img[..., 2] = 255 * x
    img += rng.normal(0, 20, (h, w, 3)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    out = io.BytesIO()
    Image.fromarray(picture(3000, 4000)).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture
def decoded_sizes(monkeypatch) -> list[tuple[int, int]]:
    """(width, height) of every image as decoded, before conversion and resizing."""
    sizes: list[tuple[int, int]] = []
    real = images._to_rgb
    monkeypatch.setattr(images, "_to_rgb", lambda im: sizes.append(im.size) or real(im))
    return sizes


@pytest.fixture
def drafts(monkeypatch) -> list[tuple]:
    """The arguments of every JpegImageFile.draft call."""
    calls: list[tuple] = []
    real = JpegImageFile.draft
    monkeypatch.setattr(JpegImageFile, "draft",
                        lambda self, mode, size: calls.append((mode, size)) or
                        real(self, mode, size))
    return calls


def full_decode(data: bytes, size, mode: str) -> np.ndarray:
    """The reference: decode at full size, then resize (what skmtl did before drafting)."""
    return resize_image(decode_image(data), size, mode)


# ---------------------------------------------------------------- (a) decoding small
@pytest.mark.parametrize("mode", RESIZE_MODES)
def test_large_jpeg_is_drafted_and_close_to_the_full_decode(big_jpeg, mode, decoded_sizes,
                                                            drafts):
    out = prepare_image(big_jpeg, 224, mode)
    # 4000x3000 -> 224 needs >= 3 x 224: libjpeg decodes at 1/4 scale (1000x750).
    assert drafts and decoded_sizes == [(1000, 750)]
    reference = full_decode(big_jpeg, 224, mode)
    assert out.shape == reference.shape == (224, 224, 3)
    diff = np.abs(out - reference)
    assert diff.mean() < 2.0  # on the 0-255 scale; 0.24 to 0.34 measured
    assert np.percentile(diff, 99) < 12


@pytest.mark.parametrize("orientation", [3, 6, 8])
@pytest.mark.parametrize("mode", ["center_crop", "pad"])
def test_exif_rotated_large_jpeg_keeps_its_geometry(orientation, mode, decoded_sizes):
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    Image.fromarray(picture(1800, 3600, seed=1)).save(out, "JPEG", quality=90, exif=exif)
    data = out.getvalue()
    small = prepare_image(data, (64, 48), mode)
    assert decoded_sizes[0][0] < 3600  # drafted
    reference = full_decode(data, (64, 48), mode)
    assert np.abs(small - reference).mean() < 2.0
    if mode == "pad":  # black bars where the reference has them, content elsewhere
        np.testing.assert_array_equal(small.max(axis=-1) == 0, reference.max(axis=-1) == 0)


@pytest.mark.parametrize("channels", ["RGB", "RGBA", "L"])
def test_large_png_is_box_reduced_and_close(channels, decoded_sizes):
    rgb = picture(1500, 2000, seed=2)
    image = Image.fromarray(rgb).convert(channels)
    if channels == "RGBA":
        alpha = np.tile(np.linspace(0, 255, 2000).astype(np.uint8), (1500, 1))
        image.putalpha(Image.fromarray(alpha))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    data = out.getvalue()
    # 1500 // (3 * 100) = 5 -> reduced 5x; "pad" resamples to 100x75 only: 6x
    for mode, reduced in [("squash", (400, 300)), ("center_crop", (400, 300)),
                          ("pad", (334, 250))]:
        decoded_sizes.clear()
        small = prepare_image(data, 100, mode)
        assert decoded_sizes == [reduced]
        assert np.abs(small - full_decode(data, 100, mode)).mean() < 2.0


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("mode", RESIZE_MODES)
def test_ordinary_images_decode_exactly_as_before(fmt, mode, decoded_sizes, drafts):
    out = io.BytesIO()
    Image.fromarray(picture(480, 640, seed=3)).save(out, fmt)
    data = out.getvalue()
    np.testing.assert_array_equal(prepare_image(data, 224, mode), full_decode(data, 224, mode))
    assert drafts == [] and decoded_sizes[0] == (640, 480)


# ---------------------------------------------------------------- (b) pixel budget
def test_pixel_budget_lets_an_oversized_image_through_alone():
    budget = large.PixelBudget(100)
    with budget.reserve(500):  # larger than the whole budget, nothing else held: proceeds
        assert budget.in_use == 500
    entered = threading.Event()

    def second():
        with budget.reserve(60):
            entered.set()

    with budget.reserve(60):
        thread = threading.Thread(target=second)
        thread.start()
        assert not entered.wait(0.2)  # 60 + 60 > 100: waits
    assert entered.wait(5)
    thread.join()
    assert budget.in_use == 0


@pytest.mark.parametrize(("max_pixels", "alone"), [(500_000, True), (10**9, False)])
def test_read_ahead_never_decodes_two_huge_images_at_once(tmp_path, monkeypatch,
                                                          max_pixels, alone):
    paths = []
    for i in range(6):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(picture(600, 700, seed=10 + i)).save(paths[-1], compress_level=1)
    expected = np.stack([prepare_image(p, 32).reshape(-1) for p in paths])

    live, peak, lock = [0], [0], threading.Lock()
    real_load = ImageFile.ImageFile.load

    def spy(self):  # counts the pixels being decoded right now, across threads
        if not self.tile:
            return real_load(self)
        with lock:
            live[0] += self.width * self.height
            peak[0] = max(peak[0], live[0])
        try:
            time.sleep(0.05)  # give the other threads every chance to overlap
            return real_load(self)
        finally:
            with lock:
                live[0] -= self.width * self.height

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    monkeypatch.setattr(large, "DECODE_BUDGET", large.PixelBudget(max_pixels))
    features, failures = extract_features(
        ImageSources("paths", paths), load=lambda i: prepare_image(paths[i], 32),
        make_preprocess=lambda: lambda batch: batch,
        run_model=lambda batch: batch.reshape(len(batch), -1), feature_shape=(32, 32, 3),
        batch_size=2, cache=None, n_jobs=4, stop_at_first_error=True, progress=None)
    assert failures == {}
    np.testing.assert_array_equal(features, expected)  # unchanged, in order
    assert (peak[0] == 600 * 700) is alone  # the big budget lets decodes overlap
