"""No train/serve skew: the same files give the same pixels and probabilities trained (`from_directory` + model),
served (the SavedModel's `serving_bytes`) and predicted (`cnnzoo predict` on the SavedModel, .tflite and .onnx),
because every path decodes with the one decode rule (cnnzoo.data.images.decode_file)."""
import io
import json
import os

import numpy as np
import tensorflow as tf
from PIL import Image

import cnnzoo
from cnnzoo.cli.main import main
from cnnzoo.data import from_directory
from cnnzoo.export.runners import load_runner
from cnnzoo.export.serving import RawImageModel

SIZE = 32   # as in conftest.py (tests run with --import-mode=importlib: conftest is not importable)
FORMATS = ("saved_model", "tflite_fp32", "onnx")


def photo(height, width, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    phase = rng.uniform(0, 2 * np.pi, 3)
    return np.clip(np.stack([127.5 + 127.5 * np.sin(2 * np.pi * (x * (1 + c) + y * (2 - c)) + phase[c])
                             for c in range(3)], -1), 0, 255).astype(np.uint8)


def write_files(folder) -> list[str]:
    """An EXIF Orientation=6 JPEG, a 16-colour palette BMP, a palette PNG, gray and RGBA PNGs, a large JPEG (decoded
    DCT-downscaled), a CMYK JPEG."""
    os.makedirs(folder, exist_ok=True)
    shown = photo(40, 56, seed=1)
    exif = Image.Exif()
    exif[0x0112] = 6
    images = {
        "exif_rotated.jpg": (Image.fromarray(np.rot90(shown).copy()), "JPEG", {"quality": 92, "exif": exif.tobytes()}),
        "palette16.bmp": (Image.fromarray(shown).quantize(colors=16), "BMP", {}),
        "palette.png": (Image.fromarray(shown).quantize(colors=32), "PNG", {}),
        "gray.png": (Image.fromarray(shown).convert("L"), "PNG", {}),
        "rgba.png": (Image.fromarray(np.concatenate([shown, np.full((40, 56, 1), 77, np.uint8)], -1)), "PNG", {}),
        "large.jpg": (Image.fromarray(photo(300, 420, seed=2)), "JPEG", {"quality": 90}),
        "cmyk.jpg": (Image.fromarray(shown).convert("CMYK"), "JPEG", {"quality": 95}),
    }
    paths = []
    for name, (image, fmt, options) in sorted(images.items()):
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **options)
        paths.append(os.path.join(folder, name))
        with open(paths[-1], "wb") as f:
            f.write(buffer.getvalue())
    return paths


def test_the_same_file_gives_the_same_probabilities_trained_served_and_predicted(tiny_model, tmp_path, capsys):
    paths = write_files(tmp_path / "ds" / "a")
    write_files(tmp_path / "ds" / "b")
    data = from_directory(tmp_path / "ds", image_size=SIZE, batch_size=64, validation_split=0.0, shuffle=False)
    assert data.skipped == []
    trained = next(iter(data.train))[0].numpy()[:len(paths)]
    expected = tiny_model(trained.astype("float32"), training=False).numpy()
    names = list("abcd")

    # The exported graph's decode is the training pipeline's, pixel for pixel.
    encoded = [open(path, "rb").read() for path in paths]
    graph = RawImageModel(tiny_model, input_size=(SIZE, SIZE), class_names=names).decode(tf.constant(encoded))
    for path, want, got in zip(paths, trained, graph.numpy()):
        np.testing.assert_array_equal(got, want, err_msg=os.path.basename(path))

    report = cnnzoo.export(tiny_model, tmp_path / "out", formats=FORMATS, class_names=names, latency_repeats=1)
    served = load_runner(report.paths["saved_model"]).predict_bytes(encoded)["probabilities"]
    np.testing.assert_allclose(served, expected, atol=1e-5)
    for fmt in FORMATS:
        capsys.readouterr()
        assert main(["predict", *paths, "--model", str(report.paths[fmt]), "--json", "--top-k", "4"]) == 0
        rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        predicted = np.array([[{t["class"]: t["probability"] for t in row["top"]}[c] for c in names] for row in rows])
        np.testing.assert_allclose(predicted, expected, atol=1e-5, err_msg=fmt)
