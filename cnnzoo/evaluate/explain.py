"""Grad-CAM (Selvaraju et al. 2017): where in the image the evidence for a class lies.

For the feature maps `A_k` of the last convolutional stage and the class score `y_c` (the logit, before the
softmax): weights `alpha_k = mean_ij d y_c / d A_k[i, j]`, heatmap `relu(sum_k alpha_k A_k)`, scaled to [0, 1]
and resized to the image.

Example:
    >>> heat = cnnzoo.explain.grad_cam(model, image)          # (H, W) floats in [0, 1]
    >>> picture = cnnzoo.explain.overlay(image, heat)         # uint8 RGB
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from cnnzoo._checks import check_float, check_int, received

__all__ = ["grad_cam", "overlay", "last_conv_layer"]


def last_conv_layer(model) -> keras.layers.Layer:
    """The last layer with a 4-D (feature map) output: the end of the last convolutional stage."""
    for layer in reversed(model.layers):
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4 and not isinstance(layer, keras.layers.InputLayer):
            return layer
    raise ValueError("The model has no layer with a 4-D feature-map output. " + received("model", model.name))


def _score_model(model, layer):
    """A model from the input to (feature maps, class scores before any softmax)."""
    from cnnzoo.introspect import classifier_layer, outputs_probabilities

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


def grad_cam(model, image, class_index: int | None = None, *, layer_name: str | None = None) -> np.ndarray:
    """Grad-CAM heatmap of `image` for `class_index` (default: the predicted class).

    Args:
        model: keras.Model (functional) taking raw images.
        image: one image [H, W, C] (or a batch of one), as the model takes it (raw 0..255 for zoo models).
        class_index: int or None (the model's top class).
        layer_name: str or None (the last layer with a 4-D output, i.e. the last convolutional stage).

    Returns:
        np.ndarray [H, W] of float32 in [0, 1], at the image's resolution (all zeros when no location has
        positive evidence).

    Example:
        >>> heat = grad_cam(model, data_images[0], class_index=3)
    """
    array = np.asarray(image)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise ValueError("`image` must be one image [H, W, C] or a batch of one. "
                         + received("image.shape", tuple(np.shape(image))))
    if layer_name is None:
        layer = last_conv_layer(model)
    else:
        try:
            layer = model.get_layer(layer_name)
        except ValueError:
            raise ValueError(f"The model has no layer {layer_name!r}. "
                             + received("layer_name", layer_name)) from None
        if len(layer.output.shape) != 4:
            raise ValueError(f"Layer {layer_name!r} has no 4-D feature-map output. "
                             + received("layer_name", layer_name))
    scores_of = _score_model(model, layer)
    batch = tf.convert_to_tensor(array[None].astype("float32"))
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
                         + received("layer_name", layer.name))
    maps = tf.cast(maps[0], "float32")
    weights = tf.reduce_mean(tf.cast(grads[0], "float32"), axis=(0, 1))
    cam = tf.nn.relu(tf.reduce_sum(maps * weights, axis=-1))
    peak = tf.reduce_max(cam)
    cam = tf.where(peak > 0, cam / tf.maximum(peak, 1e-12), tf.zeros_like(cam))
    cam = tf.image.resize(cam[..., None], array.shape[:2], method="bilinear")[..., 0]
    return np.clip(cam.numpy(), 0.0, 1.0).astype("float32")


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
