"""`model_card.json`: what an exported model is, what it takes, how it was checked, how fast it ran here."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path

import numpy as np

CARD_VERSION = 1


def preprocessing_spec(model, *, input_size: tuple[int, int], fit: str) -> dict:
    """Describe the in-model preprocessing: resize, then per-channel (x - mean) / std in 0..255 pixel units.

    mean and std are measured by probing the model's normalization layer with all-0 and all-255 images, so
    they are right for any affine layer (cnnzoo Preprocessing, Rescaling, Normalization).
    """
    spec = {"resize": {"size": list(input_size), "interpolation": "bilinear", "antialias": False, "fit": fit,
                       "rounded_to_uint8": True,
                       "where": "inside the SavedModel (any input size); TFLite and ONNX take exactly `size`"},
            "input_range": [0, 255], "channel_order": "RGB"}
    layer = _normalization_layer(model)
    if layer is None:
        spec["normalization"] = None
        return spec
    zeros = np.asarray(layer(np.zeros((1, 1, 1, 3), np.float32)), np.float64).reshape(-1)
    full = np.asarray(layer(np.full((1, 1, 1, 3), 255.0, np.float32)), np.float64).reshape(-1)
    std = 255.0 / (full - zeros)
    mean = -zeros * std
    config = {k: v for k, v in layer.get_config().items() if k not in ("name", "trainable", "dtype")}
    spec["normalization"] = {"layer": type(layer).__name__, "name": layer.name, "config": _jsonable(config),
                             "mean": [round(float(m), 6) for m in mean], "std": [round(float(s), 6) for s in std],
                             "formula": "(pixel - mean) / std, per output channel, pixels in 0..255"}
    if getattr(layer, "mode", None) == "caffe":
        spec["normalization"]["channel_order"] = "BGR (flipped inside the layer)"
    return spec


def _normalization_layer(model):
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or type(layer).__name__ in ("Identity", "StrippedAugmentation"):
            continue
        if layer.name == "preprocessing" or type(layer).__name__ in ("Preprocessing", "Rescaling", "Normalization"):
            return layer
        if isinstance(layer, keras.Model):   # e.g. Input -> augmentation -> zoo model
            return _normalization_layer(layer)
        return None  # the first real layer is not a normalization layer: the model takes pixels as they are
    return None


def build_card(*, name: str, version: int, model, class_names, input_size, fit: str, top_k: int,
               formats: dict, parity: dict, metrics: dict | None, held_out: bool, holdout_images: int,
               calibration_images: int | None, stripped: list[str], recast: bool, opset: int | None,
               softmax_added: bool = False, task: str = "classification", thresholds: dict | None = None) -> dict:
    """The model card dict (also written as model_card.json)."""
    import keras
    import tensorflow as tf

    import cnnzoo

    versions = {"cnnzoo": cnnzoo.__version__, "tensorflow": tf.__version__, "keras": keras.__version__}
    tools = (["ai_edge_litert"] if any(fmt.startswith("tflite") for fmt in formats) else []) + \
        (["tf2onnx", "onnx", "onnxruntime"] if "onnx" in formats else [])
    versions.update({tool: _version(tool) for tool in tools})
    return {
        "card_version": CARD_VERSION,
        "name": name,
        "version": version,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions,
        "input": {"name": "images", "dtype": "uint8", "shape": ["batch", "height", "width", 3],
                  "size": list(input_size), "value_range": [0, 255], "channels": "RGB",
                  "note": "SavedModel takes any height/width and resizes inside; TFLite and ONNX take exactly "
                          "`size`. `serving_bytes` takes encoded JPEG/PNG/GIF/BMP."},
        "task": task,
        "outputs": _outputs(task, top_k, softmax_added),
        "preprocessing": preprocessing_spec(model, input_size=input_size, fit=fit),
        "class_names": list(class_names),
        "num_classes": len(class_names),
        **({"thresholds": thresholds} if thresholds is not None else {}),
        "top_k": top_k,
        "metrics": _jsonable(metrics or {}),
        "export": {"augmentation_layers_stripped": stripped, "recast_to_float32": recast,
                   "softmax_added_to_logits": softmax_added,
                   "onnx_opset": opset, "int8_calibration_images": calibration_images},
        "parity": {"held_out_disjoint": held_out, "images": holdout_images,
                   "passed": all(result["passed"] for result in parity.values()) if parity else None,
                   "formats": parity},
        "formats": formats,
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count()},
    }


def _outputs(task: str, top_k: int, softmax_added: bool) -> dict:
    if task == "multilabel":
        return {"probabilities": "float32 [batch, num_classes], a sigmoid per class",
                "labels": "int32 [batch, num_classes]: 1 where probability >= the class's threshold "
                          "(`thresholds`; SavedModel, and runners of every format)",
                "class_ids": f"int32 [batch, {top_k}] most probable classes (SavedModel)",
                "class_names": f"string [batch, {top_k}] (SavedModel)"}
    if task == "segmentation":
        return {"probabilities": "float32 [batch, height, width, num_classes]: SavedModel at the input image's size "
                                 "(resized back bilinearly), TFLite and ONNX at `input.size`",
                "masks": "int32 [batch, height, width] class ids, argmax of probabilities (SavedModel; "
                         "`serving_bytes` returns them at `input.size`)"}
    return {"probabilities": "float32 [batch, num_classes]" + (
                " (softmax added: the model returns logits)" if softmax_added else ""),
            "class_ids": f"int32 [batch, {top_k}] (SavedModel)",
            "class_names": f"string [batch, {top_k}] (SavedModel)"}


def write_card(card: dict, path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def _version(module: str) -> str | None:
    from importlib import metadata

    names = {"ai_edge_litert": "ai-edge-litert"}
    try:
        return metadata.version(names.get(module, module))
    except metadata.PackageNotFoundError:
        return None


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
