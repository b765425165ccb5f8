"""Keep huge images from taking gigabytes: decode them small, and few at a time.

A 12000x12000 PNG is 144 million pixels, over half a gigabyte once decoded and more while
it is converted, yet the backbone sees 224x224 of it. Two mechanisms, both used by
:func:`skmtl.io.images.prepare_image` (and so by the featurizer):

- **Early reduction.** When an image is much larger than what the resize step resamples
  it to, a JPEG is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, through
  Pillow's ``Image.draft``), and an 8-bit RGB/RGBA/L/LA image of any format is
  box-reduced (``Image.reduce``) right after decoding, before the copies that conversion
  and resizing make. Either stays at least :data:`MARGIN` times the resampled size in
  each dimension, so the antialiased bilinear resize that follows sees the same content
  and the result differs only by resampling noise. Images that are not that large are
  decoded exactly as before.
- **A pixel budget.** :data:`DECODE_BUDGET` bounds the decoded pixels held at once by all
  threads of the process (the featurizer decodes several images ahead in a thread pool):
  an image waits until its pixels fit next to those already being decoded. An image
  larger than the whole budget proceeds alone, so nothing is refused; several huge PNGs
  (which cannot be drafted) are never decoded side by side.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import ExifTags, Image

__all__ = ["DECODE_BUDGET", "DRAFTABLE", "MARGIN", "PixelBudget", "draft", "orientation", "shrink",
           "swaps_axes"]

#: An early-reduced image keeps at least this many times the size the resize step
#: resamples it to, in each dimension (Pillow's ``reducing_gap``: from 3 on, "the result
#: is indistinguishable from fair resampling in most cases").
MARGIN = 3

#: Default :data:`DECODE_BUDGET`: 64 megapixels (about 256 MB as Pillow holds RGB, a few
#: times that while converting): four 16-megapixel photos decode side by side.
DEFAULT_MAX_PIXELS = 64_000_000

#: Formats whose decoder can scale down (MPO: the JPEG variant many cameras write).
DRAFTABLE = ("JPEG", "MPO")

#: Modes whose box reduction commutes with the conversion to RGB that follows (alpha is
#: premultiplied by ``Image.reduce``, so compositing onto white afterwards is exact).
_REDUCIBLE = ("RGB", "L", "RGBA", "LA")

#: EXIF orientation -> the transposition that shows the image upright (as ImageOps does).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class PixelBudget:
    """A bound on the decoded pixels held at once, shared by threads, first come first served.

    Parameters
    ----------
    max_pixels : int
        Pixels that may be reserved at once. A single reservation larger than this waits
        until nothing else is reserved, then proceeds alone.

    Attributes
    ----------
    in_use : int
        Pixels reserved now.
    """

    def __init__(self, max_pixels: int) -> None:
        self.max_pixels = int(max_pixels)
        self.in_use = 0
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    @contextmanager
    def reserve(self, pixels: int) -> Iterator[None]:
        """Hold ``pixels`` for the duration of the ``with`` block (waiting for room first).

        Waiters are served in arrival order, so a huge image is not starved by a stream
        of small ones.
        """
        pixels = int(pixels)
        ticket = object()
        with self._changed:
            self._queue.append(ticket)
            self._changed.wait_for(lambda: self._queue[0] is ticket and (
                self.in_use == 0 or self.in_use + pixels <= self.max_pixels))
            self._queue.popleft()
            self.in_use += pixels
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self.in_use -= pixels
                self._changed.notify_all()


#: The process-wide budget that :func:`skmtl.io.images.decode_image` and
#: :func:`skmtl.io.images.prepare_image` decode within.
DECODE_BUDGET = PixelBudget(DEFAULT_MAX_PIXELS)


def orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 to 8; 1 when absent or unreadable)."""
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # corrupt EXIF: exif_transpose fails the same way and is skipped
        return 1
    return value if value in _TRANSPOSE else 1


def swaps_axes(image: Image.Image) -> bool:
    """Whether showing ``image`` upright swaps its width and height (EXIF 5 to 8)."""
    return orientation(image) in (5, 6, 7, 8)


#: Where EXIF orientation 2 to 8 sends a point (x, y) of a (w, h) image, upright.
_MOVE = {
    2: lambda x, y, w, h: (w - x, y),
    3: lambda x, y, w, h: (w - x, h - y),
    4: lambda x, y, w, h: (x, h - y),
    5: lambda x, y, w, h: (y, x),
    6: lambda x, y, w, h: (h - y, x),
    7: lambda x, y, w, h: (h - y, w - x),
    8: lambda x, y, w, h: (y, w - x),
}


def _factor(size: tuple[int, int], need: tuple[int, int]) -> int:
    """The largest integer reduction of ``size`` keeping ``MARGIN * need`` (both (w, h))."""
    return max(1, min(size[0] // (MARGIN * need[0]), size[1] // (MARGIN * need[1])))


def draft(image: Image.Image, need: tuple[int, int]) -> int:
    """Ask a not yet loaded JPEG to decode at 1/2, 1/4 or 1/8 scale when large enough.

    ``need`` is the (width, height), in the file's orientation, that the image will be
    resampled to. Returns the scale's denominator (1: decoded at full size).
    """
    if image.format not in DRAFTABLE or _factor(image.size, need) < 2:
        return 1
    image.draft(image.mode, (MARGIN * need[0], MARGIN * need[1]))
    config = getattr(image, "decoderconfig", ())  # (scale, 0) once drafted
    return int(config[0]) if config and config[0] in (2, 4, 8) else 1


def shrink(
    image: Image.Image, full: tuple[int, int], need: tuple[int, int], scale: int
) -> tuple[Image.Image, tuple[float, float, float, float]] | None:
    """Box-reduce a loaded image when worthwhile, and show a drafted or reduced one upright.

    Parameters
    ----------
    image : PIL.Image.Image
        Loaded, possibly at ``1 / scale`` of its ``full`` (width, height) by :func:`draft`.
    full : (int, int)
        Its (width, height) in the file.
    need : (int, int)
        As in :func:`draft`.
    scale : int
        What :func:`draft` returned.

    Returns
    -------
    (PIL.Image.Image, (float, float, float, float)) or None
        The upright image and the box (left, upper, right, lower) that the full image's
        content covers in it (reduced sizes round up, so the last row and column may
        cover less than a whole pixel; resampling this box keeps the geometry exact); or
        None when the image is neither drafted nor worth reducing, to be decoded as usual.
        Only 8-bit L, LA, RGB and RGBA images without a transparent colour are reduced.
    """
    k = _factor(image.size, need)
    if k < 2 or image.mode not in _REDUCIBLE or "transparency" in image.info:
        k = 1
    if scale == 1 and k == 1:
        return None
    small = image.reduce(k) if k > 1 else image
    # The EXIF orientation is read from the original: reduce() does not carry TIFF tags.
    turn = orientation(image)
    right, lower = full[0] / (scale * k), full[1] / (scale * k)
    if turn == 1:
        return small, (0.0, 0.0, right, lower)
    corners = [_MOVE[turn](x, y, *small.size) for x, y in ((0, 0), (right, lower))]
    (x0, y0), (x1, y1) = corners
    box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    return small.transpose(_TRANSPOSE[turn]), box
