"""Run a Keras model, SavedModel, .tflite or .onnx file on raw uint8 images behind one interface.

Export uses runners to prove the formats agree (parity) and to time them; validation uses the same runners, so
what is checked is what ships.

Example:
    >>> runner = load_runner("exported/1/model_int8.tflite")     # doctest: +SKIP
    >>> runner.predict(images_uint8).argmax(-1)                   # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from cnnzoo._checks import check_int, received
from cnnzoo.data.adapt import as_rgb_uint8  # owned by cnnzoo.data; kept importable from here

#: File names inside an export version directory.
CARD_FILE = "model_card.json"
METADATA_FILE = "cnnzoo.json"          # assets.extra/cnnzoo.json in a SavedModel; a TFLite metadata entry
LABELS_FILE = "labels.txt"
ONNX_METADATA_KEY = "cnnzoo"


def resize_uint8(images: np.ndarray, size: tuple[int, int], fit: str = "stretch") -> np.ndarray:
    """Resize uint8 images as cnnzoo.data and the exported SavedModel do (bilinear, `fit`, rounded to uint8)."""
    if images.shape[1:3] == tuple(size):
        return images
    from cnnzoo.data.images import resize
    return resize(images, tuple(size), fit).numpy()


class Runner:
    """Common interface: `.predict(images) -> float32 probabilities [N, classes]` (a segmenter's: [N, H, W,
    classes] at the images' own size, and `.predict_masks(images) -> int32 [N, H, W]`).

    Attributes:
        format: str, "keras", "saved_model", "tflite" or "onnx".
        path: str or None, the file or directory the runner loaded.
        input_size: (height, width) the model runs at; images of another size are resized first, as the
            training pipeline did (bilinear, `fit`, rounded to uint8).
        class_names: list of str.
        accepts_any_size: bool, True when the artifact resizes inside (Keras, SavedModel).
        task: "classification", "segmentation" or "multilabel" (recorded in the artifact's metadata). A
            segmentation runner that takes a fixed size (TFLite, ONNX) resizes its probabilities back to the
            images' size exactly as the SavedModel does (`serving.resize_back`).
        thresholds: a multi-label model's per-class decision thresholds (from the metadata), else None.
    """

    format = "runner"
    accepts_any_size = False

    def __init__(self, *, path=None, input_size=None, class_names=None, fit="stretch", task="classification",
                 thresholds=None):
        self.path = None if path is None else str(path)
        self.task = task or "classification"
        self.thresholds = None if thresholds is None else np.asarray(thresholds, np.float32)
        self.input_size = None if input_size is None else (int(input_size[0]), int(input_size[1]))
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.fit = fit

    def predict(self, images, batch_size: int = 32) -> np.ndarray:
        """uint8 images [N, H, W, C] (or one [H, W, C]) -> float32 probabilities [N, classes]."""
        batch_size = check_int("batch_size", batch_size, minimum=1)
        images = as_rgb_uint8(images)
        size = tuple(images.shape[1:3])
        if not self.accepts_any_size and self.input_size is not None:
            images = resize_uint8(images, self.input_size, self.fit)
        chunks = [self._run(images[start:start + batch_size]) for start in range(0, len(images), batch_size)]
        if self.task == "segmentation" and not self.accepts_any_size:
            from cnnzoo.export.serving import resize_back

            chunks = [resize_back(chunk, size).numpy() for chunk in chunks]
        if not chunks:
            return np.zeros((0, len(self.class_names or [])), np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)

    def predict_masks(self, images, batch_size: int = 32) -> np.ndarray:
        """A segmenter's masks: int32 class ids [N, H, W] at the images' size (argmax of `predict`)."""
        if self.task != "segmentation":
            raise ValueError(f"`predict_masks` needs a segmenter; this model is a {self.task} model. "
                             f"{received('source', self.path)}")
        return self.predict(images, batch_size=batch_size).argmax(-1).astype(np.int32)

    def predict_labels(self, images, batch_size: int = 32) -> np.ndarray:
        """A multi-label model's decisions: int32 [N, classes], 1 where a probability reaches its class's threshold
        (the exported graph's `labels` output, computed the same way for every format)."""
        if self.task != "multilabel":
            raise ValueError(f"`predict_labels` needs a multi-label model; this model is a {self.task} model. "
                             f"{received('source', self.path)}")
        return (self.predict(images, batch_size=batch_size) >= self.thresholds).astype(np.int32)

    def _run(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r}, input_size={self.input_size})"


class KerasRunner(Runner):
    """A keras.Model (or a .keras file) behind the shared raw-image wrapper."""

    format = "keras"
    accepts_any_size = True

    def __init__(self, model, *, class_names=None, input_size=None, fit="stretch", path=None, thresholds=None,
                 tta=None):
        import tensorflow as tf

        from cnnzoo.export.prepare import inference_model
        from cnnzoo.export.serving import RawImageModel, input_size_of

        model = inference_model(model)
        size = input_size_of(model, input_size)
        names = class_names or [f"class_{i}" for i in range(int(model.output_shape[-1]))]
        super().__init__(path=path, input_size=size, class_names=names, fit=fit)
        self.model = model
        self.wrapped = RawImageModel(model, input_size=size, class_names=self.class_names, fit=fit,
                                     thresholds=thresholds, tta=tta)
        self.task = self.wrapped.task
        self.thresholds = None if self.wrapped.thresholds is None else np.asarray(self.wrapped.thresholds, np.float32)
        self._fn = tf.function(lambda x: self.wrapped.outputs(x)["probabilities"], reduce_retracing=True)

    def _run(self, images):
        return self._fn(images).numpy()


class SavedModelRunner(Runner):
    """A SavedModel exported by cnnzoo (signature `serving_default`, input `images`)."""

    format = "saved_model"
    accepts_any_size = True

    def __init__(self, path, *, signature: str = "serving_default"):
        import tensorflow as tf

        meta = _read_json(Path(path) / "assets.extra" / METADATA_FILE)
        labels = _read_labels(Path(path) / "assets" / LABELS_FILE)
        super().__init__(path=path, input_size=meta.get("input_size"), class_names=labels or meta.get("class_names"),
                         fit=meta.get("fit", "stretch"), task=meta.get("task"), thresholds=meta.get("thresholds"))
        try:
            self.loaded = tf.saved_model.load(str(path))
        except (FileNotFoundError, PermissionError):
            raise
        except Exception as error:  # a corrupt saved_model.pb or variables: TF raises OSError, ValueError, ...
            raise unreadable_model("SavedModel", path, error) from error
        if signature not in self.loaded.signatures:
            raise ValueError(f"`signature` must be one of {sorted(self.loaded.signatures)}. "
                             f"{received('signature', signature)}")
        self.signature = self.loaded.signatures[signature]

    def _run(self, images):
        return self.signature(images=images)["probabilities"].numpy()

    def outputs(self, images) -> dict[str, np.ndarray]:
        """All outputs of `serving_default` for uint8 images: probabilities, class_ids, class_names (a
        segmenter's: probabilities, masks)."""
        return {k: v.numpy() for k, v in self.loaded.signatures["serving_default"](
            images=as_rgb_uint8(images)).items()}

    def predict_bytes(self, encoded: Sequence[bytes]) -> dict[str, np.ndarray]:
        """Encoded JPEG/PNG/GIF/BMP files -> outputs of the `serving_bytes` signature."""
        import tensorflow as tf

        if isinstance(encoded, (bytes, bytearray)):
            encoded = [bytes(encoded)]
        outputs = self.loaded.signatures["serving_bytes"](image_bytes=tf.constant(list(encoded), tf.string))
        return {k: v.numpy() for k, v in outputs.items()}


class TFLiteRunner(Runner):
    """A .tflite file run by ai-edge-litert's Interpreter (batch dimension resized as needed)."""

    format = "tflite"

    def __init__(self, path, *, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        data = Path(path).read_bytes()
        try:
            meta = tflite_metadata(data)
            self.interpreter = Interpreter(model_content=data, num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except Exception as error:  # a truncated flatbuffer: struct.error, ValueError, RuntimeError, ...
            raise unreadable_model(".tflite model", path, error) from error
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        height, width = (int(v) for v in self._input["shape"][1:3])
        labels = meta.get(LABELS_FILE)
        labels = labels.decode("utf-8").splitlines() if labels else None
        info = json.loads(meta[METADATA_FILE]) if METADATA_FILE in meta else {}
        super().__init__(path=path, input_size=(height, width), class_names=labels or info.get("class_names"),
                         fit=info.get("fit", "stretch"), task=info.get("task"), thresholds=info.get("thresholds"))
        self._batch = int(self._input["shape"][0])

    @property
    def input_quantization(self) -> tuple[float, int]:
        """(scale, zero_point) of the input tensor; (0.0, 0) when it is not quantized."""
        scale, zero_point = self._input["quantization"]
        return float(scale), int(zero_point)

    def _run(self, images):
        index = self._input["index"]
        if len(images) != self._batch:
            self.interpreter.resize_tensor_input(index, [len(images), *self.input_size, 3], strict=True)
            self.interpreter.allocate_tensors()
            self._input = self.interpreter.get_input_details()[0]
            self._output = self.interpreter.get_output_details()[0]
            self._batch = len(images)
        dtype = self._input["dtype"]
        scale, zero_point = self._input["quantization"]
        if dtype == np.uint8 and (scale, zero_point) in ((0.0, 0), (1.0, 0)):
            feed = images
        elif np.issubdtype(dtype, np.integer):  # quantized input with another scale: quantize as TFLite would
            info = np.iinfo(dtype)
            feed = np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(dtype)
        else:
            feed = images.astype(dtype)
        self.interpreter.set_tensor(index, feed)
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._output["index"])
        out_scale, out_zero = self._output["quantization"]
        if np.issubdtype(out.dtype, np.integer) and out_scale:
            out = (out.astype(np.float32) - out_zero) * out_scale
        return out.astype(np.float32)


class ONNXRunner(Runner):
    """A .onnx file run by onnxruntime (CPU)."""

    format = "onnx"

    def __init__(self, path, *, providers: Sequence[str] = ("CPUExecutionProvider",)):
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(str(path), providers=list(providers))
        except Exception as error:  # onnxruntime's InvalidProtobuf, Fail, ... (not ValueError subclasses)
            raise unreadable_model(".onnx model", path, error) from error
        self._input = self.session.get_inputs()[0]
        meta = self.session.get_modelmeta().custom_metadata_map
        info = json.loads(meta[ONNX_METADATA_KEY]) if ONNX_METADATA_KEY in meta else {}
        shape = self._input.shape
        size = (shape[1], shape[2]) if all(isinstance(v, int) for v in shape[1:3]) else info.get("input_size")
        super().__init__(path=path, input_size=size, class_names=info.get("class_names"),
                         fit=info.get("fit", "stretch"), task=info.get("task"), thresholds=info.get("thresholds"))
        self._output_name = "probabilities" if any(o.name == "probabilities" for o in self.session.get_outputs()) \
            else self.session.get_outputs()[0].name

    def _run(self, images):
        return self.session.run([self._output_name], {self._input.name: images})[0]


def load_runner(source, **kwargs) -> Runner:
    """A runner for a keras.Model, a .keras file, a SavedModel directory, a .tflite file or a .onnx file.

    An export root (`out_dir` holding version directories) loads its newest version's SavedModel.

    Example:
        >>> runner = load_runner("exported")        # doctest: +SKIP
        >>> runner.format, runner.class_names       # doctest: +SKIP
        ('saved_model', ['0', '1', ...])
    """
    import keras

    if isinstance(source, keras.Model):
        return KerasRunner(source, **kwargs)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"`source` must be a keras.Model or a path. {received('source', type(source).__name__)}")
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"`source` does not exist. {received('source', str(source))}")
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            return SavedModelRunner(path, **kwargs)
        versions = sorted((int(p.name) for p in path.iterdir() if p.is_dir() and p.name.isdigit()))
        if versions and (path / str(versions[-1]) / "saved_model.pb").exists():
            return SavedModelRunner(path / str(versions[-1]), **kwargs)
        raise ValueError(f"`source` is a directory without a SavedModel (saved_model.pb) or version "
                         f"directories holding one. {received('source', str(source))}")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        return TFLiteRunner(path, **kwargs)
    if suffix == ".onnx":
        return ONNXRunner(path, **kwargs)
    if suffix == ".keras":
        card = _read_json(path.parent / CARD_FILE)
        kwargs.setdefault("class_names", card.get("class_names"))
        if card.get("input", {}).get("size"):
            kwargs.setdefault("input_size", tuple(card["input"]["size"]))
        kwargs.setdefault("fit", card.get("preprocessing", {}).get("resize", {}).get("fit", "stretch"))
        if card.get("thresholds"):
            kwargs.setdefault("thresholds", card["thresholds"])
        if card.get("tta"):
            kwargs.setdefault("tta", tuple(card["tta"]))
        return KerasRunner(load_keras_file(path), path=path, **kwargs)
    raise ValueError(f"`source` must be a SavedModel directory or a .keras, .tflite or .onnx file. "
                     f"{received('source', str(source))}")


def load_keras_file(path, name: str = "source"):
    """`keras.saving.load_model(path, compile=False)` with cnnzoo's layers registered; a file Keras cannot read
    (truncated, not a .keras zip, unknown layers) raises ValueError naming `name` and the path."""
    import keras

    import cnnzoo

    cnnzoo._register_layers()
    try:
        return keras.saving.load_model(path, compile=False)
    except (FileNotFoundError, PermissionError):
        raise
    except Exception as error:  # Keras says "File not found" for a corrupt zip, TypeError for unknown layers
        raise unreadable_model(".keras model", path, error, name) from error


def unreadable_model(kind: str, path, error: Exception, name: str = "source") -> ValueError:
    """The ValueError for a model file a loader could not read: names the file, the library's reason on one line."""
    reason = " ".join(str(error).split())
    reason = reason if len(reason) <= 300 else reason[:297] + "..."
    return ValueError(f"Cannot read {str(path)!r} as a {kind}: it is truncated, corrupt or another format "
                      f"({type(error).__name__}: {reason}). {received(name, str(path))}")


def measure_latency(runner: Runner, image: np.ndarray, *, repeats: int = 20, warmup: int = 3) -> dict:
    """Batch-1 latency of `runner` on this machine: {"p50_ms", "min_ms", "repeats"} after `warmup` runs."""
    import time

    image = as_rgb_uint8(image)[:1]
    for _ in range(warmup):
        runner.predict(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner.predict(image)
        times.append((time.perf_counter() - start) * 1000.0)
    return {"p50_ms": round(float(np.median(times)), 4), "min_ms": round(float(np.min(times)), 4),
            "repeats": repeats}


def tflite_metadata(data: bytes) -> dict[str, bytes]:
    """The metadata entries (name -> bytes) of a .tflite flatbuffer, read without TensorFlow."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    entries = {}
    for i in range(model.MetadataLength()):
        item = model.Metadata(i)
        buffer = model.Buffers(item.Buffer())
        if buffer.Offset() > 1:   # stored after the flatbuffer (models > 2 GB)
            raw = data[buffer.Offset():buffer.Offset() + buffer.Size()]
        else:
            raw = buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b""
        entries[item.Name().decode("utf-8")] = raw
    return entries


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _read_labels(path: Path) -> list[str] | None:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
