"""A TF Serving REST stand-in (no Docker in tests) that runs real exported SavedModels.

It follows TF Serving's documented REST rules (tensorflow_serving/g3doc/api_rest.md): `/v1/models/<name>
[/versions/<n>|/labels/<label>]:predict`, row-format `instances` (a bare value per instance when the signature has
one input), `{"b64": ...}` objects decoded to bytes for string tensors, `predictions` rows of named outputs,
`{"error": ...}` with 400/404. Only the HTTP layer is stood in; the models are the exported SavedModels.
"""
import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

import cnnzoo

SIZE = 32
ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
                   r"(?P<verb>:predict|/metadata)?$")


class RestError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def decode_instances(body: dict, signature) -> dict:
    """TF Serving's row-format decoding of a :predict body into the signature's input tensors."""
    if "instances" not in body:
        raise RestError(400, "Missing 'instances' key")
    instances = body["instances"]
    inputs = signature.structured_input_signature[1]
    if not isinstance(instances, list) or not instances:
        raise RestError(400, "'instances' must be a non-empty list")
    named = isinstance(instances[0], dict) and "b64" not in instances[0]
    if not named and len(inputs) != 1:
        raise RestError(400, "instances must be objects naming each input of a multi-input signature")
    decoded = {}
    for name, spec in inputs.items():
        values = [instance[name] if named else instance for instance in instances]
        if spec.dtype == tf.string:
            def as_bytes(value):
                if isinstance(value, dict):
                    return base64.b64decode(value["b64"])
                return value.encode("utf-8")
            decoded[name] = tf.constant([as_bytes(v) for v in values], tf.string)
        else:
            array = np.asarray(values)
            if any(isinstance(v, dict) for v in values):
                raise RestError(400, f"b64 given for non-string input {name} ({spec.dtype.name})")
            if spec.dtype.is_integer and array.dtype.kind not in "iu":
                raise RestError(400, f"JSON Value not of expected type: {spec.dtype.name} (input {name})")
            info = np.iinfo(spec.dtype.as_numpy_dtype) if spec.dtype.is_integer else None
            if info is not None and (array.min() < info.min or array.max() > info.max):
                raise RestError(400, f"value out of range for {spec.dtype.name} (input {name})")
            decoded[name] = tf.constant(array.astype(spec.dtype.as_numpy_dtype))
    return decoded


def encode_predictions(outputs: dict) -> dict:
    """Signature outputs -> TF Serving's row-format answer ({"predictions": [{name: value}, ...]})."""
    columns = {}
    for name, tensor in outputs.items():
        value = tensor.numpy()
        if value.dtype == object:
            value = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(value)
        columns[name] = value.tolist()
    count = len(next(iter(columns.values())))
    return {"predictions": [{name: column[i] for name, column in columns.items()} for i in range(count)]}


class TFServingStandIn:
    """Serves {model name: {version: SavedModel dir}} with optional {name: {label: version}} on 127.0.0.1."""

    def __init__(self, models: dict, labels: dict | None = None):
        self.models = {name: {int(v): Path(p) for v, p in versions.items()} for name, versions in models.items()}
        self.labels = labels or {}
        self.requests = []
        self.delay = 0.0
        self._loaded = {}
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

            def _answer(self, method):
                stand_in.requests.append((method, self.path))
                time.sleep(stand_in.delay)
                try:
                    status, payload = 200, stand_in.handle(method, self.path, self._body() if method == "POST"
                                                           else None)
                except RestError as error:
                    status, payload = error.status, {"error": str(error)}
                except tf.errors.OpError as error:
                    status, payload = 400, {"error": error.message}
                data = json.dumps(payload).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass                                     # the client timed out and left

            def _body(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    return json.loads(raw)
                except ValueError:
                    raise RestError(400, "JSON Parse error: Invalid value") from None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _resolve(self, name, version, label):
        if name not in self.models:
            raise RestError(404, f"Servable not found for request: Latest({name})")
        if label is not None:
            if label not in self.labels.get(name, {}):
                raise RestError(400, f"Unrecognized servable version label: {label}")
            version = self.labels[name][label]
        version = max(self.models[name]) if version is None else int(version)
        if version not in self.models[name]:
            raise RestError(404, f"Servable not found for request: Specific({name}, {version})")
        key = (name, version)
        if key not in self._loaded:
            self._loaded[key] = tf.saved_model.load(str(self.models[name][version]))
        return version, self._loaded[key]

    def handle(self, method, path, body):
        match = ROUTE.match(path)
        if not match:
            raise RestError(404, f"Malformed request: {method} {path}")
        version, loaded = self._resolve(match["name"], match["version"], match["label"])
        verb = match["verb"]
        if method == "GET" and verb is None:
            return {"model_version_status": [{"version": str(version), "state": "AVAILABLE",
                                              "status": {"error_code": "OK", "error_message": ""}}]}
        if method == "GET" and verb == "/metadata":
            return {"model_spec": {"name": match["name"], "version": str(version)},
                    "metadata": {"signature_def": {"signature_def": {
                        key: {"inputs": sorted(sig.structured_input_signature[1])}
                        for key, sig in loaded.signatures.items()}}}}
        if method != "POST" or verb != ":predict":
            raise RestError(404, f"Malformed request: {method} {path}")
        signature_name = body.get("signature_name", "serving_default")
        if signature_name not in loaded.signatures:
            raise RestError(400, f'Serving signature name: "{signature_name}" not found in signature def')
        signature = loaded.signatures[signature_name]
        return encode_predictions(signature(**decode_instances(body, signature)))


def _small_model(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = cnnzoo.layers.Preprocessing("unit", name="preprocessing")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="digits")


@pytest.fixture(scope="session")
def digit_images():
    digits = load_digits()
    x = tf.image.resize(digits.images[:64, :, :, None] / 16.0 * 255.0, (SIZE, SIZE)).numpy()
    return np.repeat(np.clip(np.round(x), 0, 255).astype(np.uint8), 3, -1)


@pytest.fixture(scope="session")
def served_models(tmp_path_factory, digit_images):
    """deploy/-style tree: models/digits/1 and /2 (two different models, same classes), exported by cnnzoo."""
    root = tmp_path_factory.mktemp("serving") / "models"
    names = [f"digit_{i}" for i in range(10)]
    for seed in (1, 2):
        cnnzoo.export(_small_model(seed), root / "digits", formats="saved_model", class_names=names,
                      representative_data=digit_images, top_k=2, latency_repeats=1)
    return root


@pytest.fixture(scope="session")
def stand_in(served_models):
    with TFServingStandIn({"digits": {1: served_models / "digits" / "1", 2: served_models / "digits" / "2"}},
                          labels={"digits": {"stable": 1, "canary": 2}}) as server:
        yield server


@pytest.fixture
def rest():
    """TF Serving's REST decoding rules, for contract tests without a server."""
    return {"decode": decode_instances, "encode": encode_predictions, "StandIn": TFServingStandIn}
