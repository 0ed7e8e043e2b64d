"""Image-file fixtures written with Pillow: good images in every format and mode, and the bad ones."""
from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps


def photo(height: int = 40, width: int = 48, seed: int = 0) -> np.ndarray:
    """A smooth colourful uint8 RGB image (JPEG-friendly, every hue present)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    phase = rng.uniform(0, 2 * np.pi, 3)
    channels = [127.5 + 127.5 * np.sin(2 * np.pi * (x * (1 + c) + y * (2 - c)) + phase[c]) for c in range(3)]
    return np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)


def solid(value: int, size=(16, 16)) -> np.ndarray:
    return np.full((*size, 3), value, np.uint8)


def write_png16(path: str, array: np.ndarray) -> None:
    """A 16-bit PNG (gray [H, W] or RGB [H, W, 3]) written by hand: Pillow writes only 16-bit grayscale."""
    if array.ndim == 2:
        array = array[..., None]
    h, w, c = array.shape
    colour_type = {1: 0, 3: 2}[c]
    raw = b"".join(b"\x00" + array[row].astype(">u2").tobytes() for row in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_rotated_jpeg(path: str, array: np.ndarray, orientation: int = 6) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array).save(path, quality=95, exif=exif.tobytes())


GOOD_FORMATS = ("jpg", "jpeg", "png", "bmp", "gif", "webp")


def write_good(folder: str, count: int, seed: int = 0) -> list[str]:
    """`count` good images cycling through every supported extension."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(count):
        ext = GOOD_FORMATS[i % len(GOOD_FORMATS)]
        path = os.path.join(folder, f"good_{i:03d}.{ext}")
        image = Image.fromarray(photo(seed=seed * 100 + i))
        if ext == "webp":
            image.save(path, lossless=True)
        else:
            image.save(path)
        paths.append(path)
    return paths


def write_bad(folder: str) -> dict[str, str]:
    """The unreadable files the issue lists; returns {file name: a word its skip reason must contain}."""
    os.makedirs(folder, exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(photo(seed=7)).save(buffer, format="JPEG")
    data = buffer.getvalue()
    with open(os.path.join(folder, "truncated.jpg"), "wb") as f:
        f.write(data[: len(data) // 2])
    buffer = io.BytesIO()
    Image.fromarray(photo(seed=8)).save(buffer, format="PNG")
    with open(os.path.join(folder, "truncated.png"), "wb") as f:
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    open(os.path.join(folder, "zero.jpg"), "wb").close()
    with open(os.path.join(folder, "text.jpg"), "w") as f:
        f.write("this is a text file with an image extension\n")
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("labels were checked by hand\n")
    return {"truncated.jpg": "truncated", "truncated.png": "truncated", "zero.jpg": "empty",
            "text.jpg": "not an image", "notes.txt": "extension"}


def write_convertible(folder: str) -> dict[str, np.ndarray]:
    """Images in awkward formats and modes; returns {file name: the RGB uint8 array a correct decoder gives}."""
    os.makedirs(folder, exist_ok=True)
    rgb = photo(24, 32, seed=3)
    expected = {}
    gray = Image.fromarray(rgb).convert("L")
    gray.save(os.path.join(folder, "gray.png"))
    expected["gray.png"] = np.repeat(np.asarray(gray)[..., None], 3, -1)
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 128, np.uint8)], -1)
    Image.fromarray(rgba).save(os.path.join(folder, "rgba.png"))
    expected["rgba.png"] = rgb
    palette = Image.fromarray(rgb).quantize(colors=64)
    palette.save(os.path.join(folder, "palette.png"))
    palette.save(os.path.join(folder, "palette.bmp"))   # TF's BMP decoder reads palette indices as pixels
    expected["palette.png"] = expected["palette.bmp"] = np.asarray(palette.convert("RGB"))
    Image.fromarray(rgb).convert("LA").save(os.path.join(folder, "gray_alpha.png"))
    expected["gray_alpha.png"] = np.repeat(np.asarray(gray)[..., None], 3, -1)
    ramp = (np.arange(24 * 32, dtype=np.uint32).reshape(24, 32) * 85).astype(np.uint16)   # 0 .. 65195
    write_png16(os.path.join(folder, "gray16.png"), ramp)
    expected["gray16.png"] = np.repeat((ramp >> 8).astype(np.uint8)[..., None], 3, -1)
    rgb16 = rgb.astype(np.uint16) * 257
    write_png16(os.path.join(folder, "rgb16.png"), rgb16)
    expected["rgb16.png"] = rgb
    cmyk = Image.fromarray(rgb).convert("CMYK")
    cmyk.save(os.path.join(folder, "cmyk.jpg"), quality=95)
    expected["cmyk.jpg"] = np.asarray(Image.open(os.path.join(folder, "cmyk.jpg")).convert("RGB"))
    shown = photo(24, 32, seed=4)    # stored portrait 32x24 with "rotate 90 clockwise" in EXIF: shows 24x32
    path = os.path.join(folder, "exif_rotated.jpg")
    write_rotated_jpeg(path, np.rot90(shown, k=1).copy(), orientation=6)
    expected["exif_rotated.jpg"] = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert expected["exif_rotated.jpg"].shape == shown.shape
    frames = [Image.fromarray(solid(v, (24, 32))) for v in (30, 220)]
    frames[0].save(os.path.join(folder, "animated.gif"), save_all=True, append_images=frames[1:])
    expected["animated.gif"] = solid(30, (24, 32))
    return expected


@pytest.fixture
def make_tree(tmp_path):
    """make_tree({"cat": 6, "dog": 4}) -> root folder with that many good images per class."""
    def make(counts: dict[str, int], root=None, seed: int = 0) -> str:
        root = str(root or tmp_path / "images")
        for k, (name, count) in enumerate(sorted(counts.items())):
            write_good(os.path.join(root, name), count, seed=seed + k)
        return root
    return make


@pytest.fixture
def indexed_tree(tmp_path):
    """Classes of solid-colour PNGs whose gray level identifies the file: value = 10 * class + index + 1."""
    def make(counts: dict[str, int], root=None) -> str:
        root = str(root or tmp_path / "indexed")
        for k, (name, count) in enumerate(sorted(counts.items())):
            os.makedirs(os.path.join(root, name), exist_ok=True)
            for i in range(count):
                Image.fromarray(solid(identity(k, i))).save(os.path.join(root, name, f"{i:03d}.png"))
        return root
    return make


def identity(label: int, index: int) -> int:
    return 40 * label + index + 1
