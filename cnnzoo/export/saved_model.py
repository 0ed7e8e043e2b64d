"""SavedModel in TF Serving layout: raw-image and encoded-bytes signatures, labels, warmup requests.

Keras 3's `model.export()` gives one float signature with an input called `keras_tensor`; TF Serving users then
resize and normalize in client code, and base64 JPEG requests have no signature to go to. This writer adds both:

- `serving_default`: `images` uint8 [batch, height, width, 3], any height/width -> `probabilities`,
  `class_ids`, `class_names` (top-k);
- `serving_bytes`: `image_bytes` string [batch] (JPEG/PNG/GIF/BMP, what TF Serving's REST API decodes from
  `{"b64": ...}`) -> the same outputs.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from cnnzoo.export.runners import LABELS_FILE, METADATA_FILE
from cnnzoo.export.serving import RawImageModel

WARMUP_FILE = "tf_serving_warmup_requests"
SIGNATURES = ("serving_default", "serving_bytes")


def write_saved_model(wrapped: RawImageModel, path, *, model_name: str, warmup_images: np.ndarray | None = None,
                      metadata: dict | None = None) -> Path:
    """Write the SavedModel for `wrapped` at `path` (a TF Serving version directory) and return `path`.

    Example:
        >>> write_saved_model(RawImageModel(model, input_size=(32, 32), class_names=names),
        ...                   "exported/1", model_name="digits")                       # doctest: +SKIP
    """
    path = Path(path)
    save_functions(path, wrapped.model, {
        "serving_default": (wrapped.outputs, wrapped.images_spec()),
        "serving_bytes": (wrapped.outputs_from_bytes, tf.TensorSpec([None], tf.string, name="image_bytes")),
    })

    (path / "assets").mkdir(exist_ok=True)
    (path / "assets" / LABELS_FILE).write_text("\n".join(wrapped.class_names) + "\n", encoding="utf-8")
    extra = path / "assets.extra"
    extra.mkdir(exist_ok=True)
    info = {**wrapped.info(), **(metadata or {})}
    (extra / METADATA_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
    if warmup_images is None:
        warmup_images = np.zeros((1, *wrapped.input_size, 3), np.uint8)
    write_warmup_requests(extra / WARMUP_FILE, warmup_images[:1], model_name=model_name)
    return path


def save_functions(path, model, functions: dict) -> None:
    """Save `functions` ({signature name: (fn, TensorSpec)}) with `model`'s variables as a SavedModel.

    keras.export.ExportArchive (Keras 3.15) stores every variable twice, once as the Keras variable and once as
    the tf.Variable the graph captures, doubling the file; tracking only the tf.Variables keeps one copy.
    """
    root = tf.Module()
    root.model_variables = [getattr(v, "value", v) for v in model.variables]
    signatures = {}
    for name, (fn, spec) in functions.items():
        function = tf.function(fn, input_signature=[spec], autograph=False)
        setattr(root, name, function)
        signatures[name] = function.get_concrete_function()
    tf.saved_model.save(root, str(path), signatures=signatures)


def write_warmup_requests(path, images: np.ndarray, *, model_name: str) -> None:
    """Write TF Serving warmup requests (PredictionLog TFRecords): one per signature, from `images`.

    TF Serving replays them when it loads the version, so the first real request does not pay for graph
    initialization.
    """
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    images = np.asarray(images, np.uint8)
    encoded = np.array([_png(image) for image in images], dtype=object)
    requests = [("serving_default", "images", images), ("serving_bytes", "image_bytes", encoded)]
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, name, value in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def read_warmup_requests(path) -> list:
    """The PredictionLog records of a warmup file (for checks and tests)."""
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()
