"""The hostile files of test_hostile.py, made at test time: no attack file is ever committed.

KINDS is one table of every hostile input, each a file name, a maker of its bytes and what must
happen: refused (with a word the one-sentence refusal must contain) or handled (a check of the
picture that comes out). The makers reuse the builders of the per-module tests, so that each
tricky format is written in one place only.
"""
from __future__ import annotations

import io
import stat
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save as save_safetensors
from test_checkpoints import _evil_files
from test_datasets import _png, _zip
from test_exported import declared_tensor, external_escape, pt2_with_pickle, small_pt2, tiny_onnx
from test_images import close, encode, raw_png

from vislib import datasets, images
from vislib.models import family

ARCH = "squeezenet1_1"  # the smallest zoo architecture: its checkpoints are cheap to make and to load
MARKER = "pickle-ran"   # the file a code-running pickle creates in the folder if it is ever unpickled


@dataclass(frozen=True)
class Kind:
    name: str                              # test id and ledger row
    family: str                            # "image", "zip", "checkpoint" or "network": which doors it goes through
    filename: str                          # with an extension the uploaders allow: they filter by name
    make: Callable[[Path], bytes]          # folder -> the file's bytes (the folder holds MARKER for pickles,
                                           # and any file the file points at)
    refusal: str | None = None             # a word of the refusal sentence; None: handled
    check: Callable[[Image.Image], bool] | None = None  # for a handled picture


def _noise_jpeg() -> bytes:
    return encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)), "JPEG")


def _many_frames(pairs: int) -> bytes:
    """A GIF of 3 + 2 * pairs frames, red first: one red/blue pair is cut out of a small GIF and repeated."""
    red = Image.new("P", (2, 2), 0)
    red.putpalette([255, 0, 0, 0, 0, 255])
    blue = red.copy()
    blue.paste(1, (0, 0, 2, 2))
    short = encode(red, "GIF", save_all=True, append_images=[blue, red], duration=10)
    longer = encode(red, "GIF", save_all=True, append_images=[blue, red] * 2, duration=10)
    pair = longer[len(short) - 1:-1]  # the bytes one more blue/red pair adds, before the trailer ";"
    return short[:-1] + pair * pairs + b";"


def _edit_directory(data: bytes, offset: int, value: int, only: bytes = b"") -> bytes:
    """The zip with a 4-byte field at `offset` of its central directory set to `value`, in every entry
    whose name starts with `only`: the directory is what zip readers trust, and what an attacker edits.
    """
    data = bytearray(data)
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + name_length].startswith(only):
            struct.pack_into("<I", data, at + offset, value)
        at = data.find(b"PK\x01\x02", at + 46)
    return bytes(data)


UNCOMPRESSED_SIZE, EXTERNAL_ATTRIBUTES = 24, 38  # offsets in a central directory entry
SYMLINK = (stat.S_IFLNK | 0o777) << 16           # a Unix symlink's mode, in the high half of the attributes


def _state(**changes) -> dict[str, torch.Tensor]:
    """ARCH's state_dict with 10 classes, with `changes` applied (a tensor, or None to drop the key)."""
    torch.manual_seed(0)
    state = family(ARCH).build(10).state_dict()
    for key, value in changes.items():
        if value is None:
            del state[key]
        else:
            state[key] = value
    return state


def _torch_save(state) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _evil(kind: str) -> Callable[[Path], bytes]:
    return lambda folder: _evil_files(folder / MARKER)[kind]


def _close(colour, tol=10) -> Callable[[Image.Image], bool]:
    return lambda im: close(im.getpixel((0, 0)), colour, tol)


KINDS = [
    # ---- pictures: the sidebar upload, `predict IMAGE...`, load_image
    Kind("text named .jpg", "image", "text.jpg", lambda _: b"just some text, not a picture", "not an image"),
    Kind("truncated JPEG", "image", "truncated.jpg", lambda _: _noise_jpeg()[:1500], "damaged or incomplete"),
    Kind("decompression bomb PNG (900 MP)", "image", "bomb.png",
         lambda _: raw_png(30_000, 30_000, 1, 0, b"\x00" * 64), "megapixel"),
    Kind("extreme aspect ratio (10,000:1)", "image", "strip.png",
         lambda _: raw_png(100_000, 10, 1, 0, b"\x00" * 64), "too long and thin"),
    Kind("zero-size file", "image", "empty.png", lambda _: b"", "empty"),
    Kind("over the byte cap", "image", "huge.jpg", lambda _: b"\xff\xd8\xff" + bytes(images.MAX_BYTES), "limit"),
    Kind("SVG named .png", "image", "drawing.png", lambda _: b'<svg xmlns="http://www.w3.org/2000/svg" '
         b'width="10" height="10"><script>alert(1)</script></svg>', "not an image"),
    Kind("HTML named .jpg", "image", "page.jpg",
         lambda _: b"<!DOCTYPE html><html><script>alert(1)</script></html>", "not an image"),
    Kind("EPS named .jpg (Ghostscript)", "image", "poster.jpg",
         lambda _: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "not an image"),
    Kind("animated GIF, 40,003 frames", "image", "animated.gif", lambda _: _many_frames(20_000),
         check=_close((255, 0, 0))),
    Kind("16-bit greyscale PNG", "image", "deep.png",
         lambda _: raw_png(4, 4, 16, 0, (b"\x00" + struct.pack(">4H", *[32768] * 4)) * 4),
         check=_close((128, 128, 128), 3)),
    Kind("CMYK JPEG", "image", "cmyk.jpg", lambda _: encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG"),
         check=_close((255, 0, 0))),
    # ---- zips of pictures: the collection upload, `patches --collection`, open_collection
    Kind("zip: ../ traversal", "zip", "traversal.zip", lambda _: _zip({"ok.png": _png(), "../../evil.png": _png()}),
         "path outside its folder"),
    Kind("zip: absolute path", "zip", "absolute.zip",
         lambda _: _zip({"ok.png": _png(), "/etc/cron.d/evil.png": _png()}),
         "path outside its folder"),
    Kind("zip: ..\\ traversal", "zip", "backslash.zip", lambda _: _zip({"ok.png": _png(), "..\\evil.png": _png()}),
         "path outside its folder"),
    Kind("zip: traversal with a newline in the name", "zip", "newline.zip",
         lambda _: _zip({"ok.png": _png(), "../evil\nname.png": _png()}), "path outside its folder"),
    Kind("zip: symlink entry", "zip", "link.zip", lambda _: _edit_directory(
         _zip({"ok.png": _png(), "link.png": b"/etc/passwd"}), EXTERNAL_ATTRIBUTES, SYMLINK, only=b"link"), "link"),
    Kind("zip bomb (1,000:1, a newline in its name)", "zip", "bomb.zip", lambda _: _zip(
         {"ok.png": _png(), "bomb\n.bmp": bytes(30 * 2**20)}, compression=zipfile.ZIP_DEFLATED), "zip bomb"),
    Kind("zip bomb lying about its size (8 GB)", "zip", "lying.zip", lambda _: _edit_directory(  # 0xFFFFFFFF: zip64
         _zip({"a.png": _png(), "b.png": _png()}), UNCOMPRESSED_SIZE, 0xFFFFFFFE), "unpack to more than"),
    Kind("zip: too many files", "zip", "many.zip",
         lambda _: _zip({f"{i}.png": b"" for i in range(datasets.MAX_FILES + 1)}), "limit"),
    Kind("nested zip", "zip", "nested.zip", lambda _: _zip({"inner.zip": _zip({"a.png": _png()})}), "no pictures"),
    Kind("not a zip, named .zip", "zip", "fake.zip", lambda _: b"this is not a zip", "not a zip file"),
    Kind("zero-size zip", "zip", "empty.zip", lambda _: b"", "not a zip file"),
    # ---- checkpoints: the sidebar form, `predict --model FILE --arch`, load_model(FILE, arch=...)
    Kind("pickle that runs code (torch.save)", "checkpoint", "evil.pt", _evil("torch.save"), "could run code"),
    Kind("pickle that runs code (exec)", "checkpoint", "exec.pth", _evil("exec"), "could run code"),
    Kind("pickle that runs code (legacy format)", "checkpoint", "legacy.bin", _evil("legacy torch.save"),
         "could run code"),
    Kind("truncated checkpoint", "checkpoint", "truncated.pt", lambda _: _torch_save(_state())[:4000],
         "not a readable"),
    Kind("zero-size checkpoint", "checkpoint", "empty.pt", lambda _: b"", "not a readable"),
    Kind("wrong architecture shapes", "checkpoint", "shapes.pt",
         lambda _: _torch_save(_state(**{"features.0.weight": torch.zeros(64, 3, 5, 5)})), "does not fit"),
    Kind("tensor name with a newline", "checkpoint", "names.pt",
         lambda _: _torch_save(_state(**{"features.0.bias": None, "evil\nname": torch.zeros(1)})), "does not fit"),
    Kind("tensor names that are not text", "checkpoint", "numbers.pt",
         lambda _: _torch_save(dict(enumerate(_state().values()))), "not a state_dict"),
    Kind("safetensors header of 1 TB", "checkpoint", "huge.safetensors",
         lambda _: struct.pack("<Q", 2**40) + b"{}", "not a readable .safetensors"),
    Kind("safetensors offsets past the end", "checkpoint", "short.safetensors",
         lambda _: save_safetensors({"w": torch.ones(1000)})[:200], "not a readable .safetensors"),
    # ---- whole-network files: the sidebar's form, `predict --model FILE`, load_model(FILE)
    Kind("truncated .pt2", "network", "truncated.pt2", lambda _: small_pt2()[:3000], "not a readable .pt2"),
    Kind(".pt2 with a pickle that runs code", "network", "evil.pt2", lambda folder: pt2_with_pickle(folder / MARKER),
         "could run code"),
    Kind("ONNX declaring a 10-billion-number tensor", "network", "huge.onnx",
         lambda _: tiny_onnx(initializers=[declared_tensor("huge", [100_000, 100_000])]),
         "numbers one tensor may have"),
    Kind("ONNX with external data in ../", "network", "escape.onnx", lambda folder: external_escape(folder, ".."),
         "outside"),
    Kind("ONNX with external data through a symlink", "network", "link.onnx",
         lambda folder: external_escape(folder, "symlink"), "outside"),
]
