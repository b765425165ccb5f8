"""Decoding what real competition data contains, and resizing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from skmtl.images import (
    ImageDecodeError,
    decode_image,
    flip_horizontal,
    load_image,
    prepare_image,
    resize_image,
    to_rgb_array,
)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def quadrants(h=40, w=60) -> np.ndarray:
    """Top-left red, top-right green, bottom-left blue, bottom-right white."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = RED
    img[: h // 2, w // 2 :] = GREEN
    img[h // 2 :, : w // 2] = BLUE
    img[h // 2 :, w // 2 :] = 255
    return img


@pytest.mark.parametrize(
    ("fmt", "suffix", "exact"),
    [("PNG", "png", True), ("BMP", "bmp", True), ("TIFF", "tif", True),
     ("WEBP", "webp", True), ("JPEG", "jpg", False)],
)
def test_formats_decode_to_rgb_uint8(tmp_path, fmt, suffix, exact):
    src = quadrants()
    path = tmp_path / f"img.{suffix}"
    Image.fromarray(src).save(path, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    out = load_image(path)
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8
    if exact:
        np.testing.assert_array_equal(out, src)
    else:
        assert np.abs(out[5, 5].astype(int) - RED).max() < 20


def test_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), RED), Image.new("RGB", (8, 8), BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    np.testing.assert_array_equal(load_image(path)[0, 0], RED)


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(quadrants(40, 60)).save(path, exif=exif, quality=95)
    out = load_image(path)
    assert out.shape == (60, 40, 3)
    # After a clockwise turn the red top-left quadrant is at the top-right.
    assert np.abs(out[5, 35].astype(int) - RED).max() < 30


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_becomes_three_equal_channels(tmp_path, mode):
    gray = Image.fromarray(np.tile(np.array([0, 255], np.uint8), (4, 4))).convert(mode)
    path = tmp_path / "gray.png"
    gray.save(path)
    out = load_image(path)
    assert out.shape == (4, 8, 3)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    np.testing.assert_array_equal(out[0, :2, 0], [0, 255])


def test_palette_with_and_without_transparency(tmp_path):
    pal = Image.fromarray(quadrants()).convert("P")
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_image(tmp_path / "p.png")[5, 5], RED)
    pal.info["transparency"] = pal.getpixel((5, 5))  # the red entry becomes transparent
    pal.save(tmp_path / "pt.png", transparency=pal.getpixel((5, 5)))
    out = load_image(tmp_path / "pt.png")
    np.testing.assert_array_equal(out[5, 5], [255, 255, 255])
    np.testing.assert_array_equal(out[35, 5], BLUE)


def test_alpha_is_composited_onto_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 0)  # transparent red -> white
    rgba[0, 1] = (0, 0, 255, 255)  # opaque blue stays blue
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black -> mid gray
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 1], BLUE)
    assert abs(int(out[0, 2, 0]) - 127) <= 1
    la = Image.fromarray(np.array([[[0, 0], [0, 255]]], np.uint8), "LA")
    la.save(tmp_path / "la.png")
    np.testing.assert_array_equal(load_image(tmp_path / "la.png")[0], [[255] * 3, [0] * 3])


def test_cmyk_jpeg(tmp_path):
    Image.fromarray(quadrants()).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    out = load_image(tmp_path / "c.jpg")
    assert out.shape == (40, 60, 3)
    assert np.abs(out[5, 5].astype(int) - RED).max() < 30


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    np.testing.assert_array_equal(load_image(tmp_path / "deep.png")[0, :, 0], [0, 100, 255])


def test_truncated_jpeg_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    with pytest.raises(ImageDecodeError, match=r"#7 '.*cut\.jpg': truncated") as info:
        load_image(path, index=7)
    assert info.value.index == 7 and info.value.path.endswith("cut.jpg")


def test_non_image_and_missing_files(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    with pytest.raises(ImageDecodeError, match=r"notes\.jpg.*not an image"):
        load_image(text)
    with pytest.raises(ImageDecodeError, match=r"gone\.png'.*no such file"):
        load_image(tmp_path / "gone.png")
    with pytest.raises(ImageDecodeError, match="not an image"):
        decode_image(b"", path="empty.png")


@pytest.mark.parametrize(
    ("array", "expected_dtype"),
    [(np.zeros((4, 5), np.uint8), np.uint8), (np.zeros((4, 5, 1), np.uint8), np.uint8),
     (np.full((4, 5, 3), 200, np.int64), np.uint8), (np.zeros((4, 5, 3), np.float64), np.float32),
     (np.zeros((4, 5, 3), np.uint16), np.uint8)],
)
def test_accepted_arrays(array, expected_dtype):
    out = to_rgb_array(array)
    assert out.shape == (4, 5, 3) and out.dtype == expected_dtype


@pytest.mark.parametrize(
    ("array", "match"),
    [(np.zeros((4, 5, 4), np.uint8), r"shape \(4, 5, 4\)"),
     (np.zeros((2, 4, 5, 3), np.uint8), "expected"),
     (np.full((4, 5, 3), 300, np.int32), r"\[300, 300\]"),
     (np.full((4, 5, 3), -1, np.int8), "must lie in"),
     (np.zeros((4, 5, 3), bool), "dtype bool"),
     (np.full((4, 5, 3), np.inf, np.float32), "infinite"),
     (np.zeros((0, 5, 3), np.uint8), "empty")],
)
def test_refused_arrays_name_the_image(array, match):
    with pytest.raises(ValueError, match=match):
        to_rgb_array(array, index=3)
    with pytest.raises(ValueError, match="#3"):
        to_rgb_array(array, index=3)


@pytest.mark.parametrize("shape", [(40, 60), (60, 40), (8, 8), (224, 224)])
@pytest.mark.parametrize("mode", ["squash", "center_crop", "pad"])
def test_resize_shapes(shape, mode):
    out = resize_image(np.zeros((*shape, 3), np.uint8), (32, 48), mode)
    assert out.shape == (32, 48, 3) and out.dtype == np.float32


def test_squash_matches_pillow_bilinear_exactly():
    img = np.random.default_rng(1).integers(0, 256, (37, 53, 3), np.uint8)
    expected = np.asarray(Image.fromarray(img).resize((224, 224), Image.BILINEAR), np.float32)
    np.testing.assert_array_equal(resize_image(img, 224), expected)
    solid = np.full((10, 30, 3), (10, 20, 30), np.uint8)
    np.testing.assert_array_equal(resize_image(solid, 64)[0, 0], [10, 20, 30])


def test_float_images_keep_precision():
    img = np.full((10, 10, 3), 100.25, np.float32)
    np.testing.assert_allclose(resize_image(img, 20), 100.25, rtol=1e-6)


def test_center_crop_keeps_the_middle():
    img = np.zeros((30, 90, 3), np.uint8)
    img[:, :30], img[:, 30:60], img[:, 60:] = RED, GREEN, BLUE
    out = resize_image(img, 30, "center_crop")
    assert out[:, 2:-2, 1].min() == 255 and out[:, 2:-2, [0, 2]].max() == 0


def test_pad_adds_black_bars_of_the_expected_size():
    out = resize_image(np.full((20, 80, 3), 255, np.uint8), 40, "pad")
    # 80 -> 40 wide, so 20 -> 10 high, centred: 15 black rows above and below.
    assert (out[:15] == 0).all() and (out[25:] == 0).all() and (out[15:25] == 255).all()


def test_unknown_mode():
    with pytest.raises(ValueError, match="'stretch' is not one of"):
        resize_image(np.zeros((4, 4, 3), np.uint8), 8, "stretch")


def test_prepare_image_from_path_bytes_and_array(tmp_path, sample_photos):
    photo = sample_photos[0]
    Image.fromarray(photo).save(tmp_path / "p.png")
    from_path = prepare_image(tmp_path / "p.png", 64)
    np.testing.assert_array_equal(prepare_image((tmp_path / "p.png").read_bytes(), 64), from_path)
    np.testing.assert_array_equal(prepare_image(photo, 64), from_path)
    np.testing.assert_array_equal(prepare_image(photo, 64, flip=True), flip_horizontal(from_path))
    for mode in ("squash", "center_crop", "pad"):
        out = prepare_image(photo, (100, 80), mode)
        assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 255
