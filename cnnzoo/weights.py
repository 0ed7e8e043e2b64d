"""Weight files: read keras.applications' legacy HDF5 and Keras 3 `.weights.h5`, load them by layer name.

Loading by name (not by order) is what lets a keras.applications file fill a cnnzoo model whose extra layers
(preprocessing, a new head) differ. A classifier that does not fit the new `num_classes` is skipped with a
warning (transfer learning); any other mismatch is an error naming the layer.

Example:
    >>> model = cnnzoo.create_model("resnet50", num_classes=5, weights="resnet50_weights_tf_dim_ordering_tf_kernels.h5")
"""
from __future__ import annotations

import os
import socket
import warnings
from dataclasses import dataclass, field
from typing import Callable

import h5py
import keras
import numpy as np

from cnnzoo._checks import received

HEAD_LAYERS = ("predictions",)
# Layers of keras.applications models that cnnzoo replaces with its own `Preprocessing` layer.
KERAS_PREPROCESSING_PREFIXES = ("normalization", "rescaling")
WEIGHTS_URL_ENV = "CNNZOO_WEIGHTS_URL"
CACHE_DIR_ENV = "CNNZOO_CACHE_DIR"
DOWNLOAD_TIMEOUT = 30.0   # seconds without a byte before a download is given up (offline, a dead mirror)


@dataclass(frozen=True)
class ImageNetWeights:
    """One family's published ImageNet weights: where the file is and what inputs the weights were trained on.

    Args:
        locate: callable, (include_top, input_shape, options) -> (file name, URL, hash or None), reading
            keras.applications' own URL and hash tables.
        preprocessing: dict, the `cnnzoo.layers.Preprocessing` config these weights expect; `weights="imagenet"`
            with `preprocessing="default"` puts exactly this layer first.
        classifier: str, the classifier layer's name in the file (skipped when `num_classes` differs).

    Example:
        >>> cnnzoo.registry.get_entry("resnet50").imagenet.preprocessing
        {'mode': 'caffe'}
    """

    locate: Callable
    preprocessing: dict
    classifier: str = "predictions"
    input_sizes: tuple = field(default=())  # the sizes files exist for (empty: any size)


class WeightsDownloadError(ConnectionError, RuntimeError):
    """The ImageNet weights could not be fetched (offline, blocked, a dead mirror); the message says what to do."""


def _decode(values) -> list[str]:
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def read_weights_file(path: str) -> tuple[str, dict[str, list[np.ndarray]]]:
    """Read either weights-file layout: ("legacy" | "keras3", key -> arrays in the layer's variable order).

    Legacy files (keras.applications' ImageNet files) key by layer name. Keras 3 `.weights.h5` files key by the
    layer's class in snake case, numbered in `model.layers` order (`conv2d`, `conv2d_1`, ...): they store no
    layer names, so `load_weights` recomputes those keys for the receiving model.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"Weights file not found. {received('weights', path)}")
    if os.path.isdir(path):
        raise ValueError(f"`weights` must be a weights file (.h5 or .weights.h5), not a directory. "
                         f"{received('weights', path)}")
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"Not an HDF5 weights file ({error}). {received('weights', path)}") from None
    with f:
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" in group.attrs:
            out = {}
            for layer_name in _decode(group.attrs["layer_names"]):
                g = group[layer_name]
                names = _decode(g.attrs["weight_names"])
                if names:
                    out[layer_name] = [np.asarray(g[n]) for n in names]
            return "legacy", out
        if "layers" in group:
            out = {}
            _read_keras3_layers(group, "", out)
            return "keras3", out
    raise ValueError(f"Unrecognised weights file layout (no 'layer_names' and no 'layers'). {received('weights', path)}")


def _read_keras3_layers(group, prefix: str, out: dict) -> None:
    """Keras 3 entries with variables; a nested model's layers (keras' ConvNeXt stem) as `outer/inner` keys."""
    for key, g in group["layers"].items():
        if "vars" in g and len(g["vars"]):
            out[prefix + key] = [np.asarray(g["vars"][str(i)]) for i in range(len(g["vars"]))]
        if "layers" in g:
            _read_keras3_layers(g, f"{prefix}{key}/", out)


def _nested_keras3_arrays(layer, key: str, stored: dict, used: set) -> list | None:
    """A nested model's arrays from its layers' `key/inner` entries, in its weight order (None if any is missing)."""
    if not isinstance(layer, keras.Model):
        return None
    arrays = []
    for inner_key, inner in keras3_keys(layer).items():
        if not inner.weights:
            continue
        path = f"{key}/{inner_key}"
        part = stored.get(path)
        if part is None:
            part = _nested_keras3_arrays(inner, path, stored, used)
            if part is None:
                return None
        else:
            used.add(path)
        arrays += part
    return arrays


def keras3_keys(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """The keys Keras 3's saver gives `model.layers`: snake-case class name, uniquified in order."""
    keys, used = {}, {}
    for layer in model.layers:
        base = keras.src.utils.naming.to_snake_case(type(layer).__name__)
        used[base] = used.get(base, -1) + 1
        keys[base if used[base] == 0 else f"{base}_{used[base]}"] = layer
    return keys


def _weighted_layers(model: keras.Model) -> list:
    return [layer for layer in model.layers if layer.weights and layer.name not in HEAD_LAYERS]


def _names_match(model: keras.Model, stored: dict) -> bool:
    return all(layer.name in stored for layer in _weighted_layers(model))


def _is_classifier(key: str, classifier: str) -> bool:
    """The file's classifier: ours ("predictions") or the family's (`ImageNetWeights.classifier`, in any case:
    keras 3 writes MobileNetV3's `logits` where tf.keras, which wrote the ImageNet files, wrote `Logits`)."""
    return key in HEAD_LAYERS or key.lower() == classifier.lower()


def _rekey_by_order(model: keras.Model, stored: dict, classifier: str = "predictions") -> dict | None:
    """Key a legacy file's layers by the model's names, pairing layers with weights in order (as Keras does).

    None when the order does not pair up: other counts or shapes, or a name both sides have paired with another.
    """
    ours = _weighted_layers(model)
    theirs = [(k, v) for k, v in stored.items()
              if not _is_classifier(k, classifier) and not k.startswith(KERAS_PREPROCESSING_PREFIXES)]
    if len(ours) != len(theirs):
        return None
    names = {layer.name for layer in ours}
    out = {k: v for k, v in stored.items() if _is_classifier(k, classifier)}
    for layer, (key, arrays) in zip(ours, theirs):
        if [tuple(w.shape) for w in layer.weights] != [tuple(a.shape) for a in arrays]:
            return None
        if key in names and key != layer.name:
            return None
        out[layer.name] = arrays
    return out


def _conv_classifier(model: keras.Model, stored: dict, by_key: dict, layout: str, classifier: str) -> dict:
    """Files whose classifier is a 1x1 conv (keras' MobileNets: `conv_preds`, `Logits`) fill our Dense classifier.

    Legacy files name it (`classifier`); in Keras 3 files it is the one entry the model has no key for.
    """
    ours = [key for key, layer in by_key.items() if layer.name in HEAD_LAYERS and layer.weights]
    if not ours or ours[0] in stored:
        return stored
    if layout == "legacy":
        source = next((k for k in stored if k.lower() == classifier.lower()), None)
    else:
        extra = [k for k in stored if k not in by_key and "/" not in k
                 and not k.startswith(KERAS_PREPROCESSING_PREFIXES)]
        source = extra[0] if len(extra) == 1 else None
    if source is None:
        return stored
    stored = dict(stored)
    stored[ours[0]] = stored.pop(source)
    return stored


def _fit_1x1(layer, arrays: list) -> list:
    """A 1x1 conv kernel [1, 1, C, K] for a Dense layer's [C, K] kernel (the same linear map)."""
    if isinstance(layer, keras.layers.Dense) and arrays and arrays[0].ndim == 4 and arrays[0].shape[:2] == (1, 1):
        return [arrays[0].reshape(arrays[0].shape[2:])] + list(arrays[1:])
    return arrays


def load_weights(model: keras.Model, path: str, classifier: str = "predictions") -> dict[str, list[str]]:
    """Assign a weights file to `model` by layer (legacy files: by name; Keras 3 files: by saver key).

    `classifier` is the classifier's name in the file (`ImageNetWeights.classifier`); a 1x1-conv classifier
    (keras' MobileNets) loads into the model's Dense "predictions".

    Returns {"loaded": [...], "skipped": [...]} layer names.

    Raises:
        ValueError: a non-head layer's shapes differ, or a layer with weights is missing from either side.
    """
    layout, stored = read_weights_file(path)
    if layout == "legacy" and not _names_match(model, stored):
        # keras.applications leaves some layers auto-named (conv2d_12), so its files carry whatever names the
        # saving session gave, and Keras loads legacy files by order. Do the same when the order pairs every layer
        # with one of the same shapes (and every shared name with itself); otherwise report by name below.
        stored = _rekey_by_order(model, stored, classifier) or stored
    by_key = {layer.name: layer for layer in model.layers} if layout == "legacy" else keras3_keys(model)
    stored = _conv_classifier(model, stored, by_key, layout, classifier)
    key_of = {id(layer): key for key, layer in by_key.items()}
    loaded, skipped, missing, nested = [], [], [], set()
    for layer in model.layers:
        if not layer.weights:
            continue
        arrays = stored.get(key_of[id(layer)])
        if arrays is None and layout == "keras3":
            arrays = _nested_keras3_arrays(layer, key_of[id(layer)], stored, nested)
        if arrays is None:
            (skipped if layer.name in HEAD_LAYERS else missing).append(layer.name)
            continue
        arrays = _fit_1x1(layer, arrays)
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(a.shape) for a in arrays]
        if expected != got:
            if layer.name in HEAD_LAYERS:
                skipped.append(layer.name)
                continue
            raise ValueError(f"Layer {layer.name!r} does not fit the weights file: the model has shapes {expected}, "
                             f"the file {got}. {received('weights', path)}")
        layer.set_weights(arrays)
        loaded.append(layer.name)
    head_keys = {key_of[id(layer)] for layer in model.layers if layer.name in HEAD_LAYERS}
    extra = [k for k in stored if (k not in by_key or not by_key[k].weights) and k not in HEAD_LAYERS
             and k != classifier and k not in head_keys and k not in nested
             and not k.startswith(KERAS_PREPROCESSING_PREFIXES)]
    if missing or extra:
        raise ValueError("The weights file is for another architecture: "
                         + (f"layers missing from the file: {missing[:5]}{'...' if len(missing) > 5 else ''}; "
                            if missing else "")
                         + (f"entries not in the model: {extra[:5]}{'...' if len(extra) > 5 else ''}; " if extra else "")
                         + received("weights", path))
    if skipped:
        warnings.warn(f"Weights file {os.path.basename(path)!r}: skipped {skipped} (the classifier does not fit "
                      f"num_classes or is not in the file); those layers keep their fresh initialization.",
                      stacklevel=3)
    return {"loaded": loaded, "skipped": skipped}


def imagenet_file(entry, include_top: bool, input_shape, kwargs) -> str:
    """Download (once, cached in ~/.keras/models) keras.applications' ImageNet file for `entry`.

    CNNZOO_WEIGHTS_URL points the base URL at a mirror; CNNZOO_CACHE_DIR replaces the Keras home as cache.
    """
    file_name, url, file_hash = entry.imagenet.locate(include_top, input_shape, kwargs)
    mirror = os.environ.get(WEIGHTS_URL_ENV)
    if mirror:
        url = mirror.rstrip("/") + "/" + file_name
    # get_file has no timeout and a black-holed connection would wait forever: bound every socket operation.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT if previous is None else previous)
    try:
        return keras.utils.get_file(file_name, url, cache_subdir="models", file_hash=file_hash,
                                     cache_dir=os.environ.get(CACHE_DIR_ENV))
    except Exception as error:  # get_file raises bare Exception subclasses for network errors
        raise WeightsDownloadError(
            f"Could not fetch the ImageNet weights for {entry.name!r} from {url} ({type(error).__name__}: "
            f"{str(error)[:200]}). Offline? Download {file_name} on a connected machine and pass its local path: "
            f"create_model({entry.name!r}, weights='/path/to/{file_name}'). "
            f"{received('weights', 'imagenet')}") from None
    finally:
        socket.setdefaulttimeout(previous)
