"""ONNX conversion with tf2onnx: uint8 NHWC raw pixels in (dynamic batch), `probabilities` out.

The converted graph is the shared fixed-size wrapper (cast, model with `training=False`), so the ONNX file needs
no preprocessing code on the client. Labels and the preprocessing spec are stored in the model's metadata_props
(`onnxruntime`: `session.get_modelmeta().custom_metadata_map["cnnzoo"]`).
"""
from __future__ import annotations

import json

from cnnzoo._checks import check_int
from cnnzoo.export.runners import ONNX_METADATA_KEY
from cnnzoo.export.serving import RawImageModel

DEFAULT_OPSET = 17
FILE_NAME = "model.onnx"


def convert(wrapped: RawImageModel, *, opset: int = DEFAULT_OPSET, metadata: dict | None = None) -> bytes:
    """Return the serialized ONNX model of `wrapped`.

    Example:
        >>> data = convert(wrapped, opset=17)                               # doctest: +SKIP
        >>> onnxruntime.InferenceSession(data).get_inputs()[0].shape       # doctest: +SKIP
        ['batch', 32, 32, 3]
    """
    import onnx
    import tf2onnx

    opset = check_int("opset", opset, minimum=9)
    function = wrapped.fixed_size_function()
    proto, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=opset)
    graph = proto.graph
    _rename(graph, graph.input[0].name, "images")
    _rename(graph, graph.output[0].name, "probabilities")
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    info = {**wrapped.info(), **(metadata or {})}
    onnx.helper.set_model_props(proto, {ONNX_METADATA_KEY: json.dumps(info)})
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _rename(graph, old: str, new: str) -> None:
    if old == new:
        return
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in list(graph.input) + list(graph.output):
        if value.name == old:
            value.name = new
