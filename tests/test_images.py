"""Tests for vislib.images: every awkward file is made here, in memory or in tmp_path."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile, features

from vislib import images
from vislib.images import ImageError, load_image


def encode(im, fmt, **kw):
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def close(actual, expected, tol=6):
    return all(abs(a - e) <= tol for a, e in zip(actual, expected))


def png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def raw_png(width, height, bit_depth, colour_type, rows=b""):
    """A PNG written byte by byte: lets the header claim any size, and keeps 16-bit samples exact."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def assert_one_sentence(err):
    msg = str(err)
    assert msg.endswith(".") and "\n" not in msg and "Traceback" not in msg
    assert msg[0].isupper() and len(msg) < 200


# --- sources and basic formats -------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "TIFF", "WEBP"])
@pytest.mark.parametrize("kind", ["path", "str", "bytes", "bytearray", "bytesio"])
def test_sources_and_formats(tmp_path, fmt, kind):
    data = encode(Image.new("RGB", (30, 20), (200, 40, 90)), fmt)
    path = tmp_path / f"upload.{fmt.lower()}"
    path.write_bytes(data)
    source = {
        "path": path,
        "str": str(path),
        "bytes": data,
        "bytearray": bytearray(data),
        "bytesio": io.BytesIO(data),
    }[kind]
    im = load_image(source)
    assert im.mode == "RGB" and im.size == (30, 20)
    assert close(im.getpixel((15, 10)), (200, 40, 90))
    assert not isinstance(im, ImageFile.ImageFile)  # detached from any file, pixels in memory


def test_format_detected_from_content_not_name(tmp_path):
    path = tmp_path / "photo.gif"  # really a PNG
    path.write_bytes(encode(Image.new("RGB", (8, 8), (0, 0, 255)), "PNG"))
    assert load_image(path).getpixel((0, 0)) == (0, 0, 255)
    text = tmp_path / "notes.jpg"  # really text
    text.write_bytes(b"just some text, not a picture")
    with pytest.raises(ImageError):
        load_image(text)


def test_missing_file_and_wrong_type(tmp_path):
    with pytest.raises(ImageError, match="could not be opened") as err:
        load_image(tmp_path / "nope.png")
    assert_one_sentence(err.value)
    with pytest.raises(TypeError):
        load_image(12345)
    with pytest.raises(TypeError):
        load_image(io.StringIO("text"))


# --- orientation, colour modes, alpha ------------------------------------------------------


def test_exif_orientation_applied():
    im = Image.new("RGB", (40, 20), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 8, 8))  # mark the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    out = load_image(encode(im, "JPEG", exif=exif.tobytes(), quality=95))
    assert out.size == (20, 40)
    assert close(out.getpixel((17, 2)), (255, 0, 0), tol=40)  # top-left went to top-right
    assert close(out.getpixel((2, 2)), (0, 0, 255), tol=40)


def test_cmyk_jpeg_red():
    data = encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert close(load_image(data).getpixel((8, 8)), (255, 0, 0), tol=10)


def palette_png_with_transparent_index():
    im = Image.new("P", (20, 10), 0)
    im.putpalette([255, 0, 0, 0, 255, 0])  # index 0 red (made transparent), index 1 green
    im.paste(1, (10, 0, 20, 10))
    return encode(im, "PNG", transparency=0)


@pytest.mark.parametrize("background", [(255, 255, 255), (128, 128, 128)])
def test_palette_transparency_composited(background):
    out = load_image(palette_png_with_transparent_index(), background=background)
    assert out.mode == "RGB"
    assert out.getpixel((2, 5)) == background
    assert out.getpixel((15, 5)) == (0, 255, 0)


def test_gif_transparency_composited():
    im = Image.new("P", (10, 10), 1)
    im.putpalette([0, 0, 0, 255, 255, 0])
    im.paste(0, (0, 0, 5, 10))
    out = load_image(encode(im, "GIF", transparency=0), background=(10, 20, 30))
    assert out.getpixel((1, 1)) == (10, 20, 30)
    assert out.getpixel((8, 8)) == (255, 255, 0)


def test_rgba_half_transparent_black_on_white_is_grey():
    out = load_image(encode(Image.new("RGBA", (10, 10), (0, 0, 0, 128)), "PNG"))
    assert all(125 <= c <= 130 for c in out.getpixel((5, 5)))
    grey = load_image(encode(Image.new("RGBA", (10, 10), (0, 0, 0, 0)), "PNG"), background=(128, 128, 128))
    assert grey.getpixel((5, 5)) == (128, 128, 128)


def test_tRNS_colour_in_rgb_png():
    im = Image.new("RGB", (10, 10), (1, 2, 3))
    im.paste((200, 100, 50), (5, 0, 10, 10))
    out = load_image(encode(im, "PNG", transparency=(1, 2, 3)))
    assert out.getpixel((1, 1)) == (255, 255, 255)
    assert out.getpixel((8, 8)) == (200, 100, 50)


def test_la_l_and_1_modes():
    la = Image.new("LA", (10, 10), (100, 255))
    la.paste((0, 0), (0, 0, 5, 10))  # fully transparent left half
    out = load_image(encode(la, "PNG"))
    assert out.getpixel((8, 5)) == (100, 100, 100)
    assert out.getpixel((1, 5)) == (255, 255, 255)

    assert load_image(encode(Image.new("L", (10, 10), 77), "PNG")).getpixel((3, 3)) == (77, 77, 77)

    bw = Image.new("1", (10, 10), 0)
    bw.paste(1, (5, 0, 10, 10))
    out = load_image(encode(bw, "PNG"))
    assert out.getpixel((1, 1)) == (0, 0, 0) and out.getpixel((8, 8)) == (255, 255, 255)


def test_16bit_grey_png_scaled_not_clipped():
    rows = b"".join(b"\x00" + struct.pack(">4H", 65535, 32768, 0, 257) for _ in range(4))
    data = raw_png(4, 4, 16, 0, rows)
    assert Image.open(io.BytesIO(data)).mode == "I;16"  # Pillow 13 keeps the 16 bits
    out = load_image(data)
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert all(120 <= c <= 135 for c in out.getpixel((1, 0)))  # convert("L") would clip this to 255
    assert out.getpixel((2, 0)) == (0, 0, 0) and out.getpixel((3, 0)) == (1, 1, 1)


@pytest.mark.parametrize("mode", ["I;16", "I;16B"])
def test_16bit_tiff_scaled(mode):
    a = np.array([[65535, 32768, 0, 0]] * 4, dtype=np.uint16)
    im = Image.fromarray(a)
    if mode == "I;16B":
        im = Image.frombytes("I;16B", im.size, a.astype(">u2").tobytes())
    data = encode(im, "TIFF")
    assert Image.open(io.BytesIO(data)).mode == mode
    out = load_image(data)
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert all(120 <= c <= 135 for c in out.getpixel((1, 0)))


def test_48_and_64_bit_rgb_png():
    rows = b"".join(b"\x00" + struct.pack(">6H", 65535, 0, 32768, 0, 65535, 0) for _ in range(2))
    out = load_image(raw_png(2, 2, 16, 2, rows))  # Pillow reduces 16-bit RGB to 8-bit "RGB" on open
    assert close(out.getpixel((0, 0)), (255, 0, 128), tol=1) and out.getpixel((1, 0)) == (0, 255, 0)
    rows = b"".join(b"\x00" + struct.pack(">8H", 0, 0, 0, 32768, 0, 0, 0, 65535) for _ in range(2))
    out = load_image(raw_png(2, 2, 16, 6, rows))  # 16-bit RGBA arrives as 8-bit "RGBA"
    assert all(125 <= c <= 130 for c in out.getpixel((0, 0))) and out.getpixel((1, 0)) == (0, 0, 0)


def test_float_tiff():
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]] * 3, dtype=np.float32))
    assert unit.mode == "F"
    out = load_image(encode(unit, "TIFF"))
    assert [out.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]
    wide = Image.fromarray(np.array([[-10.0, 0.0, 30.0]] * 3, dtype=np.float32))
    out = load_image(encode(wide, "TIFF"))  # outside [0, 1]: min-max normalised
    assert [out.getpixel((x, 0))[0] for x in range(3)] == [0, 64, 255]


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP", "MPO"])
def test_animation_first_frame(fmt):
    frames = [Image.new("RGB", (16, 16), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    kw = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, **kw)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    assert close(load_image(data).getpixel((8, 8)), (255, 0, 0))


# --- limits --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(8000, 6000), (10_000, 10_000), (30_000, 30_000)])
def test_decompression_bomb_refused_without_decoding(size, monkeypatch):
    # 48 MP is under PIL's own limits (only our cap stops it); 100 MP trips PIL's warning, 900 MP its error.
    data = raw_png(*size, 1, 0, b"\x00" * 64)
    assert len(data) < 200

    def decode(self):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decode)
    with pytest.raises(ImageError, match="megapixel") as err:
        load_image(data)
    assert_one_sentence(err.value)


def test_pil_global_limit_untouched():
    before = Image.MAX_IMAGE_PIXELS
    load_image(encode(Image.new("RGB", (8, 8)), "PNG"))
    assert Image.MAX_IMAGE_PIXELS == before


def test_aspect_ratio():
    with pytest.raises(ImageError, match="50:1") as err:
        load_image(encode(Image.new("RGB", (1000, 10)), "PNG"))
    assert_one_sentence(err.value)
    with pytest.raises(ImageError, match="50:1"):
        load_image(encode(Image.new("RGB", (10, 510)), "PNG"))
    assert load_image(encode(Image.new("RGB", (500, 10)), "PNG")).size == (500, 10)
    tiny = load_image(encode(Image.new("RGB", (1, 1), (9, 8, 7)), "PNG"))
    assert tiny.size == (1, 1) and tiny.getpixel((0, 0)) == (9, 8, 7)


def test_too_many_bytes(monkeypatch, tmp_path):
    data = encode(Image.new("RGB", (64, 64)), "BMP")  # ~12 KB
    monkeypatch.setattr(images, "MAX_BYTES", 1000)
    stream = io.BytesIO(data)
    with pytest.raises(ImageError, match="limit") as err:
        load_image(stream)
    assert_one_sentence(err.value)
    assert stream.tell() == 1001  # stopped reading just past the limit
    path = tmp_path / "big.bmp"
    path.write_bytes(data)
    with pytest.raises(ImageError, match="limit"):
        load_image(path)
    with pytest.raises(ImageError, match="limit"):
        load_image(data)


# --- things that are not (usable) images ---------------------------------------------------


NOT_IMAGES = {
    "text": b"hello world",
    "pdf": b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n",
    "svg": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<rect width="10" height="10" fill="red"/></svg>',
    "eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto showpage\n%%EOF\n",
    "ico": encode(Image.new("RGB", (32, 32), (255, 0, 0)), "ICO"),
    "psd-like": b"8BPS" + b"\x00" * 60,
}


@pytest.mark.parametrize("name", NOT_IMAGES)
def test_not_an_image(name):
    with pytest.raises(ImageError, match="not an image this app can read") as err:
        load_image(NOT_IMAGES[name])
    assert_one_sentence(err.value)
    assert "JPEG" in str(err.value)


def test_empty():
    for source in (b"", io.BytesIO()):
        with pytest.raises(ImageError, match="empty") as err:
            load_image(source)
        assert_one_sentence(err.value)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated(fmt):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), fmt)
    with pytest.raises(ImageError, match="damaged or incomplete") as err:
        load_image(data[: len(data) // 2])
    assert_one_sentence(err.value)


def test_memory_error_becomes_image_error(monkeypatch):
    def boom(self):
        raise MemoryError

    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)
    with pytest.raises(ImageError, match="memory") as err:
        load_image(encode(Image.new("RGB", (8, 8)), "PNG"))
    assert_one_sentence(err.value)


# --- optional formats ----------------------------------------------------------------------


def test_heic_round_trip():
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    try:
        data = encode(Image.new("RGB", (32, 32), (30, 160, 220)), "HEIF", quality=95)
    except Exception as e:  # pillow-heif can be built without an encoder
        pytest.skip(f"pillow-heif cannot encode HEIF here: {e}")
    assert "heic" in images.SUPPORTED_TYPES
    out = load_image(data)
    assert out.mode == "RGB" and out.size == (32, 32)
    assert close(out.getpixel((16, 16)), (30, 160, 220), tol=12)


def test_avif_round_trip():
    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF support")
    data = encode(Image.new("RGB", (32, 32), (30, 160, 220)), "AVIF", quality=95)
    assert "avif" in images.SUPPORTED_TYPES
    assert close(load_image(data).getpixel((16, 16)), (30, 160, 220), tol=12)


def test_supported_types():
    types = images.SUPPORTED_TYPES
    assert {"jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff"} <= set(types)
    assert all(t == t.lower() and not t.startswith(".") for t in types)


# --- samples -------------------------------------------------------------------------------


def test_sample_images():
    samples = images.sample_images()
    assert len(samples) >= 6 and {"astronaut", "china"} <= set(samples)
    assert next(iter(samples)) == "chelsea (cat)"
    for name, loader in samples.items():
        im = loader()
        assert isinstance(im, Image.Image) and im.mode == "RGB", name
        assert min(im.size) >= 64, name
    assert images.sample_images()["astronaut"]().size == (512, 512)
