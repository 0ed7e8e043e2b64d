"""Grad-CAM (Selvaraju et al. 2017): where in the image the evidence for a class lies.

For the feature maps `A_k` of a convolutional layer and the class score `y_c` (the logit, before the softmax):
weights `alpha_k = mean_ij d y_c / d A_k[i, j]`, heatmap `relu(sum_k alpha_k A_k)`, scaled to [0, 1] and resized
to the image. The layer is the deepest one whose feature map still has at least `min_cells` cells (a 1x1 map —
resnet18's last stage at 32 px — can only give a constant heatmap); the result says which layer it used.

Example:
    >>> heat = cnnzoo.explain.grad_cam(model, image)          # (H, W) floats in [0, 1]
    >>> heat.layer_name, heat.class_index                     # which layer and class it explains
    >>> picture = cnnzoo.explain.overlay(image, heat)         # uint8 RGB
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from cnnzoo._checks import check_float, check_int, received
from cnnzoo.introspect import classifier_layer, outputs_probabilities
from cnnzoo.layers.padding import Padding2D

__all__ = ["grad_cam", "overlay", "last_conv_layer", "Heatmap"]

MIN_CELLS = 4   # a feature map with fewer cells than this gives no spatial information worth showing


class Heatmap(np.ndarray):
    """A Grad-CAM heatmap: a float32 [H, W] array in [0, 1] that also records `layer_name` (the feature maps it
    was computed on), `class_index` (the class it explains) and `cells` (that layer's height x width)."""

    layer_name: str
    class_index: int
    cells: tuple

    def __array_finalize__(self, obj):
        for key in ("layer_name", "class_index", "cells"):
            setattr(self, key, getattr(obj, key, None))


def _feature_layers(model):
    """(layer, (height, width)) for every layer with a 4-D output (padding left out), last first."""
    found = []
    for layer in reversed(model.layers):
        # Padding adds border cells that carry no evidence of their own: explain the map it pads instead.
        if isinstance(layer, (keras.layers.InputLayer, keras.layers.ZeroPadding2D, Padding2D)):
            continue
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4:
            found.append((layer, (shape[1], shape[2])))
    return found


def last_conv_layer(model, *, min_cells: int = 1) -> keras.layers.Layer:
    """The deepest layer with a 4-D (feature map) output of at least `min_cells` cells (height x width, at the
    model's input size; an unknown size counts as large enough).

    Example:
        >>> last_conv_layer(cnnzoo.create_model("resnet18", input_shape=(32, 32, 3)), min_cells=4).name
        'conv4_block2_out'
    """
    check_int("min_cells", min_cells, minimum=1)
    return _deepest_with_cells(model, min_cells)


def _unwrap(model):
    """(preceding model or None, inner model) when `model` ends in a nested functional model that makes its
    output (Input -> augmentation -> zoo model, say): Grad-CAM needs the inner model's own layers."""
    if not isinstance(model, keras.Model) or not getattr(model, "outputs", None):
        return None, model
    history = getattr(model.outputs[0], "_keras_history", None)
    inner = history.operation if history is not None else None
    if not isinstance(inner, keras.Model) or inner is model or not getattr(inner, "outputs", None):
        return None, model
    nodes = [node for node in inner._inbound_nodes if node.outputs and node.outputs[0] is model.outputs[0]]
    if not nodes or len(nodes[0].input_tensors) != 1:
        return None, model
    before = keras.Model(model.inputs, nodes[0].input_tensors[0])
    deeper_before, innermost = _unwrap(inner)
    if deeper_before is None:
        return before, inner

    def chained(x, training=False):
        return deeper_before(before(x, training=training), training=training)

    return chained, innermost


def _score_model(model, layer):
    """A model from the input to (feature maps, class scores before any softmax)."""
    clf = classifier_layer(model)
    if outputs_probabilities(model) and clf is not None and clf.input is not None:
        # Scores before the softmax: the classifier's input times its kernel (softmax gradients saturate).
        inner = keras.Model(model.inputs, [layer.output, clf.input])

        def scores(images):
            maps, features = inner(images, training=False)
            logits = keras.ops.matmul(features, keras.ops.cast(clf.kernel, features.dtype))
            if clf.use_bias:
                logits = logits + keras.ops.cast(clf.bias, features.dtype)
            return maps, logits

        return scores
    inner = keras.Model(model.inputs, [layer.output, model.outputs[0]])
    return lambda images: inner(images, training=False)


def grad_cam(model, image, class_index: int | None = None, *, layer=None, layer_name: str | None = None,
             min_cells: int = MIN_CELLS) -> Heatmap:
    """Grad-CAM heatmap of `image` for `class_index` (default: the predicted class).

    Args:
        model: keras.Model (functional) taking raw images; a model wrapping a zoo model (Input -> augmentation
            -> model) is explained through the inner model's layers.
        image: one image [H, W, C] (or a batch of one), as the model takes it (raw 0..255 for zoo models).
        class_index: int or None (the model's top class).
        layer: str, a layer, or None: the feature maps to explain. None picks the deepest layer whose map has at
            least `min_cells` cells at this image's size. `layer_name=` is the same argument's older name.
        min_cells: int, the smallest feature map (height x width) the automatic choice accepts.

    Returns:
        Heatmap: np.ndarray [H, W] of float32 in [0, 1] at the image's resolution (all zeros when no location
        has positive evidence), with `.layer_name`, `.class_index` and `.cells` saying what it shows.

    Example:
        >>> heat = grad_cam(model, data_images[0], class_index=3)
        >>> heat.layer_name
        'conv4_block2_out'
    """
    array = np.asarray(image)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise ValueError("`image` must be one image [H, W, C] or a batch of one. "
                         + received("image.shape", tuple(np.shape(image))))
    if layer is not None and layer_name is not None:
        raise ValueError(f"Pass `layer` or its older name `layer_name`, not both. {received('layer_name', layer_name)}")
    argument = "layer" if layer is not None else "layer_name"
    layer = layer if layer is not None else layer_name
    check_int("min_cells", min_cells, minimum=1)
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. {received('model', type(model).__name__)}")
    before, model = _unwrap(model)
    batch = tf.convert_to_tensor(array[None].astype("float32"))
    if before is not None:
        batch = tf.convert_to_tensor(before(batch, training=False))
    if layer is None:
        layer = _deepest_with_cells(model, min_cells, batch)
    elif isinstance(layer, str):
        try:
            layer = model.get_layer(layer)
        except ValueError:
            raise ValueError(f"The model has no layer {layer!r}. " + received(argument, layer)) from None
    elif not isinstance(layer, keras.layers.Layer) or not any(layer is own for own in model.layers):
        raise ValueError("`layer` must be a layer name or one of the model's own layers. "
                         + received(argument, getattr(layer, "name", layer)))
    if len(layer.output.shape) != 4:
        raise ValueError(f"Layer {layer.name!r} has no 4-D feature-map output. " + received(argument, layer.name))
    scores_of = _score_model(model, layer)
    with tf.GradientTape() as tape:
        maps, scores = scores_of(batch)
        tape.watch(maps)
        num_classes = int(scores.shape[-1])
        if class_index is None:
            target = int(tf.argmax(scores[0]))
        else:
            target = check_int("class_index", class_index, minimum=0, maximum=num_classes - 1)
        score = scores[0, target]
    grads = tape.gradient(score, maps)
    if grads is None:
        raise ValueError(f"The class score does not depend on layer {layer.name!r}. "
                         + received(argument, layer.name))
    cells = (int(maps.shape[1]), int(maps.shape[2]))
    maps = tf.cast(maps[0], "float32")
    weights = tf.reduce_mean(tf.cast(grads[0], "float32"), axis=(0, 1))
    cam = tf.nn.relu(tf.reduce_sum(maps * weights, axis=-1))
    peak = tf.reduce_max(cam)
    cam = tf.where(peak > 0, cam / tf.maximum(peak, 1e-12), tf.zeros_like(cam))
    cam = tf.image.resize(cam[..., None], array.shape[:2], method="bilinear")[..., 0]
    heat = np.clip(cam.numpy(), 0.0, 1.0).astype("float32").view(Heatmap)
    heat.layer_name, heat.class_index, heat.cells = layer.name, target, cells
    return heat


def _deepest_with_cells(model, min_cells, batch=None):
    """The deepest 4-D layer whose map has >= min_cells cells; sizes the model leaves open are read from `batch`
    (or count as large enough without one). When every map is smaller: the deepest one."""
    candidates = _feature_layers(model)
    if not candidates:
        raise ValueError("The model has no layer with a 4-D feature-map output. " + received("model", model.name))
    if batch is not None and any(h is None or w is None for _, (h, w) in candidates):
        probe = keras.Model(model.inputs, [layer.output for layer, _ in candidates])
        outputs = probe(batch, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        candidates = [(layer, (int(out.shape[1]), int(out.shape[2]))) for (layer, _), out in zip(candidates, outputs)]
    for layer, (height, width) in candidates:
        if height is None or width is None or height * width >= min_cells:
            return layer
    return candidates[0][0]


def overlay(image, heatmap, *, alpha: float = 0.4, colormap: str = "jet") -> np.ndarray:
    """Blend a heatmap (in [0, 1], any size) over an image; returns uint8 RGB [H, W, 3].

    Example:
        >>> keras.utils.save_img("cam.png", overlay(image, grad_cam(model, image)))
    """
    import matplotlib

    alpha = check_float("alpha", alpha, minimum=0.0, maximum=1.0)
    try:
        cmap = matplotlib.colormaps[colormap]
    except KeyError:
        raise ValueError(f"Unknown matplotlib colormap. {received('colormap', colormap)}") from None
    picture = np.asarray(image)
    if picture.ndim == 2:
        picture = picture[..., None]
    if picture.ndim != 3:
        raise ValueError("`image` must be [H, W] or [H, W, C]. " + received("image.shape", picture.shape))
    if picture.shape[-1] == 1:
        picture = np.repeat(picture, 3, axis=-1)
    picture = picture[..., :3].astype("float32")
    if picture.max() <= 1.0:
        picture = picture * 255.0
    heat = np.asarray(heatmap, dtype="float32")
    if heat.ndim != 2:
        raise ValueError("`heatmap` must be 2-D. " + received("heatmap.shape", heat.shape))
    if heat.shape != picture.shape[:2]:
        heat = tf.image.resize(heat[..., None], picture.shape[:2], method="bilinear").numpy()[..., 0]
    colored = cmap(np.clip(heat, 0.0, 1.0))[..., :3] * 255.0
    return np.clip((1.0 - alpha) * picture + alpha * colored, 0, 255).astype("uint8")
