"""TFLite conversion: fp32, fp16, dynamic-range and full-integer int8, all taking raw uint8 pixels.

Full-integer int8 has one trap (ENVIRONMENT.md): the uint8 input's quantization comes from the calibration range,
so unless calibration spans exactly 0..255 the input scale is e.g. 0.996 and raw pixels are no longer what the
model expects. The calibration set here always includes one 0 and one 255 pixel, and the result is checked to be
(scale 1.0, zero point 0) before it is written. Labels and the preprocessing spec travel inside the file as
TFLite metadata entries (`labels.txt`, `cnnzoo.json`).
"""
from __future__ import annotations

import json
import tempfile
from typing import Iterable

import numpy as np
import tensorflow as tf

from cnnzoo._checks import check_choice
from cnnzoo.export.runners import LABELS_FILE, METADATA_FILE, tflite_metadata
from cnnzoo.export.serving import RawImageModel
from cnnzoo.options import TFLITE_FORMATS as VARIANTS

FILE_NAMES = {variant: f"model_{variant.split('_', 1)[1]}.tflite" for variant in VARIANTS}


class TFLiteConverter:
    """Converts one wrapped model to any TFLite variant (the float graph is traced once, then reused).

    Example:
        >>> with TFLiteConverter(wrapped) as converter:                          # doctest: +SKIP
        ...     data = converter.convert("tflite_int8", representative=images_uint8)
    """

    def __init__(self, wrapped: RawImageModel):
        from cnnzoo.export.saved_model import save_functions

        self.wrapped = wrapped
        self._tmp = tempfile.TemporaryDirectory(prefix="cnnzoo-tflite-")
        height, width = wrapped.input_size

        def probabilities(images):
            return {"probabilities": wrapped.probabilities(images)}

        save_functions(self._tmp.name, wrapped.model, {
            # uint8 in: the float variants take raw pixels as they are.
            "serve_uint8": (probabilities, tf.TensorSpec([None, height, width, 3], tf.uint8, name="images")),
            # float in: full-integer conversion quantizes this input to uint8 with the calibrated (1.0, 0).
            "serve_float": (probabilities, tf.TensorSpec([None, height, width, 3], tf.float32, name="images")),
        })

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._tmp.cleanup()

    def convert(self, variant: str, *, representative: np.ndarray | None = None,
                metadata: dict | None = None) -> bytes:
        """Return the .tflite bytes of `variant` with labels and `metadata` embedded.

        `representative` (uint8 [N, h, w, 3] at the model size) is required for "tflite_int8".
        """
        check_choice("variant", variant, VARIANTS)
        signature = "serve_float" if variant == "tflite_int8" else "serve_uint8"
        converter = tf.lite.TFLiteConverter.from_saved_model(self._tmp.name, signature_keys=[signature])
        if variant == "tflite_fp16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif variant == "tflite_dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        elif variant == "tflite_int8":
            if representative is None or len(representative) == 0:
                raise ValueError("`representative_data` is needed to calibrate tflite_int8. "
                                 "Received: representative_data=None")
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: _calibration_samples(representative)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.uint8
            converter.inference_output_type = tf.float32
        data = converter.convert()
        if variant == "tflite_int8":
            _check_raw_pixel_input(data)
        info = {**self.wrapped.info(), "variant": variant, **(metadata or {})}
        return add_metadata(data, {LABELS_FILE: ("\n".join(self.wrapped.class_names) + "\n").encode("utf-8"),
                                   METADATA_FILE: json.dumps(info).encode("utf-8")})


def _calibration_samples(images: np.ndarray) -> Iterable[list[np.ndarray]]:
    # The first sample pins the input range to exactly [0, 255] -> input scale 1.0, zero point 0.
    anchor = np.array(images[0], np.float32)
    anchor[0, 0, :] = 0.0
    anchor[0, -1, :] = 255.0
    yield [anchor[None]]
    for image in images:
        yield [np.asarray(image, np.float32)[None]]


def _check_raw_pixel_input(data: bytes) -> None:
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_content=data).get_input_details()[0]
    scale, zero_point = details["quantization"]
    if details["dtype"] != np.uint8 or not np.isclose(scale, 1.0) or zero_point != 0:
        raise RuntimeError("tflite_int8 input does not take raw pixels: expected uint8 with quantization "
                           f"(scale 1.0, zero point 0), got {details['dtype'].__name__} ({scale}, {zero_point}).")


def add_metadata(data: bytes, entries: dict[str, bytes]) -> bytes:
    """Return .tflite bytes with `entries` (name -> bytes) added as flatbuffer metadata (read by any runtime)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))

    def name_of(item):
        return item.name.decode("utf-8") if isinstance(item.name, bytes) else item.name

    model.metadata = [item for item in (model.metadata or []) if name_of(item) not in entries]
    for name, payload in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(payload, np.uint8)
        model.buffers.append(buffer)
        item = schema.MetadataT()
        item.name = name
        item.buffer = len(model.buffers) - 1
        model.metadata.append(item)
    out = flatbuffer_utils.convert_object_to_bytearray(model)
    if not set(entries) <= set(tflite_metadata(out)):
        raise RuntimeError(f"TFLite metadata entries {sorted(entries)} did not survive the rewrite.")
    return out
