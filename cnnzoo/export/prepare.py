"""Turn a trained model into the inference model every export format is built from.

Two things a training model carries must not reach deployment: augmentation layers (random ops that tf2onnx and
TFLite cannot convert, and that leak `training=True` in Keras 3.15) and a mixed-precision policy (float16/bfloat16
compute is a training speed-up; exported graphs are float32 so every runtime gives the same numbers).
"""
from __future__ import annotations

import keras

from cnnzoo._checks import received
from cnnzoo.introspect import is_mixed

# Keras augmentation layers whose class name lacks "Random".
_AUGMENTATION_CLASSES = {"AugMix", "CutMix", "MixUp", "RandAugment", "Solarization"}
# cnnzoo's own augmentation layers (Augmentation, BatchAugmenter subclasses such as ColorJitter).
_CNNZOO_AUGMENTATION_MODULES = ("cnnzoo.data.augment", "cnnzoo.data.transforms")


@keras.saving.register_keras_serializable(package="cnnzoo")
class StrippedAugmentation(keras.layers.Layer):
    """Stands where an augmentation layer was: passes its input through (any call arguments are ignored)."""

    def call(self, inputs, *args, **kwargs):
        return inputs

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return input_shape


def is_augmentation(layer) -> bool:
    """True for a layer that only exists to augment training data.

    That is a class with "Random" in its name, a Keras augmentation layer (MixUp, CutMix, RandAugment, ...),
    a layer from `cnnzoo.data.augment` / `cnnzoo.data.transforms`, one flagged `_cnnzoo_augmentation = True`,
    or a Sequential/Functional model made only of such layers.
    """
    cls = type(layer)
    if "Random" in cls.__name__ or cls.__name__ in _AUGMENTATION_CLASSES:
        return True
    if isinstance(layer, StrippedAugmentation):
        return False
    if cls.__module__.startswith(_CNNZOO_AUGMENTATION_MODULES) or getattr(layer, "_cnnzoo_augmentation", False):
        return True
    if isinstance(layer, (keras.Sequential, keras.Model)) and _is_graph_model(layer):
        inner = [sub for sub in layer.layers if not isinstance(sub, keras.layers.InputLayer)]
        return bool(inner) and all(is_augmentation(sub) for sub in inner)
    return False


def _is_graph_model(model) -> bool:
    return isinstance(model, keras.Sequential) or type(model).__name__ == "Functional" or (
        isinstance(model, keras.Model) and hasattr(model, "_operations") and hasattr(model, "_nodes_by_depth"))


def _needs_rebuild(model) -> bool:
    for layer in _walk(model):
        if is_augmentation(layer) or is_mixed(layer):
            return True
    return False


def _walk(model):
    for layer in model.layers if hasattr(model, "layers") else []:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _walk(layer)


def augmentation_layers(model) -> list[str]:
    """Names of the augmentation layers inside `model` (nested models included)."""
    return [layer.name for layer in _walk(model) if is_augmentation(layer)]


def inference_model(model: keras.Model) -> keras.Model:
    """Return `model` without augmentation layers and with float32 compute everywhere.

    The input model is left untouched; layers that need no change are shared (not copied), so the result
    costs no extra weights memory. A model that needs nothing removed or recast is returned as is.

    Example:
        >>> clean = inference_model(keras.Sequential([keras.Input((8, 8, 3)), keras.layers.RandomFlip(),
        ...                                           keras.layers.Flatten(), keras.layers.Dense(2)]))
        >>> [type(layer).__name__ for layer in clean.layers]
        ['StrippedAugmentation', 'Flatten', 'Dense']
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. {received('model', type(model).__name__)}")
    if not model.built:
        raise ValueError("`model` must be built (called once or created with an Input) before export. "
                         f"{received('model', model.name)}")
    if not _needs_rebuild(model):
        return model
    if not _is_graph_model(model):
        raise ValueError("`model` is a subclassed model with augmentation layers or a mixed-precision policy; "
                         "export can only rewrite Functional/Sequential models. Build the inference model "
                         f"yourself and export that. {received('model', type(model).__name__)}")
    copies: list[tuple[keras.layers.Layer, keras.layers.Layer]] = []

    def clone(layer):
        if is_augmentation(layer):
            return StrippedAugmentation(name=layer.name)
        if isinstance(layer, keras.Model) and _is_graph_model(layer) and _needs_rebuild(layer):
            return keras.models.clone_model(layer, clone_function=clone)
        if is_mixed(layer) or (isinstance(layer, keras.Model) and _needs_rebuild(layer)):
            config = layer.get_config()
            config["dtype"] = "float32"
            fresh = layer.__class__.from_config(config)
            copies.append((layer, fresh))
            return fresh
        return layer  # shared: same weights, no copy

    clean = keras.models.clone_model(model, clone_function=clone)
    for old, new in copies:
        new.set_weights(old.get_weights())
    return clean
