"""Decoding what real competition data contains, checking arrays, and resizing."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from skmtl.io.images import (
    RESIZE_MODES,
    ImageDecodeError,
    decode_image,
    flip_horizontal,
    load_image,
    prepare_image,
    read_bytes,
    resize_image,
    to_rgb_array,
)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def quadrants(h=40, w=60) -> np.ndarray:
    """Top-left red, top-right green, bottom-left blue, bottom-right white."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = RED
    img[: h // 2, w // 2 :] = GREEN
    img[h // 2 :, : w // 2] = BLUE
    img[h // 2 :, w // 2 :] = WHITE
    return img


def opened(path) -> Image.Image:
    """Open and load ``path`` (closing the file) to look at its mode or frames."""
    with Image.open(path) as image:
        image.load()
        return image


def close(pixel, colour, tol=30) -> bool:
    return np.abs(np.asarray(pixel, int) - colour).max() <= tol


# ---------------------------------------------------------------- decoding files
@pytest.mark.parametrize(
    ("fmt", "suffix", "options"),
    [("PNG", "png", {}), ("BMP", "bmp", {}), ("TIFF", "tif", {}),
     ("WEBP", "webp", {"lossless": True})],
)
def test_lossless_formats_decode_exactly(tmp_path, fmt, suffix, options):
    src = quadrants()
    path = tmp_path / f"img.{suffix}"
    Image.fromarray(src).save(path, fmt, **options)
    out = load_image(str(path))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, src)


def test_jpeg(tmp_path):
    Image.fromarray(quadrants()).save(tmp_path / "a.jpg", quality=95)
    out = load_image(tmp_path / "a.jpg")
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8
    assert close(out[5, 5], RED) and close(out[35, 55], WHITE)


def test_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 6), RED), Image.new("RGB", (8, 6), BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with Image.open(path) as gif:
        assert gif.n_frames == 2
    out = load_image(path)
    assert out.shape == (6, 8, 3)
    assert (out == RED).all()


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # the stored pixels must be turned 90 degrees clockwise to display
    Image.fromarray(quadrants(40, 60)).save(path, exif=exif, quality=95)
    out = load_image(path)
    assert out.shape == (60, 40, 3)
    # Clockwise: stored top-left (red) goes top-right, stored bottom-right (white) bottom-left.
    assert close(out[5, 35], RED) and close(out[55, 5], WHITE)
    assert close(out[5, 5], BLUE) and close(out[55, 35], GREEN)


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_becomes_three_equal_channels(tmp_path, mode):
    gray = Image.fromarray(np.tile(np.array([0, 255], np.uint8), (4, 4))).convert(mode)
    gray.save(tmp_path / "gray.png")
    assert opened(tmp_path / "gray.png").mode == mode
    out = load_image(tmp_path / "gray.png")
    assert out.shape == (4, 8, 3)
    np.testing.assert_array_equal(out, np.repeat(np.tile([0, 255], (4, 4))[..., None], 3, -1))


def test_palette_without_and_with_transparency(tmp_path):
    pal = Image.fromarray(quadrants()).convert("P")
    pal.save(tmp_path / "p.png")
    assert opened(tmp_path / "p.png").mode == "P"
    np.testing.assert_array_equal(load_image(tmp_path / "p.png"), quadrants())
    pal.save(tmp_path / "pt.png", transparency=pal.getpixel((55, 5)))  # green is transparent
    out = load_image(tmp_path / "pt.png")
    np.testing.assert_array_equal(out[5, 55], WHITE)
    np.testing.assert_array_equal(out[5, 5], RED)
    np.testing.assert_array_equal(out[35, 5], BLUE)


def test_grayscale_colour_key_transparency_becomes_white(tmp_path):
    Image.fromarray(np.array([[0, 100, 200]], np.uint8)).save(tmp_path / "k.png",
                                                               transparency=100)
    np.testing.assert_array_equal(load_image(tmp_path / "k.png")[0, :, 0], [0, 255, 200])


def test_alpha_is_composited_onto_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 0)  # transparent red -> white
    rgba[0, 1] = (0, 0, 255, 255)  # opaque blue stays blue
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black -> mid gray
    Image.fromarray(rgba).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(out[0, 0], WHITE)
    np.testing.assert_array_equal(out[0, 1], BLUE)
    assert abs(int(out[0, 2, 0]) - 128) <= 1 and len(set(out[0, 2])) == 1


def test_gray_alpha_is_composited_onto_white(tmp_path):
    la = Image.fromarray(np.array([[[0, 0], [0, 255], [200, 255]]], np.uint8), "LA")
    la.save(tmp_path / "la.png")
    assert opened(tmp_path / "la.png").mode == "LA"
    np.testing.assert_array_equal(load_image(tmp_path / "la.png")[0],
                                  [WHITE, [0] * 3, [200] * 3])


def test_cmyk_jpeg(tmp_path):
    Image.fromarray(quadrants()).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    assert opened(tmp_path / "c.jpg").mode == "CMYK"
    out = load_image(tmp_path / "c.jpg")
    assert out.shape == (40, 60, 3)
    assert close(out[5, 5], RED) and close(out[35, 5], BLUE) and close(out[35, 55], WHITE)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.array([[0, 128, 257 * 100, 65535]], np.uint16)).save(tmp_path / "d.png")
    assert opened(tmp_path / "d.png").mode == "I;16"
    out = load_image(tmp_path / "d.png")
    np.testing.assert_array_equal(out[0], np.repeat([[0], [0], [100], [255]], 3, -1))


def test_thirty_two_bit_int_and_float_tiffs(tmp_path):
    Image.fromarray(np.array([[0, 257 * 7, 65535]], np.int32)).save(tmp_path / "i.tif")
    assert opened(tmp_path / "i.tif").mode == "I"
    np.testing.assert_array_equal(load_image(tmp_path / "i.tif")[0, :, 0], [0, 7, 255])
    Image.fromarray(np.array([[-5, 100.4, 300]], np.float32)).save(tmp_path / "f.tif")
    assert opened(tmp_path / "f.tif").mode == "F"
    np.testing.assert_array_equal(load_image(tmp_path / "f.tif")[0, :, 0], [0, 100, 255])
    Image.fromarray(np.array([[np.nan, 1]], np.float32)).save(tmp_path / "nan.tif")
    with pytest.raises(ImageDecodeError, match=r"nan\.tif.*NaN"):
        load_image(tmp_path / "nan.tif")


# ---------------------------------------------------------------- bad files
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file_is_an_error_naming_the_file(tmp_path, fmt):
    path = tmp_path / f"cut.{fmt.lower()}"
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    Image.fromarray(noise).save(path, fmt)
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    with pytest.raises(ImageDecodeError,
                       match=rf"^Cannot decode image #7 '.*cut\.{fmt.lower()}': truncated {fmt}"
                       ) as info:
        load_image(path, index=7)
    assert info.value.index == 7 and info.value.path == str(path)
    assert isinstance(info.value, ValueError)


def test_non_image_files(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    with pytest.raises(ImageDecodeError, match=r"'.*notes\.jpg': not an image") as info:
        load_image(text)
    assert info.value.index is None
    with pytest.raises(ImageDecodeError, match=r"^Cannot decode image 'e\.png': empty file"):
        decode_image(b"", path="e.png")
    with pytest.raises(ImageDecodeError, match=r"#2: an HTML page"):
        decode_image(b"<!DOCTYPE html><html></html>", index=2)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageDecodeError, match=r"^Cannot decode image #0 '.*gone\.png': no such"):
        load_image(tmp_path / "gone.png", index=0)
    with pytest.raises(ImageDecodeError, match="no such file"):
        read_bytes(tmp_path / "gone.png")
    with pytest.raises(ImageDecodeError, match="directory"):
        read_bytes(tmp_path)
    with pytest.raises(TypeError, match="file path"):
        read_bytes(3)


def test_load_image_is_read_bytes_then_decode(tmp_path):
    Image.fromarray(quadrants()).save(tmp_path / "q.png")
    data = read_bytes(tmp_path / "q.png")
    assert data == (tmp_path / "q.png").read_bytes()
    np.testing.assert_array_equal(decode_image(data), load_image(tmp_path / "q.png"))


def test_decode_error_pickles_and_rewraps():
    err = ImageDecodeError("truncated JPEG file", path="data/x.jpg", index=3)
    assert str(err) == "Cannot decode image #3 'data/x.jpg': truncated JPEG file"
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) and (back.path, back.index) == ("data/x.jpg", 3)
    assert str(type(err)(f"{err} (and more)")) == f"{err} (and more)"


def test_decoding_from_threads_matches_serial(tmp_path):
    rng = np.random.default_rng(2)
    paths = []
    for i in range(12):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (50 + i, 70, 3), np.uint8)).save(paths[-1])
    serial = [prepare_image(p, 32) for p in paths]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda p: prepare_image(p, 32), paths))
    for a, b in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- arrays
@pytest.mark.parametrize(
    ("array", "dtype"),
    [(np.full((4, 5), 7, np.uint8), np.uint8), (np.full((4, 5, 1), 7, np.uint8), np.uint8),
     (np.full((4, 5, 3), 7, np.uint8), np.uint8), (np.full((4, 5, 3), 7, np.int64), np.uint8),
     (np.full((4, 5), 7, np.uint16), np.uint8), (np.full((4, 5, 3), 7, np.int8), np.uint8),
     (np.full((4, 5, 3), 7.5, np.float64), np.float32),
     (np.full((4, 5, 1), 7.5, np.float16), np.float32),
     (np.full((4, 5, 3), 300.5, np.float32), np.float32)],
)
def test_accepted_arrays(array, dtype):
    out = to_rgb_array(array, index=0)
    assert out.shape == (4, 5, 3) and out.dtype == dtype
    np.testing.assert_array_equal(out, np.broadcast_to(array.reshape(4, 5, -1), (4, 5, 3)))


def test_float_values_are_not_rescaled():
    out = to_rgb_array(np.full((2, 2, 3), 0.5))
    assert out.dtype == np.float32 and (out == 0.5).all()


@pytest.mark.parametrize(
    ("array", "match"),
    [(np.zeros((4, 5, 4), np.uint8), r"shape \(4, 5, 4\); expected \(height, width\), "),
     (np.zeros((4, 5, 2), np.uint8), r"shape \(4, 5, 2\)"),
     (np.zeros((2, 4, 5, 3), np.uint8), "expected"),
     (np.zeros(5, np.uint8), "expected"),
     (np.full((4, 5, 3), 300, np.int32), r"values in \[300, 300\]"),
     (np.full((4, 5, 3), -1, np.int8), "must lie in"),
     (np.zeros((4, 5, 3), bool), "dtype bool"),
     (np.zeros((4, 5, 3), complex), "dtype complex"),
     (np.zeros((4, 5, 3), object), "dtype object"),
     (np.full((4, 5, 3), "a"), "dtype <U1"),
     (np.full((4, 5, 3), np.inf, np.float32), "infinite"),
     (np.full((4, 5, 3), np.nan), "NaN"),
     (np.full((4, 5, 3), 1e300), "infinite"),  # overflows float32
     (np.zeros((0, 5, 3), np.uint8), "empty")],
)
def test_refused_arrays_name_the_image(array, match):
    with pytest.raises(ValueError, match=match):
        to_rgb_array(array, index=3)
    with pytest.raises(ValueError, match=r"^Image #3 "):
        to_rgb_array(array, index=3)


# ---------------------------------------------------------------- resizing
@pytest.mark.parametrize("shape", [(40, 60), (60, 40), (8, 8), (3, 200), (224, 224)])
@pytest.mark.parametrize("mode", RESIZE_MODES)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_resize_shapes(shape, mode, dtype):
    out = resize_image(np.full((*shape, 3), 90, dtype), (32, 48), mode)
    assert out.shape == (32, 48, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.max() == pytest.approx(90, abs=1e-3)


def test_int_size_means_square():
    assert resize_image(np.zeros((10, 20, 3), np.uint8), 7).shape == (7, 7, 3)
    assert resize_image(np.zeros((10, 20, 3), np.uint8), np.int64(5), "pad").shape == (5, 5, 3)


def test_squash_matches_pillow_bilinear_exactly():
    img = np.random.default_rng(1).integers(0, 256, (37, 53, 3), np.uint8)
    for h, w in [(224, 224), (20, 30), (37, 10)]:
        expected = np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR), np.float32)
        np.testing.assert_array_equal(resize_image(img, (h, w)), expected)


def test_squash_keeps_a_solid_colour_and_upscales_tiny_images():
    solid = np.full((10, 30, 3), (10, 20, 30), np.uint8)
    assert (resize_image(solid, 64) == [10, 20, 30]).all()
    tiny = quadrants(8, 8)
    big = resize_image(tiny, 224)
    assert big.shape == (224, 224, 3) and big.min() == 0 and big.max() == 255
    np.testing.assert_array_equal(big[:80, :80], np.broadcast_to(RED, (80, 80, 3)))
    np.testing.assert_array_equal(big[150:, 150:], np.broadcast_to(WHITE, (74, 74, 3)))
    assert 0 < big[112, 50, 0] < 255  # blended across the boundary, not nearest-neighbour


def test_target_size_is_cast_not_resampled():
    img = np.random.default_rng(4).integers(0, 256, (16, 24, 3), np.uint8)
    for mode in RESIZE_MODES:
        out = resize_image(img, (16, 24), mode)
        assert out.dtype == np.float32 and not np.shares_memory(out, img)
        np.testing.assert_array_equal(out, img)


def test_float_images_keep_precision_and_match_uint8_path():
    np.testing.assert_allclose(resize_image(np.full((10, 10, 3), 100.25, np.float32), 20),
                               100.25, rtol=1e-6)
    img = np.random.default_rng(5).integers(0, 256, (30, 40, 3), np.uint8)
    from_float = resize_image(img.astype(np.float32), (17, 50))
    assert np.abs(from_float - resize_image(img, (17, 50))).max() <= 1
    assert not np.array_equal(from_float, np.round(from_float))  # not quantised to uint8


def test_center_crop_keeps_the_middle():
    img = np.zeros((30, 90, 3), np.uint8)
    img[:, :30], img[:, 30:60], img[:, 60:] = RED, GREEN, BLUE
    out = resize_image(img, 30, "center_crop")
    assert out[:, 2:-2, 1].min() == 255 and out[:, 2:-2, [0, 2]].max() == 0
    out = resize_image(img, 16, "center_crop")  # shrinking: 30x90 -> 16x48 -> middle 16
    assert (out[..., 1] > 200).mean() > 0.8 and out.shape == (16, 16, 3)
    tall = resize_image(img.transpose(1, 0, 2), (10, 10), "center_crop")
    assert (tall[..., 1] > 200).mean() > 0.8


def test_pad_adds_black_bars_of_the_expected_size():
    out = resize_image(np.full((20, 80, 3), 255, np.uint8), 40, "pad")
    # 80 -> 40 wide, so 20 -> 10 high, centred: 15 black rows above and below.
    assert (out[:15] == 0).all() and (out[25:] == 0).all() and (out[15:25] == 255).all()
    tall = resize_image(np.full((90, 30, 3), 255, np.uint8), (30, 31), "pad")
    # 90 -> 30 high, so 30 -> 10 wide; 21 columns of margin: 10 left, 11 right.
    assert (tall[:, :10] == 0).all() and (tall[:, 10:20] == 255).all()
    assert (tall[:, 20:] == 0).all()


@pytest.mark.parametrize(
    ("args", "match"),
    [((np.zeros((4, 4, 3), np.uint8), 8, "stretch"), r"'stretch' is not one of \('squash'"),
     ((np.zeros((4, 4, 3), np.uint8), 0), "positive"),
     ((np.zeros((4, 4, 3), np.uint8), (8, 8, 3)), "positive"),
     ((np.zeros((4, 4, 3), np.uint8), (8.0, 8)), "positive"),
     ((np.zeros((4, 4), np.uint8), 8), r"\(h, w, 3\)"),
     ((np.zeros((0, 4, 3), np.uint8), 8), r"\(h, w, 3\)")],
)
def test_resize_refuses(args, match):
    with pytest.raises(ValueError, match=match):
        resize_image(*args)


def test_flip_after_resize(sample_photos):
    photo = sample_photos[1]
    assert flip_horizontal(photo)[0, 0].tolist() == photo[0, -1].tolist()
    # squash commutes with mirroring (the featurizer still flips after resizing).
    a = resize_image(flip_horizontal(photo), (50, 70))
    b = flip_horizontal(resize_image(photo, (50, 70)))
    assert np.abs(a - b).max() <= 1


def test_prepare_image_from_path_bytes_and_array(tmp_path, sample_photos):
    photo = sample_photos[0]
    Image.fromarray(photo).save(tmp_path / "p.png")
    # 427x640 -> 160: not 6x larger, so decoded at full size, exactly like the array.
    from_path = prepare_image(tmp_path / "p.png", 160)
    assert from_path.shape == (160, 160, 3) and from_path.dtype == np.float32
    np.testing.assert_array_equal(prepare_image(str(tmp_path / "p.png"), 160), from_path)
    np.testing.assert_array_equal(prepare_image((tmp_path / "p.png").read_bytes(), 160),
                                  from_path)
    np.testing.assert_array_equal(prepare_image(photo, 160), from_path)
    np.testing.assert_array_equal(prepare_image(photo, 160, flip=True), from_path[:, ::-1])
    # -> 64: the file is box-reduced 2x before resizing; only resampling noise differs.
    assert np.abs(prepare_image(tmp_path / "p.png", 64) - prepare_image(photo, 64)).mean() < 1
    with pytest.raises(ImageDecodeError, match="#4"):
        prepare_image(tmp_path / "nope.png", 64, index=4)


@pytest.mark.parametrize("mode", RESIZE_MODES)
def test_real_photo_through_each_mode(sample_photos, mode):
    for photo in sample_photos:
        out = prepare_image(photo, (100, 80), mode)
        assert out.shape == (100, 80, 3) and out.dtype == np.float32
        assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 255
        assert out.std() > 10  # a real picture survived, not a blank
