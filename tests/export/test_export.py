"""`cnnzoo.export`: one call, TF Serving layout, parity, model card, versions, failures that write nothing."""
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnzoo
from cnnzoo.export import ParityError, load_runner
from cnnzoo.export.saved_model import WARMUP_FILE, read_warmup_requests

SIZE = 32   # as in conftest.py (tests run with --import-mode=importlib: conftest is not importable)
ALL_FORMATS = ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8", "onnx")


def _keras_probabilities(model, images):
    return model.predict(images.astype("float32"), verbose=0, batch_size=64)


# -- 1. one call ---------------------------------------------------------------------------------------
def test_one_call_writes_every_format_into_a_version_directory(exported):
    out_dir = exported.directory.parent
    assert exported.version == 1 and exported.directory == out_dir / "1"
    assert list(exported.paths) == list(ALL_FORMATS)
    assert exported.paths["saved_model"] == exported.directory
    assert (exported.directory / "saved_model.pb").is_file()
    for fmt, path in exported.paths.items():
        assert path.exists() and path.parent in (out_dir, exported.directory), fmt
    assert [p.name for p in out_dir.iterdir()] == ["1"]          # no staging directory left behind
    assert json.loads((exported.directory / "model_card.json").read_text()) == exported.card
    assert exported.passed and "tflite_int8" in exported.summary()


def test_augmentation_is_stripped_from_every_graph(exported):
    stripped = exported.card["export"]["augmentation_layers_stripped"]
    assert {"augment", "random_translation", "random_rotation"} <= set(stripped)
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((exported.directory / "saved_model.pb").read_bytes())
    graph = proto.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node} | {node.op for f in graph.library.function for node in f.node_def}
    assert "ResizeBilinear" in ops and any(op.startswith("Decode") for op in ops)
    assert not [op for op in ops if "Random" in op], sorted(ops)
    import onnx

    onnx_ops = {node.op_type for node in onnx.load(str(exported.paths["onnx"])).graph.node}
    assert not [op for op in onnx_ops if "Random" in op]


# -- 2. SavedModel for TF Serving ----------------------------------------------------------------------
def test_serving_default_takes_any_size_uint8_and_returns_probabilities_ids_names(exported, trained, digits):
    model, _ = trained
    loaded = tf.saved_model.load(str(exported.directory))
    signature = loaded.signatures["serving_default"]
    images = digits["x_test"][:16]
    bigger = tf.cast(tf.round(tf.image.resize(images, (48, 40))), tf.uint8)
    outputs = signature(images=bigger)
    assert set(outputs) == {"probabilities", "class_ids", "class_names"}
    assert outputs["probabilities"].dtype == tf.float32 and outputs["probabilities"].shape == (16, 10)
    assert outputs["class_ids"].shape == (16, 3) and outputs["class_names"].dtype == tf.string  # top_k=3
    # Resizing happens inside, exactly as cnnzoo.data resized the training images (bilinear, rounded to uint8).
    from cnnzoo.data import images as data_images

    resized = data_images.resize(bigger, (SIZE, SIZE)).numpy().astype("float32")
    expected = _keras_probabilities(model, resized)
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-4)
    ids = outputs["class_ids"].numpy()
    assert np.array_equal(ids[:, 0], expected.argmax(-1))
    names = [[n.decode() for n in row] for row in outputs["class_names"].numpy()]
    assert names == [[f"digit_{i}" for i in row] for row in ids]
    labels = (exported.directory / "assets" / "labels.txt").read_text().splitlines()
    assert labels == [f"digit_{i}" for i in range(10)] == exported.card["class_names"]


def test_serving_bytes_decodes_png_bmp_gif_jpeg_like_the_uint8_signature(exported, digits):
    from PIL import Image
    import io

    loaded = tf.saved_model.load(str(exported.directory))
    images = digits["x_test"][:4]

    def encode(image, fmt, **options):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format=fmt, **options)
        return buffer.getvalue()

    from_pixels = loaded.signatures["serving_default"](images=images)
    for fmt in ("PNG", "BMP", "GIF"):                     # lossless for these gray digits
        from_bytes = loaded.signatures["serving_bytes"](
            image_bytes=tf.constant([encode(im, fmt) for im in images]))
        np.testing.assert_allclose(from_bytes["probabilities"], from_pixels["probabilities"], atol=1e-6,
                                   err_msg=fmt)
    jpegs = [encode(im, "JPEG", quality=95) for im in images]
    from_jpeg = loaded.signatures["serving_bytes"](image_bytes=tf.constant(jpegs))
    decoded = np.stack([np.asarray(Image.open(io.BytesIO(j)).convert("RGB")) for j in jpegs])
    expected = loaded.signatures["serving_default"](images=decoded)
    assert np.array_equal(from_jpeg["class_ids"].numpy()[:, 0], expected["class_ids"].numpy()[:, 0])


def test_warmup_requests_are_prediction_logs_that_run(exported):
    logs = read_warmup_requests(exported.directory / "assets.extra" / WARMUP_FILE)
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == \
        ["serving_default", "serving_bytes"]
    loaded = tf.saved_model.load(str(exported.directory))
    for log in logs:
        request = log.predict_log.request
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
        assert outputs["probabilities"].shape == (1, 10)


def test_saved_model_cli_lists_both_signatures(exported):
    cli = Path(sys.executable).parent / "saved_model_cli"
    result = subprocess.run([str(cli), "show", "--all", "--dir", str(exported.directory)],
                            capture_output=True, text=True, timeout=120, check=True)
    text = result.stdout
    default = text[text.index("signature_def['serving_default']"):]
    by_bytes = text[text.index("signature_def['serving_bytes']"):text.index("signature_def['serving_default']")]
    assert "inputs['images']" in default and "DT_UINT8" in default and "shape: (-1, -1, -1, 3)" in default
    assert "inputs['image_bytes']" in by_bytes and "DT_STRING" in by_bytes and "shape: (-1)" in by_bytes
    for block in (default, by_bytes):
        head = block.split("Method name")[0]
        for output in ("probabilities", "class_ids", "class_names"):
            assert f"outputs['{output}']" in head
        assert "shape: (-1, 10)" in head and "shape: (-1, 3)" in head


def test_next_version_and_never_overwrite(tiny_model, tmp_path):
    out_dir = tmp_path / "served"
    (out_dir / "3").mkdir(parents=True)
    (out_dir / "3" / "keep.txt").write_text("v3")
    report = cnnzoo.export(tiny_model, out_dir, formats="saved_model", latency_repeats=1)
    assert report.version == 4 and (out_dir / "4" / "saved_model.pb").exists()
    assert report.card["parity"]["synthetic_images"] is True      # no data given: synthetic parity batch
    with pytest.raises(FileExistsError, match="version=3"):
        cnnzoo.export(tiny_model, out_dir, formats="saved_model", version=3)
    assert [p.name for p in (out_dir / "3").iterdir()] == ["keep.txt"]


# -- 5. parity -----------------------------------------------------------------------------------------
def test_parity_figures_meet_the_thresholds(exported):
    parity = exported.parity
    assert set(parity) == set(ALL_FORMATS)
    for fmt in ("saved_model", "tflite_fp32", "onnx"):
        assert parity[fmt]["max_abs_diff"] <= 1e-4, fmt
    assert parity["tflite_fp16"]["max_abs_diff"] <= 1e-2
    for fmt in ("tflite_int8", "tflite_dynamic"):
        assert parity[fmt]["top1_agreement"] >= 0.97, fmt
        assert parity[fmt]["accuracy_drop_points"] <= 1.0, fmt
    for fmt, figures in parity.items():
        assert figures["passed"] and figures["images"] == 256, fmt
        assert figures["batch_max_diff"] <= 1e-4, fmt
        assert figures["reference_accuracy"] > 0.8, fmt           # labelled held-out data was used
    assert exported.card["parity"]["held_out_disjoint"] is True


class BatchCentering(keras.layers.Layer):
    """Subtracts the batch mean even at inference: outputs depend on the rest of the batch (like BN in
    training mode)."""

    def call(self, x):
        return x - keras.ops.mean(x, axis=0, keepdims=True)


def _batch_dependent_model():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="preprocessing")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = BatchCentering()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(x))


def test_failed_parity_raises_and_writes_nothing_warn_writes_and_records(digits, tmp_path):
    model = _batch_dependent_model()
    data = digits["x_train"][:40]
    out_dir = tmp_path / "bad"
    with pytest.raises(ParityError, match="batch composition"):
        cnnzoo.export(model, out_dir, formats=("saved_model", "onnx"), representative_data=data,
                      latency_repeats=1)
    assert list(out_dir.iterdir()) == []
    with pytest.warns(UserWarning, match="Parity failed"):
        report = cnnzoo.export(model, out_dir, formats=("saved_model",), representative_data=data,
                               parity="warn", latency_repeats=1)
    assert report.version == 1 and not report.passed
    card = json.loads((out_dir / "1" / "model_card.json").read_text())
    assert card["parity"]["passed"] is False
    assert card["parity"]["formats"]["saved_model"]["batch_max_diff"] > 1e-4
    assert "batch composition" in card["parity"]["formats"]["saved_model"]["failures"][0]


# -- 6. model card ---------------------------------------------------------------------------------------
def test_model_card_describes_model_versions_input_preprocessing_checks_sizes_latency(exported):
    card = exported.card
    assert card["name"] == "digits_resnet18" and card["version"] == 1
    assert card["versions"]["cnnzoo"] == cnnzoo.__version__
    assert card["versions"]["tensorflow"] == tf.__version__ and card["versions"]["keras"] == keras.__version__
    created = dt.datetime.fromisoformat(card["created"])
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 3600
    assert card["input"]["dtype"] == "uint8" and card["input"]["size"] == [SIZE, SIZE]
    prep = card["preprocessing"]
    assert prep["resize"] == {**prep["resize"], "size": [SIZE, SIZE], "interpolation": "bilinear",
                              "fit": "stretch"}
    # ResNet18 uses torch-style ImageNet normalization: mean/std in pixel units.
    np.testing.assert_allclose(prep["normalization"]["mean"], [123.675, 116.28, 103.53], atol=1e-3)
    np.testing.assert_allclose(prep["normalization"]["std"], [58.395, 57.12, 57.375], atol=1e-3)
    assert card["class_names"] == [f"digit_{i}" for i in range(10)]
    assert card["metrics"]["accuracy"] > 0.8
    for fmt in ALL_FORMATS:
        entry = card["formats"][fmt]
        on_disk = exported.sizes[fmt]
        assert entry["size_bytes"] == on_disk > 0
        if fmt != "saved_model":
            assert exported.paths[fmt].stat().st_size == on_disk
        assert entry["latency_batch1"]["p50_ms"] > 0
        assert card["parity"]["formats"][fmt]["max_abs_diff"] == exported.parity[fmt]["max_abs_diff"]
    assert card["latency_batch1_keras_reference"]["p50_ms"] > 0


# -- 9. round trips on real data ---------------------------------------------------------------------------
def test_every_format_reloads_and_classifies_held_out_digits(exported, trained, digits):
    model, _ = trained
    # The whole held-out split (397 images): on 160, one image is 0.6 points and "<= 1 point" allowed one flip.
    images, labels = digits["x_test"], digits["y_test"]
    reference = _keras_probabilities(model, images)
    reference_accuracy = np.mean(reference.argmax(-1) == labels)
    assert reference_accuracy > 0.8
    tolerance = {"saved_model": 1e-4, "tflite_fp32": 1e-4, "onnx": 1e-4, "tflite_fp16": 1e-2}
    for fmt, path in exported.paths.items():
        runner = load_runner(path)
        assert runner.class_names == [f"digit_{i}" for i in range(10)], fmt
        probabilities = runner.predict(images)
        assert probabilities.shape == reference.shape and probabilities.dtype == np.float32
        if fmt in tolerance:
            assert np.abs(probabilities - reference).max() <= tolerance[fmt], fmt
        agreement = np.mean(probabilities.argmax(-1) == reference.argmax(-1))
        assert agreement >= 0.97, (fmt, agreement)
        assert np.mean(probabilities.argmax(-1) == labels) >= reference_accuracy - 0.01, fmt
        # The same image alone and inside a batch of 8 others.
        batch = images[8:16]
        alone = runner.predict(batch[3:4])
        np.testing.assert_allclose(runner.predict(batch)[3:4], alone, atol=1e-4, err_msg=fmt)


def test_int8_file_is_at_most_030_of_fp32(exported):
    int8 = exported.paths["tflite_int8"].stat().st_size
    fp32 = exported.paths["tflite_fp32"].stat().st_size
    assert int8 <= 0.3 * fp32, (int8, fp32)
    assert exported.sizes["tflite_fp16"] <= 0.55 * fp32


# -- argument checks -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, text", [
    ({"formats": ("saved_model", "tflite_int9")}, ValueError, "formats="),
    ({"formats": ()}, ValueError, "formats="),
    ({"parity": "maybe"}, ValueError, "parity='maybe'"),
    ({"top_k": 0}, ValueError, "top_k=0"),
    ({"opset": 3}, ValueError, "opset=3"),
    ({"class_names": ["a", "b"]}, ValueError, "len(class_names)=2"),
    ({"class_names": ["a", "a", "b", "c"]}, ValueError, "unique"),
    ({"formats": ("tflite_int8",)}, ValueError, "representative_data=None"),
    ({"representative_data": "no-such-folder/"}, FileNotFoundError, "representative_data="),
    ({"representative_data": 3.5}, TypeError, "representative_data="),
    ({"fit": "squash"}, ValueError, "fit='squash'"),
])
def test_bad_arguments_name_the_argument(tiny_model, tmp_path, kwargs, error, text):
    with pytest.raises(error, match="Received") as info:
        cnnzoo.export(tiny_model, tmp_path / "out", **{"formats": "saved_model", **kwargs})
    assert text in str(info.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_model_argument_is_checked(tmp_path):
    with pytest.raises(TypeError, match="Received: model="):
        cnnzoo.export("resnet18", tmp_path)


def test_export_is_callable_and_its_modules_stay_importable():
    assert callable(cnnzoo.export)
    assert cnnzoo.export.export is cnnzoo.export.exporter.export
    import cnnzoo.export.tflite as tflite

    assert cnnzoo.export.tflite is tflite and "tflite_int8" in tflite.VARIANTS


def test_keras_format_and_crop_fit(tiny_model, digits, tmp_path):
    """The optional .keras file reloads through load_runner; fit="crop" resizes like cnnzoo.data's crop."""
    from cnnzoo.data.images import resize

    report = cnnzoo.export(tiny_model, tmp_path, formats=("saved_model", "keras"), fit="crop",
                           class_names=list("abcd"), representative_data=digits["x_train"][:40],
                           latency_repeats=1)
    keras_runner = load_runner(report.paths["keras"])
    assert keras_runner.format == "keras" and keras_runner.class_names == list("abcd")
    wide = np.concatenate([digits["x_test"][:3], digits["x_test"][3:6]], axis=2)          # 32 x 64
    expected = _keras_probabilities(tiny_model, resize(tf.constant(wide), (SIZE, SIZE), "crop").numpy())
    for fmt in ("saved_model", "keras"):
        np.testing.assert_allclose(load_runner(report.paths[fmt]).predict(wide), expected, atol=1e-5)
    assert report.card["preprocessing"]["resize"]["fit"] == "crop"


def test_logits_get_a_softmax_and_given_parity_data_is_used(make_small_model, digits, tmp_path):
    model = make_small_model(num_classes=10, activation=None)
    held_out = (digits["x_test"][:50], digits["y_test"][:50])
    report = cnnzoo.export(model, tmp_path, formats=("saved_model", "tflite_fp32"),
                           representative_data=digits["x_train"][:40], parity_data=held_out, latency_repeats=1)
    assert report.card["export"]["softmax_added_to_logits"] is True
    assert report.card["parity"]["images"] == 50 and report.card["parity"]["held_out_disjoint"] is True
    assert report.parity["tflite_fp32"]["reference_accuracy"] is not None         # labels were used
    expected = tf.nn.softmax(model.predict(held_out[0].astype("float32"), verbose=0)).numpy()
    for fmt, path in report.paths.items():
        np.testing.assert_allclose(load_runner(path).predict(held_out[0]), expected, atol=1e-5, err_msg=fmt)


def test_serving_bytes_decodes_a_large_jpeg_like_the_training_pipeline(exported, tmp_path):
    """A photo-sized JPEG goes through the same DCT-downscaled decode and resize in serving as in training."""
    import io

    import tensorflow as tf
    from PIL import Image

    from cnnzoo.data import images as data_images

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    photo = np.asarray(Image.fromarray(base).resize((640, 480), Image.BILINEAR))
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="JPEG", quality=90)
    (tmp_path / "photo.jpg").write_bytes(buffer.getvalue())
    size = tuple(exported.card["input"]["size"])
    scale = data_images.jpeg_scale(480, max(size))
    assert scale == 8  # the case that exercises the downscaled decode
    trained_view = data_images.load(tf.constant(str(tmp_path / "photo.jpg")), size, scale=tf.constant(scale))
    loaded = tf.saved_model.load(str(exported.directory))
    served = loaded.signatures["serving_bytes"](image_bytes=tf.constant([buffer.getvalue()]))["probabilities"]
    direct = loaded.signatures["serving_default"](images=trained_view[None])["probabilities"]
    np.testing.assert_allclose(served.numpy(), direct.numpy(), atol=1e-6)
