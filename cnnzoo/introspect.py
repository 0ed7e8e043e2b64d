"""Model introspection: the one place that answers questions about a Keras model's structure.

Every consumer (training, fine-tuning, evaluation, Grad-CAM, export, validation, profiling) asks here: which
layers it has (nested models included), which layer is its classifier, what its head computes (softmax
probabilities, sigmoid scores or logits), and whether it runs under mixed precision.

The head's activation is read from the graph itself, following the output tensor back through nested models,
so it survives `.keras` round trips, head replacement and wrapping (Input -> augmentation -> zoo model).

Example:
    >>> model = cnnzoo.create_model("resnet18", num_classes=3, input_shape=(32, 32, 3))   # doctest: +SKIP
    >>> head_activation(model), outputs_probabilities(model), classifier_layer(model).name  # doctest: +SKIP
    ('softmax', True, 'predictions')
"""
from __future__ import annotations

import keras

CLASSIFIER_NAME = "predictions"   # the zoo's classifier layer (keras.applications' name)

# Layers that pass their input through unchanged at inference, so the head activation lies behind them.
_PASSTHROUGH = (keras.layers.Dropout, keras.layers.Identity, keras.layers.ActivityRegularization,
                keras.layers.GaussianNoise, keras.layers.GaussianDropout, keras.layers.AlphaDropout,
                keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D, keras.layers.SpatialDropout3D)


def all_layers(model) -> list:
    """Every layer of `model`, nested models' layers included (the nested model itself too), input to output."""
    return list(model._flatten_layers(include_self=False, recursive=True))


def batchnorm_layers(model) -> list:
    """Every BatchNormalization layer, nested ones included."""
    return [layer for layer in all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]


def _producer(model):
    """The layer that produces `model`'s (single) output, or None for a model without a graph."""
    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) != 1:
        return None
    history = getattr(outputs[0], "_keras_history", None)
    return history.operation if history is not None else None


def _output_path(model):
    """Layers from the output back to the first one that decides the head: nested models are entered,
    pass-through layers (Dropout, Identity) skipped. Yields layers, last-applied first."""
    layer = _producer(model) if isinstance(model, keras.Model) else None
    if layer is None:                   # a Sequential never called on an Input: its layers, last first
        for last in reversed(getattr(model, "layers", None) or []):
            if isinstance(last, keras.Model):
                yield from _output_path(last)
                return
            yield last
            if not isinstance(last, _PASSTHROUGH):
                return
        return
    seen = 0
    while layer is not None and seen < 1000:
        seen += 1
        if isinstance(layer, keras.Model):
            yield from _output_path(layer)
            return
        yield layer
        if not isinstance(layer, _PASSTHROUGH):
            return
        layer = _input_layer_of(layer)


def _input_layer_of(layer):
    inbound = getattr(layer, "_inbound_nodes", None)
    if not inbound:
        return None
    tensors = inbound[0].input_tensors
    if len(tensors) != 1:
        return None
    history = getattr(tensors[0], "_keras_history", None)
    return history.operation if history is not None else None


def _activation_name(activation) -> str | None:
    if activation is None:
        return None
    if isinstance(activation, str):
        return activation
    return getattr(activation, "__name__", None) or type(activation).__name__.lower()


def head_activation(model) -> str | None:
    """What the model's last computing layer applies: "softmax", "sigmoid", "linear" (logits), another
    activation's name, or None when the output comes from a layer with no activation attribute
    (a Lambda, a custom layer): unknown.

    Example:
        >>> head_activation(cnnzoo.create_model("vgg11", classifier_activation=None))   # doctest: +SKIP
        'linear'
    """
    for layer in _output_path(model):
        if isinstance(layer, _PASSTHROUGH):
            continue
        if isinstance(layer, keras.layers.Softmax):
            return "softmax"
        if isinstance(layer, keras.layers.InputLayer):
            return None
        if hasattr(layer, "activation"):
            name = _activation_name(layer.activation)
            return "linear" if name in (None, "linear") else name
        return None
    return None


def outputs_probabilities(model) -> bool:
    """True when the model ends in a softmax, so its outputs are class probabilities."""
    return head_activation(model) == "softmax"


def returns_logits(model) -> bool:
    """True when the model's head is linear: its outputs are logits (export and evaluation add the softmax)."""
    return head_activation(model) == "linear"


def classifier_layer(model):
    """The classifier: the layer named "predictions" (the zoo's), else the last Dense layer, nested models
    included; None when there is none."""
    dense = None
    for layer in all_layers(model):
        if layer.name == CLASSIFIER_NAME and isinstance(layer, keras.layers.Dense):
            return layer
        if isinstance(layer, keras.layers.Dense):
            dense = layer
    return dense


def output_classifier(model):
    """The Dense layer that produces the model's output (through pass-through and activation layers), or None
    when the output is not a Dense's: a feature extractor (`include_top=False`), say."""
    for layer in _output_path(model):
        if isinstance(layer, _PASSTHROUGH):
            continue
        if isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):
            layer = _input_layer_of(layer)
            while isinstance(layer, keras.Model):
                layer = _producer(layer)
        return layer if isinstance(layer, keras.layers.Dense) else None
    return None


def has_classifier(model) -> bool:
    """True when the model's output is a classifier's: one rank-2 output made by a Dense layer (through its
    activation) or by a softmax. A feature extractor (`include_top=False`: pooled features or feature maps)
    is not one."""
    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) != 1 or len(outputs[0].shape) != 2:
        return False
    return output_classifier(model) is not None or head_activation(model) == "softmax"


def is_segmenter(model) -> bool:
    """True when the model's (first) output is per pixel: [B, H, W, classes] (`cnnzoo.create_segmenter`'s)."""
    shape = model.outputs[0].shape if getattr(model, "outputs", None) else model.output_shape
    return len(shape) == 4


def is_multilabel(model) -> bool:
    """True when the model scores each class on its own: one rank-2 output through a sigmoid
    (`create_model(..., classifier_activation="sigmoid")`, multi-label classification)."""
    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) != 1 or len(outputs[0].shape) != 2:
        return False
    return head_activation(model) == "sigmoid"


def num_outputs(model) -> int:
    """Units of the model's (first) output."""
    return int(model.outputs[0].shape[-1]) if getattr(model, "outputs", None) else int(model.output_shape[-1])


def is_mixed(layer) -> bool:
    """True when `layer` computes in another dtype than its variables (a mixed-precision policy)."""
    policy = getattr(layer, "dtype_policy", None)
    return policy is not None and policy.compute_dtype != policy.variable_dtype


def is_mixed_precision(model) -> bool:
    """True when any layer of `model` (nested included) runs under a mixed-precision policy."""
    return any(is_mixed(layer) for layer in all_layers(model) if not isinstance(layer, keras.layers.InputLayer))


def policy_names(model) -> set:
    """The dtype policy names in use, InputLayers left out."""
    return {layer.dtype_policy.name for layer in all_layers(model) if hasattr(layer, "dtype_policy")
            and not isinstance(layer, keras.layers.InputLayer)}
