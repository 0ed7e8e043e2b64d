"""The one decode rule (`cnnzoo.data.images.decode_file`, TF ops): pixel-exact against Pillow where decoding is
lossless, Pillow's EXIF orientation mapping, and the same uint8 pixels through `from_directory` and `read_images`
(what `cnnzoo predict` and validation read files with) as through the rule itself (what the exported graph runs)."""
from __future__ import annotations

import io
import os
import struct

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from cnnzoo.data import from_directory
from cnnzoo.data import images as data_images

from .conftest import photo

SIZE = 32


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def tiff_orientation(value: int, little: bool) -> bytes:
    """An "Exif" APP1 payload holding only IFD0 Orientation=value, in either byte order."""
    order = "<" if little else ">"
    tiff = (b"II*\x00" if little else b"MM\x00*") + struct.pack(order + "I", 8)
    tiff += struct.pack(order + "H", 1) + struct.pack(order + "HHIHH", 0x0112, 3, 1, value, 0) + b"\x00" * 4
    return b"Exif\x00\x00" + tiff


def rle8_bmp() -> bytes:
    """A 4x2 RLE8-compressed BMP (Pillow reads it; the decode rule refuses it)."""
    pixels = bytes([4, 1, 0, 0, 2, 0, 2, 1, 0, 0, 0, 1])        # bottom row: 4 x colour 1; top: 2 x 0, 2 x 1
    palette = bytes([30, 20, 10, 0, 50, 100, 200, 0])           # BGRX
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, 4, 2, 1, 8, 1, len(pixels), 2835, 2835, 2, 0)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels


def rule(contents: bytes, target=None) -> np.ndarray:
    return data_images.decode_file(tf.constant(contents), target).numpy()


@pytest.mark.parametrize("little", [False, True])
def test_exif_orientation_is_applied_as_pillow_applies_it(little):
    stored = photo(24, 33, seed=3)                 # odd width: a transposition is visible in the shape
    for orientation in range(1, 9):
        exif = tiff_orientation(orientation, little)
        contents = encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif)
        assert int(data_images.exif_orientation(tf.constant(contents))) == orientation
        plain = tf.io.decode_jpeg(contents, channels=3, dct_method=data_images.JPEG_DCT_METHOD).numpy()
        carrier = Image.fromarray(plain)
        carrier.info["exif"] = exif                 # Pillow's own mapping, applied to the same decoded pixels
        np.testing.assert_array_equal(rule(contents), np.asarray(ImageOps.exif_transpose(carrier)),
                                      err_msg=f"orientation {orientation}")
    assert int(data_images.exif_orientation(tf.constant(encode(Image.fromarray(stored), "JPEG")))) == 1


def test_lossless_formats_decode_pixel_exactly_as_pillow_does():
    rgb = photo(24, 33, seed=4)
    cases = {f"bmp_{colors}_colours": encode(Image.fromarray(rgb).quantize(colors=colors), "BMP")
             for colors in (2, 16, 256)}                           # 1, 4 and 8 bits per pixel
    cases["bmp_gray"] = encode(Image.fromarray(rgb).convert("L"), "BMP")
    cases["bmp_1bit"] = encode(Image.fromarray(rgb).convert("1"), "BMP")
    cases["png_palette"] = encode(Image.fromarray(rgb).quantize(colors=16), "PNG")
    cases["png_gray"] = encode(Image.fromarray(rgb).convert("L"), "PNG")
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 90, np.uint8)], -1)
    cases["png_rgba"] = encode(Image.fromarray(rgba), "PNG")      # alpha dropped, not blended
    for name, contents in cases.items():
        expected = np.asarray(Image.open(io.BytesIO(contents)).convert("RGB"))
        np.testing.assert_array_equal(rule(contents), expected, err_msg=name)
    # TF's own BMP decoder returns the palette indices of the 16-colour BMP as gray pixels: the rule is needed.
    tf_bmp = tf.io.decode_image(cases["bmp_16_colours"], channels=3).numpy()
    assert not np.array_equal(tf_bmp, rule(cases["bmp_16_colours"]))


def test_what_the_rule_cannot_decode_is_refused_in_graph_and_read_by_pillow_in_training(tmp_path):
    contents = rle8_bmp()
    assert np.asarray(Image.open(io.BytesIO(contents)).convert("RGB"))[1, 0].tolist() == [200, 100, 50]
    with pytest.raises(tf.errors.InvalidArgumentError, match="RLE"):
        rule(contents)
    path = tmp_path / "rle.bmp"
    path.write_bytes(contents)
    kept, skipped = data_images.scan_files([str(path)], [0])
    assert skipped == [] and kept[0].source != str(path)           # a Pillow copy: trained on, never served


def test_jpeg_scale_is_one_rule_for_ints_and_tensors():
    for side in (0, 31, 32, 63, 64, 255, 256, 257, 480, 4000):
        for target in (None, 0, 32, 224):
            expected = data_images.jpeg_scale(side, target)
            assert expected in (1, *data_images.JPEG_DCT_RATIOS)
            assert int(data_images.jpeg_scale(tf.constant(side), target)) == expected, (side, target)
    assert data_images.jpeg_scale(480, 32) == 8 and data_images.jpeg_scale(480, 224) == 2


def write_rule_cases(folder) -> list[str]:
    """The files of the train/serve skew report and the other kinds the rule treats specially, one each."""
    os.makedirs(folder, exist_ok=True)
    shown = photo(40, 56, seed=5)
    files = {
        "exif_rotated.jpg": encode(Image.fromarray(np.rot90(shown).copy()), "JPEG", quality=92,
                                   exif=tiff_orientation(6, False)),
        "palette16.bmp": encode(Image.fromarray(shown).quantize(colors=16), "BMP"),
        "palette.png": encode(Image.fromarray(shown).quantize(colors=32), "PNG"),
        "gray.png": encode(Image.fromarray(shown).convert("L"), "PNG"),
        "rgba.png": encode(Image.fromarray(np.concatenate([shown, np.full((40, 56, 1), 77, np.uint8)], -1)),
                           "PNG"),
        "large.jpg": encode(Image.fromarray(photo(300, 420, seed=6)), "JPEG", quality=90),   # decoded at 1/8
        "cmyk.jpg": encode(Image.fromarray(shown).convert("CMYK"), "JPEG", quality=95),
        "plain.jpg": encode(Image.fromarray(shown), "JPEG", quality=90),
    }
    paths = []
    for name, contents in sorted(files.items()):
        paths.append(os.path.join(folder, name))
        with open(paths[-1], "wb") as f:
            f.write(contents)
    return paths


def test_training_reading_and_the_rule_give_the_same_pixels(tmp_path):
    paths = write_rule_cases(tmp_path / "ds" / "a")
    write_rule_cases(tmp_path / "ds" / "b")
    assert data_images.jpeg_scale(300, SIZE) == 8
    data = from_directory(tmp_path / "ds", image_size=SIZE, batch_size=64, validation_split=0.0, shuffle=False)
    assert data.skipped == []
    trained = next(iter(data.train))[0].numpy()[:len(paths)]
    read, read_paths, skipped = data_images.read_images(paths, (SIZE, SIZE))
    assert read_paths == paths and skipped == []
    for path, train_pixels, read_pixels in zip(paths, trained, read):
        with open(path, "rb") as f:
            contents = f.read()
        graph = data_images.resize(data_images.decode_file(tf.constant(contents), SIZE), (SIZE, SIZE)).numpy()
        np.testing.assert_array_equal(train_pixels, graph, err_msg=path)
        np.testing.assert_array_equal(read_pixels, graph, err_msg=path)
    # The rotation is really applied: the rotated file shows the same picture as the plain one.
    names = [os.path.basename(p) for p in paths]
    rotated, plain = trained[names.index("exif_rotated.jpg")], trained[names.index("plain.jpg")]
    assert np.abs(rotated.astype(float) - plain).mean() < 3
