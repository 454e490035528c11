"""Safe decoding of whatever a person uploads, plus built-in sample pictures.

Every failure surfaces as an ImageError whose message is one sentence a person can act on.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable
from functools import cache

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError, features

try:  # optional: HEIC/HEIF support only when pillow-heif is installed and its native library loads
    import pillow_heif
except (ImportError, OSError):
    pillow_heif = None

MAX_PIXELS = 40_000_000
MAX_BYTES = 50 * 1024 * 1024
MAX_ASPECT = 50  # longer side / shorter side; beyond this a picture is a strip, not a photo

# Formats are allow-listed by what PIL detects in the bytes, never by file name, so that
# exotic plugins (EPS goes to Ghostscript, ICO, PSD, ...) are never even tried.
_FORMATS = ["JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF", "HEIF"]

SUPPORTED_TYPES = ["jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff"]
if pillow_heif is not None:
    SUPPORTED_TYPES += ["heic", "heif"]
if features.check("avif"):  # Pillow decodes AVIF itself when built with libavif
    SUPPORTED_TYPES += ["avif"]


class ImageError(ValueError):
    """An upload that cannot be used; str(err) is one plain sentence for the person."""


@cache
def allowed_formats() -> tuple[str, ...]:
    if pillow_heif is not None:
        # Registered on first use rather than at import, so importing this module has no side effects.
        try:
            pillow_heif.register_heif_opener()
        except Exception:  # a broken pillow-heif must not take the other formats down with it
            pass
    Image.init()
    # Image.open raises KeyError for a format name without a registered plugin, so pass only known ones.
    return tuple(f for f in _FORMATS if f in Image.OPEN)


def _not_an_image_message() -> str:
    names = ["JPEG", "PNG", "GIF", "WebP", "BMP", "TIFF"]
    names += [n for n, f in (("HEIC", "HEIF"), ("AVIF", "AVIF")) if f in allowed_formats()]
    return f"This file is not an image this app can read (allowed: {', '.join(names)})."


def _read_bytes(source) -> bytes:
    # Read at most MAX_BYTES + 1 so an oversized upload is refused without holding all of it in memory.
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as f:
                data = f.read(MAX_BYTES + 1)
        except OSError as e:
            raise ImageError(f"The file {os.fspath(source)!s} could not be opened ({e.strerror or e}).") from None
    elif hasattr(source, "read"):
        data = source.read(MAX_BYTES + 1)  # from the current position, like any file read
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("load_image needs a binary file object, not a text one")
        data = bytes(data)
    else:
        raise TypeError(f"load_image cannot read a {type(source).__name__}; pass a path, bytes or a binary file")
    if len(data) > MAX_BYTES:
        raise ImageError(f"This file is larger than the {MAX_BYTES / 2**20:g} MB limit; please upload a smaller image.")
    if not data:
        raise ImageError("The file is empty; please choose an image file.")
    return data


def check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"This image is {width} x {height} pixels, more than the {MAX_PIXELS // 1_000_000} megapixel limit; "
            "please resize it first."
        )
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageError(
            f"This image is {width} x {height} pixels, which is too long and thin (more than {MAX_ASPECT}:1); "
            "please crop it to a more ordinary shape."
        )


def _high_depth_to_l(im: Image.Image) -> Image.Image:
    # convert("L") clips 16-bit and float data at 255, turning most of the picture white; rescale instead.
    a = np.nan_to_num(np.asarray(im, dtype=np.float32))
    lo, hi = float(a.min()), float(a.max())
    if im.mode.startswith("I;16") or (im.mode == "I" and lo >= 0 and hi <= 65535):
        a = a / 257.0  # 16-bit full scale: 65535 -> 255, 32768 -> 127.5
    elif im.mode == "F" and lo >= 0 and hi <= 1:
        a = a * 255.0  # the usual convention for float images
    elif hi > lo:
        a = (a - lo) * (255.0 / (hi - lo))  # unknown range: stretch what is there
    else:
        a = np.zeros_like(a)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")


def _to_rgb(im: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        im = _high_depth_to_l(im)
    if im.has_transparency_data:  # alpha band, or a transparent colour/index (tRNS, GIF)
        rgba = im.convert("RGBA")
        out = Image.new("RGB", im.size, tuple(background))
        out.paste(rgba, (0, 0), rgba)
        return out
    return im.convert("RGB")  # CMYK (Adobe-inverted JPEG included), P, L, 1, YCbCr, ...


def load_image(source, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Decode a path, bytes or binary file object into a fully loaded RGB image, or raise ImageError."""
    data = _read_bytes(source)
    try:
        with warnings.catch_warnings():
            # PIL warns (not raises) above ~89 MP; make that an error here without touching its global limit.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=allowed_formats()) as im:
                im.seek(0)  # first frame of GIF/WebP/APNG/MPO/multi-page TIFF
                # Own cap, checked on the header before any pixel is decoded: PIL's global limit is
                # process-wide (other code may change it) and far above what this app wants to hold.
                check_size(*im.size)
                im.load()
                try:
                    im = ImageOps.exif_transpose(im)
                except Exception:  # a broken EXIF block should not cost the person a readable picture
                    pass
                return _to_rgb(im, background)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(_not_an_image_message()) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"This image has more pixels than the {MAX_PIXELS // 1_000_000} megapixel limit; please resize it first."
        ) from None
    except MemoryError:
        raise ImageError("This image needs more memory to decode than is available; please resize it first.") from None
    except Exception:  # PIL's plugins raise OSError, SyntaxError, struct.error, ValueError, ... on bad data
        raise ImageError(
            "This image file is damaged or incomplete and could not be read; please re-save or re-upload it."
        ) from None


def _array_to_rgb(a) -> Image.Image:
    a = np.asarray(a)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    return Image.fromarray(a).convert("RGB")


def _skimage(name: str, frame: int | None = None) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        from skimage import data  # imported on demand: the picker should not pay for it up front

        a = getattr(data, name)()
        return _array_to_rgb(a if frame is None else a[frame])

    return load


def _sklearn(filename: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        from sklearn.datasets import load_sample_image

        return _array_to_rgb(load_sample_image(filename))

    return load


def sample_images() -> dict[str, Callable[[], Image.Image]]:
    """Offline sample pictures, as name -> loader; the first is one an ImageNet classifier gets right.

    Only images bundled inside the installed wheels are listed: skimage's eagle, lily, skin etc. are
    downloaded with pooch on first use, so they are left out.
    """
    return {
        "chelsea (cat)": _skimage("chelsea"),
        "astronaut": _skimage("astronaut"),
        "coffee": _skimage("coffee"),
        "rocket": _skimage("rocket"),
        "motorcycle": _skimage("stereo_motorcycle", frame=0),
        "china": _sklearn("china.jpg"),
        "flower": _sklearn("flower.jpg"),
        "camera (grey)": _skimage("camera"),
        "horse (silhouette)": _skimage("horse"),
    }
