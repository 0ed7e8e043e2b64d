"""Shared checks of a cnnzoo family against its keras.applications twin (params, MACs, weight files, contract).

Every family test calls these with its own table, so the checks are written once:

    check_params("densenet121", KA.DenseNet121)
    check_weights("densenet121", KA.DenseNet121, {}, 64, True, "legacy", tmp_path)
"""
from __future__ import annotations

import math

import h5py
import keras
import numpy as np
from keras.src.legacy.saving import legacy_h5_format
from keras.src.saving import serialization_lib

import cnnzoo
from cnnzoo.layers import Preprocessing

KA = keras.applications
KERAS_PREPROCESSING = (keras.layers.Normalization, keras.layers.Rescaling)


def randomize(model, seed=0):
    """Random values in every variable (BN moving statistics too), so a misassigned weight shows in the logits."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if isinstance(w, keras.Variable) and not w.trainable and "moving" not in w.path:
            continue  # keras' Normalization mean/variance/count: the preprocessing, left alone
        value = rng.normal(0, 0.05, w.shape)
        if "variance" in w.path:
            value = rng.uniform(0.5, 1.5, w.shape)
        elif "gamma" in w.path:
            value = rng.uniform(0.8, 1.2, w.shape)
        w.assign(value.astype(w.dtype))


def save(model, path, layout):
    """Write `model`'s weights as Keras 3 `.weights.h5` ("keras3") or keras.applications' legacy HDF5 ("legacy")."""
    if layout == "keras3":
        model.save_weights(path)
    else:
        with h5py.File(path, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return str(path)


def rel_diff(a, b):
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12)


def keras_count(model):
    """keras' parameter count without its in-model preprocessing (Normalization statistics)."""
    extra = sum(math.prod(w.shape) for layer in model.layers if isinstance(layer, KERAS_PREPROCESSING)
                for w in layer.weights)
    return model.count_params() - extra


def _leaf_layers(model):
    """model.layers with nested models (keras' ConvNeXt stem and downsampling Sequentials) opened."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def independent_macs(model):
    """Multiply-adds from the formulas, written apart from cnnzoo.profile, over every layer of a model."""
    total = 0
    for layer in _leaf_layers(model):
        cls = type(layer).__name__
        if cls not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense"):
            continue
        out, inp = layer.output.shape, layer.input.shape
        spatial = math.prod(out[1:-1])
        if cls == "Dense":
            total += spatial * inp[-1] * layer.units
        elif cls == "DepthwiseConv2D":
            total += spatial * out[-1] * layer.kernel_size[0] * layer.kernel_size[1]
        elif cls == "SeparableConv2D":
            mid = inp[-1] * layer.depth_multiplier
            total += spatial * mid * layer.kernel_size[0] * layer.kernel_size[1] + spatial * mid * out[-1]
        else:
            total += spatial * out[-1] * layer.kernel_size[0] * layer.kernel_size[1] * inp[-1] // layer.groups
    return total


def default_size(name):
    return cnnzoo.registry.get_entry(name).default_input_size


def check_params(name, ka_builder, macs=True, **kwargs):
    """cnnzoo's and keras' parameter counts (and MACs) at the default size, 1000 classes (built, never called).

    The keras model is built once; `macs` also requires `cnnzoo.profile` and `model_info` to equal a
    layer-by-layer count of it (grouped convolutions divided by their groups).
    """
    size = default_size(name)
    ka_model = ka_builder(weights=None, input_shape=(size, size, 3), classes=1000, **kwargs)
    expected = keras_count(ka_model)
    expected_macs = independent_macs(ka_model) if macs else None
    if macs:
        assert cnnzoo.profile(ka_model).macs == expected_macs
    del ka_model
    keras.backend.clear_session()
    info = cnnzoo.model_info(name)
    assert info.params == expected, (name, info.params, expected)
    if macs:
        assert info.macs == expected_macs, (name, info.macs, expected_macs)
    keras.backend.clear_session()
    return expected


def check_weights(name, ka_builder, kwargs, size, top, layout, tmp_path, overrides=None):
    """A weights file saved from the keras model (BN statistics randomized) gives cnnzoo the same logits."""
    ka_model = ka_builder(weights=None, include_top=top, input_shape=(size, size, 3), classifier_activation=None,
                          pooling=None if top else "avg", **kwargs)
    randomize(ka_model)
    path = save(ka_model, tmp_path / (f"{name}.weights.h5" if layout == "keras3" else f"{name}.h5"), layout)
    ours = cnnzoo.create_model(name, include_top=top, input_shape=(size, size, 3), weights=path, preprocessing=None,
                               classifier_activation=None, pooling="avg", **(overrides or {}))
    x = np.random.default_rng(1).uniform(-1, 1, (2, size, size, 3)).astype("float32")
    diff = rel_diff(ours(x, training=False), ka_model(x, training=False))
    assert diff < 1e-5, (name, layout, diff)
    keras.backend.clear_session()


def check_imagenet(name, ka_module, preprocess_input, include_top=True, size=224):
    """`weights="imagenet"` names keras.applications' file and brings the preprocessing those weights expect."""
    entry = cnnzoo.registry.get_entry(name)
    assert entry.imagenet is not None, name
    file_name, url, _ = entry.imagenet.locate(include_top, (size, size, 3), dict(entry.defaults))
    assert url.endswith(file_name) and url.startswith("https://storage.googleapis.com/")
    raw = np.random.default_rng(3).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    layer = Preprocessing(**entry.imagenet.preprocessing)
    np.testing.assert_allclose(layer(raw), preprocess_input(raw.copy()), atol=1e-4)
    return file_name


def check_contract(name, width, small=64):
    """keras.applications' applications_test contract: 1/4 channels at any size, 123 px, pooling, serialization."""
    for channels in (1, 4):
        entry = cnnzoo.registry.get_entry(name)
        prep = "default" if Preprocessing(**entry.preprocessing).supports_channels(channels) else None
        model = cnnzoo.create_model(name, include_top=False, pooling=None, input_shape=(None, None, channels),
                                    preprocessing=prep)
        assert tuple(model.output_shape) == (None, None, None, width), (name, channels, model.output_shape)
        keras.backend.clear_session()
    model = cnnzoo.create_model(name, include_top=False, pooling=None, input_shape=(123, 123, 3))
    assert model.output_shape[-1] == width
    assert np.all(np.isfinite(model(np.zeros((1, 123, 123, 3), "float32"), training=False)))
    for pooling in ("avg", "max"):
        pooled = cnnzoo.create_model(name, include_top=False, pooling=pooling, input_shape=(small, small, 3))
        assert tuple(pooled.output_shape) == (None, width)
    model = cnnzoo.create_model(name, num_classes=10, input_shape=(small, small, 3))
    restored = serialization_lib.deserialize_keras_object(serialization_lib.serialize_keras_object(model))
    assert len(restored.weights) == len(model.weights)
    keras.backend.clear_session()
