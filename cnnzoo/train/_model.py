"""Model surgery shared by the training code: rebuilding a model under a dtype policy or a distribution strategy,
and replacing the classifier head. Questions about a model's structure are answered by `cnnzoo.introspect`."""
from __future__ import annotations

import contextlib

import keras

from cnnzoo._checks import check_int, received
from cnnzoo.introspect import all_layers, classifier_layer, head_activation


def _set_dtype(layer_configs, policy, keep_float32):
    for entry in layer_configs:
        cfg = entry.get("config", {})
        if entry.get("class_name") == "InputLayer":
            continue
        if "layers" in cfg:  # a nested functional / sequential model
            _set_dtype(cfg["layers"], policy, keep_float32)
        name = cfg.get("name", entry.get("name"))
        cfg["dtype"] = "float32" if name in keep_float32 else policy


def _float32_tail(model) -> set:
    """Names of the classifier and every layer after it: they stay float32 so the softmax is float32."""
    clf = classifier_layer(model)
    names, seen = set(), False
    for layer in model.layers:
        if clf is not None and layer is clf:
            seen = True
        if seen:
            names.add(layer.name)
    return names


def rebuild(model, *, policy: str = "float32", strategy=None):
    """Rebuild `model` from its config with every layer under `policy` (the classifier and what follows it stay
    float32), creating its variables inside `strategy.scope()` when given, and copy the weights over.

    The global dtype policy is not touched. Models that cannot be rebuilt from their config (subclassed models)
    raise a `ValueError`.
    """
    try:
        config = model.get_config()
        if "layers" not in config:
            raise NotImplementedError
    except NotImplementedError:
        raise ValueError("Mixed precision and distribution strategies rebuild the model from its config, which "
                         "needs a functional or Sequential model. Build a subclassed model under the policy / "
                         "strategy scope yourself. " + received("model", type(model).__name__)) from None
    _set_dtype(config["layers"], policy, _float32_tail(model))
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        new = model.__class__.from_config(config)
    new.set_weights(model.get_weights())
    for old_layer, new_layer in zip(all_layers(model), all_layers(new)):
        new_layer.trainable = old_layer.trainable
    return new


def replace_head(model, num_classes: int, *, seed: int | None = None):
    """Return a model with a freshly initialised classifier for `num_classes` classes (same activation, float32).

    Example:
        >>> model5 = replace_head(model10, 5)
    """
    check_int("num_classes", num_classes, minimum=1)
    clf = classifier_layer(model)
    if clf is None:
        raise ValueError("The model has no classifier Dense layer (named 'predictions') to replace. "
                         + received("model", model.name))
    if clf is not model.layers[-1] and not isinstance(model.layers[-1], (keras.layers.Softmax,
                                                                         keras.layers.Activation)):
        raise ValueError("The classifier must be the model's last layer (or be followed only by its "
                         f"activation). Received: model with last layer {model.layers[-1].name!r}")
    activation = clf.activation
    if model.layers[-1] is not clf:
        activation = head_activation(model) if head_activation(model) in ("softmax", "sigmoid") else None
    head = keras.layers.Dense(num_classes, activation=activation, name="predictions", dtype="float32",
                              kernel_initializer=keras.initializers.GlorotUniform(seed=seed))
    return keras.Model(model.inputs, head(clf.input), name=model.name)
