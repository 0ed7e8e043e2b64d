"""TFLite (fp32, fp16, dynamic, full int8) and ONNX artifacts, checked with their own runtimes."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from ai_edge_litert.interpreter import Interpreter

from cnnzoo.export import onnx as onnx_export
from cnnzoo.export.runners import tflite_metadata
from cnnzoo.export.serving import RawImageModel

SIZE = 32
LABELS = [f"digit_{i}" for i in range(10)]


def _interpreter(path):
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return interpreter


def test_int8_is_full_integer_with_raw_pixel_uint8_input(exported, trained, digits):
    interpreter = _interpreter(exported.paths["tflite_int8"])
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["dtype"] == np.uint8 and inp["quantization"] == (1.0, 0)
    assert list(inp["shape"]) == [1, SIZE, SIZE, 3]                     # the model's training size
    assert out["dtype"] == np.float32
    # Full integer: every tensor but the float output is int8/uint8/int32 (biases).
    floats = [t["name"] for t in interpreter.get_tensor_details() if t["dtype"] == np.float32]
    assert floats == [out["name"]], floats
    # Raw pixels go straight in, no scaling on the caller's side.
    model, _ = trained
    image = digits["x_test"][:1]
    interpreter.set_tensor(inp["index"], image)
    interpreter.invoke()
    got = interpreter.get_tensor(out["index"])
    expected = model.predict(image.astype("float32"), verbose=0)
    assert got.argmax() == expected.argmax()
    assert np.abs(got - expected).max() < 0.2
    assert exported.card["export"]["int8_calibration_images"] == 200          # the default


def test_float_tflite_variants_take_uint8_and_hold_the_expected_weight_types(exported):
    kinds = {}
    for fmt in ("tflite_fp32", "tflite_fp16", "tflite_dynamic"):
        interpreter = _interpreter(exported.paths[fmt])
        (inp,) = interpreter.get_input_details()
        assert inp["dtype"] == np.uint8 and list(inp["shape"]) == [1, SIZE, SIZE, 3], fmt
        assert interpreter.get_output_details()[0]["dtype"] == np.float32
        kinds[fmt] = {t["dtype"] for t in interpreter.get_tensor_details()}
    assert np.float16 in kinds["tflite_fp16"] and np.float16 not in kinds["tflite_fp32"]
    assert np.int8 in kinds["tflite_dynamic"] and np.int8 not in kinds["tflite_fp32"]


def test_tflite_files_embed_labels_and_preprocessing(exported):
    for fmt in ("tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8"):
        entries = tflite_metadata(exported.paths[fmt].read_bytes())
        assert entries["labels.txt"].decode().splitlines() == LABELS, fmt
        info = json.loads(entries["cnnzoo.json"])
        assert info["input_size"] == [SIZE, SIZE] and info["interpolation"] == "bilinear"
        assert info["variant"] == fmt and info["class_names"] == LABELS
    assert exported.card["class_names"] == LABELS


def test_tflite_batch_dimension_can_be_resized(exported, digits):
    interpreter = _interpreter(exported.paths["tflite_int8"])
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, [5, SIZE, SIZE, 3], strict=True)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, digits["x_test"][:5])
    interpreter.invoke()
    assert interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).shape == (5, 10)


def test_onnx_takes_uint8_nhwc_with_dynamic_batch_at_opset_17(exported, trained, digits):
    proto = onnx.load(str(exported.paths["onnx"]))
    assert {o.domain: o.version for o in proto.opset_import}[""] == 17
    session = ort.InferenceSession(str(exported.paths["onnx"]), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "images" and inp.type == "tensor(uint8)"
    assert isinstance(inp.shape[0], str) and inp.shape[1:] == [SIZE, SIZE, 3]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    model, _ = trained
    for batch in (1, 7):
        images = digits["x_test"][:batch]
        (probabilities,) = session.run(None, {"images": images})
        np.testing.assert_allclose(probabilities, model.predict(images.astype("float32"), verbose=0), atol=1e-4)
    info = json.loads(session.get_modelmeta().custom_metadata_map["cnnzoo"])
    assert info["class_names"] == LABELS and info["input_size"] == [SIZE, SIZE]


@pytest.mark.parametrize("opset", [13, 18])
def test_onnx_opset_is_configurable(tiny_model, digits, opset):
    wrapped = RawImageModel(tiny_model, input_size=(SIZE, SIZE), class_names=list("abcd"))
    data = onnx_export.convert(wrapped, opset=opset)
    assert {o.domain: o.version for o in onnx.load_from_string(data).opset_import}[""] == opset
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(None, {"images": digits["x_test"][:3]})
    np.testing.assert_allclose(probabilities, tiny_model.predict(digits["x_test"][:3].astype("float32"),
                                                                 verbose=0), atol=1e-5)


def test_onnx_opset_argument_is_checked(tiny_model):
    wrapped = RawImageModel(tiny_model, input_size=(SIZE, SIZE), class_names=list("abcd"))
    with pytest.raises(TypeError, match="Received: opset='17'"):
        onnx_export.convert(wrapped, opset="17")
