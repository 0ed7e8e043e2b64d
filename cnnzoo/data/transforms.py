"""Fast batch augmentation layers with the semantics of Keras 3's own, for tf.data pipelines on CPU.

Keras's RandomRotation/Zoom/Translation each resample the whole batch (three interpolations, three
reflections); `RandomAffine` composes them into one matrix per image and resamples once. RandomColorJitter goes
through an HSV round trip per pixel per step; `ColorJitter` does brightness and contrast as one multiply-add,
saturation from each pixel's max and min channel, and hue as one 3x3 rotation per image. RandomErasing draws
Gaussian noise for every pixel of every image; `RandomErasing` draws it only for the images it erases.
RandAugment computes all eleven operations on the whole batch and keeps one; `RandAugment` sends each image
only through the operation drawn for it.

Every layer takes a batch [B, H, W, 3] of pixels in 0..255 (uint8 or float) and returns float32 in 0..255.
Randomness is stateless: `layer.augment(images, seed)` with a [2] integer seed is a pure function, so a tf.data
pipeline can key it by batch (see `cnnzoo.data.augment_dataset`); calling the layer draws the seed from its own
`keras.random.SeedGenerator(seed)`. The Keras layers stay the reference they are tested against.
"""
from __future__ import annotations

import math
from typing import Sequence

import keras
import tensorflow as tf

from cnnzoo._checks import check_choice, check_float, check_int, received

_GRAY = (0.2989, 0.5870, 0.1140)  # the weights of keras.ops.image.rgb_to_grayscale (ITU-R 601)


def factor_range(name: str, value, *, low: float = -1.0, high: float = 1.0,
                 symmetric: bool = True) -> tuple[float, float]:
    """A (lower, upper) pair from a number (-v, v) (or (0, v) if not symmetric) or a pair; checked in range."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = float(value)
        pair = (-abs(value), abs(value)) if symmetric else (0.0, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        pair = tuple(sorted(float(check_float(name, v)) for v in value))
    else:
        raise ValueError(f"`{name}` must be a number or a (lower, upper) pair. {received(name, value)}")
    if pair[0] < low or pair[1] > high:
        raise ValueError(f"`{name}` must lie in [{low}, {high}]. {received(name, value)}")
    return pair


def _seed(seed: tf.Tensor, k: int) -> tf.Tensor:
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), k)


def _uniform(seed, k, shape, low, high) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, _seed(seed, k), minval=low, maxval=high)


class BatchAugmenter(keras.layers.Layer):
    """Base class: casts to float32, draws a seed, calls `augment(images, seed)`; identity when not training.

    These layers belong in the tf.data pipeline, not inside a model: a model that is saved or exported must not
    carry augmentation, so building one into a functional model raises a TypeError.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.seed = seed
        self._generator = keras.random.SeedGenerator(seed)

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, keras.KerasTensor) or (isinstance(inputs, dict) and any(
                isinstance(v, keras.KerasTensor) for v in inputs.values())):
            raise TypeError(f"{type(self).__name__} runs in the tf.data input pipeline, never inside a model "
                            "(a saved or exported model must not augment). Use "
                            "cnnzoo.data.augment_dataset(dataset, augmentation) instead.")
        return super().__call__(inputs, *args, **kwargs)

    def call(self, images, training=True):
        images = tf.cast(images, tf.float32)
        if not training:
            return images
        return self.augment(images, self._generator.next())

    def augment(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


# ---------------------------------------------------------------- geometry

def _identity(batch: tf.Tensor) -> tf.Tensor:
    return tf.tile(tf.eye(3)[None], [batch, 1, 1])


def _matrix(a0, a1, a2, b0, b1, b2) -> tf.Tensor:
    """[B, 3, 3] from the six affine entries (each [B]); maps output pixel (x, y) to input (x', y')."""
    zero, one = tf.zeros_like(a0), tf.ones_like(a0)
    return tf.stack([tf.stack([a0, a1, a2], -1), tf.stack([b0, b1, b2], -1), tf.stack([zero, zero, one], -1)], 1)


def rotation_matrix(angle: tf.Tensor, height, width) -> tf.Tensor:
    """Keras's RandomRotation matrix: rotate by `angle` radians about the image centre."""
    cx, cy = (tf.cast(width, tf.float32) - 1) / 2, (tf.cast(height, tf.float32) - 1) / 2
    cos, sin = tf.cos(angle), tf.sin(angle)
    return _matrix(cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos)


def zoom_matrix(zoom_x: tf.Tensor, zoom_y: tf.Tensor, height, width) -> tf.Tensor:
    """Keras's RandomZoom matrix: a zoom factor > 1 shows more of the scene (zooms out), about the centre."""
    w, h = tf.cast(width, tf.float32), tf.cast(height, tf.float32)
    zero = tf.zeros_like(zoom_x)
    return _matrix(zoom_x, zero, (w - 1) / 2 * (1 - zoom_x), zero, zoom_y, (h - 1) / 2 * (1 - zoom_y))


def translation_matrix(dx: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
    """Keras's RandomTranslation matrix: shift the content by (dx, dy) pixels."""
    one, zero = tf.ones_like(dx), tf.zeros_like(dx)
    return _matrix(one, zero, -dx, zero, one, -dy)


def shear_matrix(shear_x: tf.Tensor, shear_y: tf.Tensor) -> tf.Tensor:
    """Keras's RandomShear matrix (about the top-left corner, as Keras does)."""
    one, zero = tf.ones_like(shear_x), tf.zeros_like(shear_x)
    return _matrix(one, shear_x, zero, shear_y, one, zero)


def flip_matrix(flip_x: tf.Tensor, flip_y: tf.Tensor, height, width) -> tf.Tensor:
    """Mirror where `flip_x` / `flip_y` (bool [B]) are set."""
    sx = tf.where(flip_x, -1.0, 1.0)
    sy = tf.where(flip_y, -1.0, 1.0)
    w, h = tf.cast(width, tf.float32), tf.cast(height, tf.float32)
    zero = tf.zeros_like(sx)
    return _matrix(sx, zero, tf.where(flip_x, w - 1, 0.0), zero, sy, tf.where(flip_y, h - 1, 0.0))


def warp(images: tf.Tensor, matrices: tf.Tensor, *, fill_mode: str = "reflect", interpolation: str = "bilinear",
         fill_value: float = 0.0) -> tf.Tensor:
    """Resample float [B, H, W, C] through [B, 3, 3] output->input matrices, in one pass."""
    flat = tf.reshape(matrices, [-1, 9])[:, :8] / matrices[:, 2:3, 2]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=flat, output_shape=tf.shape(images)[1:3], fill_value=fill_value,
        interpolation=interpolation.upper(), fill_mode=fill_mode.upper())


class RandomAffine(BatchAugmenter):
    """Flip, rotation, zoom and translation fused into one resampling per image.

    Each argument follows the Keras layer of the same name, and the steps compose in this order (the order of
    a `keras.Sequential([RandomFlip, RandomRotation, RandomZoom, RandomTranslation])`):
        flip: None, "horizontal", "vertical" or "horizontal_and_vertical" (each axis with probability 0.5).
        rotation: fraction of a full turn, a number r for U(-r, r) or a (lower, upper) pair (RandomRotation).
        zoom: a number z for U(1 - z, 1 + z) or a pair (lower, upper) for U(1 + lower, 1 + upper); one factor
            for both axes (RandomZoom(height_factor) with width_factor=None); > 1 zooms out.
        translation: fraction of height/width, number or pair, drawn per axis (RandomTranslation).
        fill_mode, interpolation, fill_value: as in Keras ("reflect", "bilinear", 0).

    Example:
        >>> layer = RandomAffine(flip="horizontal", rotation=0.03, zoom=0.1, translation=0.1, seed=0)
        >>> out = layer(tf.zeros([8, 64, 64, 3], tf.uint8))  # float32 [8, 64, 64, 3]
    """

    def __init__(self, flip: str | None = None, rotation=0.0, zoom=0.0, translation=0.0, *,
                 fill_mode: str = "reflect", interpolation: str = "bilinear", fill_value: float = 0.0,
                 seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.flip = check_choice("flip", flip, (None, "horizontal", "vertical", "horizontal_and_vertical"))
        self.rotation = factor_range("rotation", rotation)
        self.zoom = factor_range("zoom", zoom)
        self.translation = factor_range("translation", translation)
        self.fill_mode = check_choice("fill_mode", fill_mode, ("reflect", "wrap", "constant", "nearest"))
        self.interpolation = check_choice("interpolation", interpolation, ("bilinear", "nearest"))
        self.fill_value = check_float("fill_value", fill_value)

    def matrices(self, batch, height, width, seed) -> tf.Tensor:
        matrix = _identity(batch)
        if self.flip is not None:
            horizontal = self.flip in ("horizontal", "horizontal_and_vertical")
            vertical = self.flip in ("vertical", "horizontal_and_vertical")
            coin = _uniform(seed, 0, [batch, 2], 0.0, 1.0) < 0.5
            matrix = matrix @ flip_matrix(coin[:, 0] & horizontal, coin[:, 1] & vertical, height, width)
        if self.rotation != (0.0, 0.0):
            angle = _uniform(seed, 1, [batch], *self.rotation) * 2 * math.pi
            matrix = matrix @ rotation_matrix(angle, height, width)
        if self.zoom != (0.0, 0.0):
            zoom = 1.0 + _uniform(seed, 2, [batch], *self.zoom)
            matrix = matrix @ zoom_matrix(zoom, zoom, height, width)
        if self.translation != (0.0, 0.0):
            shift = _uniform(seed, 3, [batch, 2], *self.translation)
            matrix = matrix @ translation_matrix(shift[:, 0] * tf.cast(width, tf.float32),
                                                 shift[:, 1] * tf.cast(height, tf.float32))
        return matrix

    def augment(self, images, seed):
        shape = tf.shape(images)
        only_flip = self.rotation == self.zoom == self.translation == (0.0, 0.0)
        if self.flip is None and only_flip:
            return images
        if only_flip:  # a mirror needs no interpolation: one gather of columns (rows), reversed per image
            coin = _uniform(seed, 0, [shape[0], 2], 0.0, 1.0) < 0.5
            for axis, active in ((2, self.flip in ("horizontal", "horizontal_and_vertical")),
                                 (1, self.flip in ("vertical", "horizontal_and_vertical"))):
                if active:
                    size = shape[axis]
                    index = tf.where(coin[:, axis - 1, None], tf.range(size - 1, -1, -1)[None], tf.range(size)[None])
                    images = tf.gather(images, index, axis=axis, batch_dims=1)
            return images
        matrices = self.matrices(shape[0], shape[1], shape[2], seed)
        return warp(images, matrices, fill_mode=self.fill_mode, interpolation=self.interpolation,
                    fill_value=self.fill_value)

    def get_config(self):
        return {**super().get_config(), "flip": self.flip, "rotation": self.rotation, "zoom": self.zoom,
                "translation": self.translation, "fill_mode": self.fill_mode,
                "interpolation": self.interpolation, "fill_value": self.fill_value}


# ---------------------------------------------------------------- colour

def saturate(images: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """Scale HSV saturation by `factor` [B] without leaving RGB: each pixel moves to or from its max channel.

    In HSV every channel is V - V * S * t(H), so S -> k * S is c -> V + k * (c - V) with V = max(r, g, b);
    capping k at V / (V - min) keeps S <= 1 (the same clip as Keras RandomSaturation, exact for k <= 1).
    """
    red, green, blue = images[..., 0:1], images[..., 1:2], images[..., 2:3]
    high = tf.maximum(tf.maximum(red, green), blue)   # faster than reduce_max over a 3-wide axis
    low = tf.minimum(tf.minimum(red, green), blue)
    factor = tf.minimum(factor[:, None, None, None], high / tf.maximum(high - low, 1e-3))
    return tf.maximum(high + factor * (images - high), 0.0)   # the cap puts the min at 0, up to rounding


def hue_matrix(turns: tf.Tensor) -> tf.Tensor:
    """[B, 3, 3]: rotate colours about the gray axis by `turns` of a circle (R -> G -> B when positive).

    HSV's hexagonal hue is the angle of a colour's projection on the plane normal to the gray axis, so this
    rotation shifts hue by `turns` (to within 0.01 turn on natural images) and keeps the gray value.
    """
    angle = 2 * math.pi * turns
    cos, sin = tf.cos(angle)[:, None, None], tf.sin(angle)[:, None, None]
    axis = tf.fill([3], 1 / math.sqrt(3.0))
    cross = tf.constant([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]]) / math.sqrt(3.0)
    return cos * tf.eye(3)[None] + sin * cross[None] + (1 - cos) * tf.tensordot(axis, axis, axes=0)[None]


class ColorJitter(BatchAugmenter):
    """Random brightness, contrast, saturation and hue without an HSV round trip (Keras RandomColorJitter's job).

    Steps, each skipped when None (RandomColorJitter's order, except that hue comes before saturation; the
    two commute in HSV):
        brightness: b adds U(-b, b) * 255 (a pair (lo, hi) adds U(lo, hi) * 255), as RandomBrightness.
        contrast: c scales each channel's deviation from its mean by U(1 - c, 1 + c) (pair: U(lo, hi)).
        saturation: s scales HSV saturation by U(1 - s, 1 + s) (pair: U(lo, hi)); 0 is grayscale.
        hue: h shifts HSV hue by U(-h, h) turns (pair: U(lo, hi)), h <= 0.5.
    Brightness, contrast and hue are one 3x3 matrix and offset per image (hue as a rotation about the gray
    axis, which matches the HSV shift to within about 0.01 turn), clipped to 0..255; saturation is exact in
    HSV terms but computed from each pixel's max and min channel. Keras clips after each step. Unlike Keras,
    a number gives a symmetric range: Keras's contrast_factor=c draws U(1, 1 + c) only, and its
    saturation_factor=s turns half the images gray.

    Example:
        >>> jitter = ColorJitter(brightness=0.2, contrast=0.2, saturation=0.3, hue=0.05, seed=0)
        >>> out = jitter(tf.zeros([8, 64, 64, 3], tf.uint8))
    """

    def __init__(self, brightness=None, contrast=None, saturation=None, hue=None, *, seed: int | None = None,
                 **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.brightness = None if brightness is None else factor_range("brightness", brightness)
        self.contrast = None if contrast is None else self._multiplier("contrast", contrast)
        self.saturation = None if saturation is None else self._multiplier("saturation", saturation)
        self.hue = None if hue is None else factor_range("hue", hue, low=-0.5, high=0.5)

    @staticmethod
    def _multiplier(name, value):
        if isinstance(value, (tuple, list)):
            return factor_range(name, value, low=0.0, high=10.0)
        value = check_float(name, value, minimum=0.0, maximum=1.0)
        return (1.0 - value, 1.0 + value)

    def augment(self, images, seed):
        batch = tf.shape(images)[0]
        # Brightness, contrast and hue are affine in RGB: one 3x3 matrix and offset per image, one pass.
        # Hue is moved before saturation (they commute in HSV), so saturation's max/min work comes last
        # and needs no upper clip: it keeps each pixel's max.
        matrix, offset = _identity(batch), tf.zeros([batch, 3])
        if self.brightness is not None:
            offset += _uniform(seed, 0, [batch, 1], *self.brightness) * 255.0
        if self.contrast is not None:
            factor = _uniform(seed, 1, [batch, 1], *self.contrast)
            mean = tf.reduce_mean(images, axis=[1, 2]) + offset
            matrix = matrix * factor[:, :, None]
            offset = factor * offset + (1 - factor) * mean
        if self.hue is not None:
            rotation = hue_matrix(_uniform(seed, 3, [batch], *self.hue))
            matrix, offset = rotation @ matrix, tf.linalg.matvec(rotation, offset)
        if self.brightness is not None or self.contrast is not None or self.hue is not None:
            if self.hue is None:   # a diagonal matrix: a broadcast multiply-add is cheaper than einsum
                images = images * tf.linalg.diag_part(matrix)[:, None, None, :] + offset[:, None, None, :]
            else:
                images = tf.einsum("bhwc,bdc->bhwd", images, matrix) + offset[:, None, None, :]
            images = tf.clip_by_value(images, 0.0, 255.0)
        if self.saturation is not None:
            images = saturate(images, _uniform(seed, 2, [batch], *self.saturation))
        return images

    def get_config(self):
        return {**super().get_config(), "brightness": self.brightness, "contrast": self.contrast,
                "saturation": self.saturation, "hue": self.hue}


# ---------------------------------------------------------------- erasing

def box_mask(height, width, x0, x1, y0, y1) -> tf.Tensor:
    """float32 [B, H, W, 1]: 1 where x0 <= x < x1 and y0 <= y < y1 (float bounds, [B] each), else 0.

    A float mask and a multiply-add select faster than tf.where, which is ~5x slower than arithmetic on CPU.
    """
    xs = tf.range(tf.cast(width, tf.float32))[None, None, :]
    ys = tf.range(tf.cast(height, tf.float32))[None, :, None]
    inside_x = tf.cast((xs >= x0[:, None, None]) & (xs < x1[:, None, None]), tf.float32)
    inside_y = tf.cast((ys >= y0[:, None, None]) & (ys < y1[:, None, None]), tf.float32)
    return (inside_x * inside_y)[..., None]


def tiled_noise(shape, tile: tuple[int, int], seed) -> tf.Tensor:
    """clip(N(0, 1) * 255, 0, 255) noise of `shape` [n, H, W, C], drawn for a `tile` and repeated.

    Any window no larger than the tile sees every value once, so an erased box that fits in the tile gets
    independent noise for a fraction of the cost of drawing every pixel.
    """
    tile_h, tile_w = tile
    noise = tf.random.stateless_normal([shape[0], tile_h, tile_w, shape[3]], seed)
    reps = [1, (shape[1] + tile_h - 1) // tile_h, (shape[2] + tile_w - 1) // tile_w, 1]
    noise = tf.tile(noise, reps)[:, :shape[1], :shape[2], :]
    return tf.clip_by_value(noise * 255.0, 0.0, 255.0)


class RandomErasing(BatchAugmenter):
    """Erase one random rectangle per image with probability `probability` (Zhong et al., 2017).

    The box follows Keras RandomErasing: width and height fractions are sqrt of two draws from U(*scale), the
    position uniform inside the image; the fill is `fill_value` or, for None, Keras's noise
    clip(N(0, 1) * 255, 0, 255). `probability` p equals Keras's `factor=(p, p)`.

    Example:
        >>> erase = RandomErasing(probability=0.25, seed=0)
        >>> out = erase(tf.zeros([8, 64, 64, 3], tf.uint8))
    """

    def __init__(self, probability: float = 0.25, scale=(0.02, 0.33), fill_value: float | None = None, *,
                 seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.probability = check_float("probability", probability, minimum=0.0, maximum=1.0)
        self.scale = factor_range("scale", scale, low=0.0, high=1.0, symmetric=False)
        self.fill_value = None if fill_value is None else check_float("fill_value", fill_value, minimum=0.0,
                                                                      maximum=255.0)

    def augment(self, images, seed):
        shape = tf.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        side = tf.sqrt(_uniform(seed, 0, [batch, 2], *self.scale))
        box_w = side[:, 0] * tf.cast(width, tf.float32)
        box_h = side[:, 1] * tf.cast(height, tf.float32)
        x0 = _uniform(seed, 1, [batch], 0.0, 1.0) * (tf.cast(width, tf.float32) - box_w)
        y0 = _uniform(seed, 2, [batch], 0.0, 1.0) * (tf.cast(height, tf.float32) - box_h)
        chosen = tf.where(_uniform(seed, 3, [batch], 0.0, 1.0) < self.probability)[:, 0]
        # Work only on the images actually erased: the full-batch noise is most of Keras's cost.
        picked = tf.gather(images, chosen)
        mask = box_mask(height, width, tf.gather(x0, chosen), tf.gather(x0 + box_w, chosen),
                        tf.gather(y0, chosen), tf.gather(y0 + box_h, chosen))
        if self.fill_value is None:
            side = math.sqrt(self.scale[1])
            tile = (tf.cast(tf.math.ceil(side * tf.cast(height, tf.float32)), tf.int32) + 1,
                    tf.cast(tf.math.ceil(side * tf.cast(width, tf.float32)), tf.int32) + 1)
            fill = tiled_noise(tf.shape(picked), tile, _seed(seed, 4))
        else:
            fill = self.fill_value
        erased = picked + mask * (fill - picked)
        return tf.tensor_scatter_nd_update(images, chosen[:, None], erased)

    def get_config(self):
        return {**super().get_config(), "probability": self.probability, "scale": self.scale,
                "fill_value": self.fill_value}


# ---------------------------------------------------------------- RandAugment

RAND_AUGMENT_OPS = ("shear", "translation", "rotation", "brightness", "color_degeneration", "contrast",
                    "sharpness", "posterization", "solarization", "auto_contrast", "equalization")


def _gray(images):
    return tf.reduce_sum(images * tf.constant(_GRAY), axis=-1, keepdims=True)


def sharpen(images, factor):
    """Keras RandomSharpness with a fixed per-image `factor` [B]: blend with a 3x3 smoothing (zero padded)."""
    a, b = 1.0 / 13.0, 5.0 / 13.0
    kernel = tf.tile(tf.constant([[a, a, a], [a, b, a], [a, a, a]])[:, :, None, None], [1, 1, 3, 1])
    smooth = tf.nn.depthwise_conv2d(images, kernel, [1, 1, 1, 1], "SAME")
    return images + (1.0 - 2.0 * factor[:, None, None, None]) * (smooth - images)


def posterize(images, bits):
    """Keep the top `bits` [B] bits of each (truncated) 8-bit value, as Keras RandomPosterization."""
    shift = tf.cast(8 - bits, tf.uint8)[:, None, None, None]
    values = tf.cast(images, tf.uint8)
    return tf.cast(tf.bitwise.left_shift(tf.bitwise.right_shift(values, shift), shift), tf.float32)


def solarize(images, addition, threshold):
    """Keras Solarization: add, clip, and invert the values at or above the threshold."""
    added = tf.clip_by_value(images + addition[:, None, None, None], 0.0, 255.0)
    inverted = tf.cast(added >= threshold[:, None, None, None], tf.float32)
    return added + inverted * (255.0 - 2.0 * added)


def auto_contrast(images):
    """Keras AutoContrast: stretch each image's channels to 0..255; constant channels stay as they are."""
    low = tf.reduce_min(images, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(images, axis=[1, 2], keepdims=True)
    flat = high <= low   # constant channels: scale 1 and offset 0, i.e. unchanged (decided per channel, not pixel)
    scale = tf.where(flat, 1.0, 255.0 / tf.maximum(high - low, 1e-12))
    low = tf.where(flat, 0.0, low)
    return tf.clip_by_value((images - low) * scale, 0.0, 255.0)


def equalize(images):
    """Histogram equalisation per image and channel (256 bins), Keras Equalization's formula.

    Keras equalises a batch with one histogram per channel over all images; this is its single-image result
    for every image at once (one bincount over image-channel-value ids).
    """
    shape = tf.shape(images)
    n = shape[0]
    values = tf.clip_by_value(tf.cast(images, tf.int32), 0, 255)
    values = tf.reshape(tf.transpose(values, [0, 3, 1, 2]), [n, 3, -1])                 # [n, 3, HW]
    ids = values + 256 * tf.reshape(tf.range(n * 3), [n, 3, 1])
    hist = tf.reshape(tf.math.bincount(tf.reshape(ids, [-1]), minlength=n * 3 * 256, maxlength=n * 3 * 256),
                      [n, 3, 256])
    cdf = tf.cumsum(hist, axis=-1)
    cdf_min = tf.reduce_min(tf.where(cdf > 0, cdf, tf.int32.max), axis=-1, keepdims=True)
    denominator = cdf[..., -1:] - cdf_min
    denominator = tf.where(denominator == 0, 1, denominator)
    lut = tf.clip_by_value(tf.round(tf.cast(cdf - cdf_min, tf.float32) * 255.0 /
                                    tf.cast(denominator, tf.float32)), 0.0, 255.0)
    keep = tf.math.count_nonzero(hist, axis=-1, keepdims=True) <= 1      # one value only: leave unchanged
    lut = tf.where(keep, tf.range(256, dtype=tf.float32), lut)           # select on the table, not the pixels
    out = tf.gather(lut, values, batch_dims=2)                                             # [n, 3, HW]
    return tf.transpose(tf.reshape(out, [n, 3, shape[1], shape[2]]), [0, 2, 3, 1])


class RandAugment(BatchAugmenter):
    """RandAugment (Cubuk et al., 2019) with Keras RandAugment's eleven operations and magnitudes.

    `num_ops` times, each image draws one operation uniformly; the batch is split by operation, each slice goes
    through its own operation only (the three geometric ones share one resampling call), and the slices are
    put back in order. Keras computes all eleven on the whole batch and keeps one, the same operation for the
    whole batch. `factor` f gives each operation Keras's range (0, f): rotation U(0, 360 f) degrees, shear and
    translation U(0, f), brightness + U(0, f) * 255, contrast U(1, 1 + f), 1-3 posterization bits, and so on.

    Example:
        >>> augment = RandAugment(num_ops=2, factor=0.5, seed=0)
        >>> out = augment(tf.zeros([8, 64, 64, 3], tf.uint8))
    """

    def __init__(self, num_ops: int = 2, factor: float = 0.5, *, ops: Sequence[str] = RAND_AUGMENT_OPS,
                 fill_mode: str = "reflect", interpolation: str = "bilinear", seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.num_ops = check_int("num_ops", num_ops, minimum=0, maximum=10)
        self.factor = check_float("factor", factor, minimum=0.0, maximum=1.0)
        for op in ops:
            check_choice("ops", op, RAND_AUGMENT_OPS)
        if not ops:
            raise ValueError(f"`ops` must name at least one operation. {received('ops', ops)}")
        self.ops = tuple(ops)
        self.fill_mode = check_choice("fill_mode", fill_mode, ("reflect", "wrap", "constant", "nearest"))
        self.interpolation = check_choice("interpolation", interpolation, ("bilinear", "nearest"))

    def _geometry_matrices(self, op, height, width, seed):
        """[n, 3, 3] matrices for images whose op is shear, translation or rotation (`op` [n]: 0, 1 or 2)."""
        n = tf.shape(op)[0]
        f = self.factor
        sign = tf.where(_uniform(seed, 10, [n], 0.0, 1.0) > 0.5, -1.0, 1.0)
        shear = _uniform(seed, 11, [n, 2], 0.0, f) * sign[:, None]
        shift = _uniform(seed, 12, [n, 2], 0.0, f)
        angle = _uniform(seed, 13, [n], 0.0, f * 360.0) * (math.pi / 180.0)
        candidates = tf.stack([
            shear_matrix(shear[:, 0], shear[:, 1]),
            translation_matrix(shift[:, 1] * tf.cast(width, tf.float32), shift[:, 0] * tf.cast(height, tf.float32)),
            rotation_matrix(angle, height, width)], axis=1)                                    # [n, 3, 3, 3]
        return tf.gather(candidates, op, batch_dims=1)

    def _colour(self, name, images, seed):
        n = tf.shape(images)[0]
        f = self.factor
        if name == "brightness":
            return tf.clip_by_value(images + _uniform(seed, 20, [n, 1, 1, 1], 0.0, f) * 255.0, 0.0, 255.0)
        if name == "color_degeneration":
            amount = _uniform(seed, 21, [n, 1, 1, 1], 0.0, f)
            return tf.clip_by_value(images + amount * (_gray(images) - images), 0.0, 255.0)
        if name == "contrast":
            factor = _uniform(seed, 22, [n, 1, 1, 1], 1.0, 1.0 + f)
            mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
            return tf.clip_by_value((images - mean) * factor + mean, 0.0, 255.0)
        if name == "sharpness":
            return tf.clip_by_value(sharpen(images, _uniform(seed, 23, [n], 0.0, f)), 0.0, 255.0)
        if name == "posterization":
            top = max(1, int(8 * f))
            bits = tf.random.stateless_uniform([n], _seed(seed, 24), 1, max(top, 2), dtype=tf.int32)
            return posterize(images, bits)
        if name == "solarization":
            return solarize(images, _uniform(seed, 25, [n], 0.0, f * 255.0),
                            _uniform(seed, 26, [n], 0.0, f * 255.0))
        if name == "auto_contrast":
            return auto_contrast(images)
        return equalize(images)

    def augment(self, images, seed, matrices=None):
        """Augment `images`; with `matrices` ([B, 3, 3] warps still to apply, e.g. RandomAffine's), geometric ops
        compose into them instead of resampling, and (images, matrices) is returned: the caller warps once.

        Colour operations then see the image before the pending warp; they are pointwise or use whole-image
        statistics, so the result differs from warping first only through pixels the warp moves out of view.
        """
        shape = tf.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        geometric = ("shear", "translation", "rotation")
        colour = [op for op in self.ops if op not in geometric]
        # Slice 0 holds every geometric op; slices 1.. one colour op each.
        slot = tf.constant([0 if op in geometric else 1 + colour.index(op) for op in self.ops])
        kind_of = tf.constant([geometric.index(op) if op in geometric else 0 for op in self.ops])
        for round_ in range(self.num_ops):
            round_seed = _seed(seed, 100 + round_)
            choice = tf.random.stateless_uniform([batch], _seed(round_seed, 0), 0, len(self.ops), dtype=tf.int32)
            positions = tf.dynamic_partition(tf.range(batch), tf.gather(slot, choice), 1 + len(colour))
            outputs = []
            for k, where in enumerate(positions):
                part = tf.gather(images, where)
                if k == 0:
                    if len(colour) < len(self.ops):
                        warps = self._geometry_matrices(tf.gather(kind_of, tf.gather(choice, where)), height,
                                                        width, _seed(round_seed, 1))
                        if matrices is None:
                            part = warp(part, warps, fill_mode=self.fill_mode, interpolation=self.interpolation)
                        else:
                            # Output->input maps compose left to right: first pending, then this op.
                            matrices = tf.tensor_scatter_nd_update(
                                matrices, where[:, None], tf.gather(matrices, where) @ warps)
                else:
                    part = self._colour(colour[k - 1], part, _seed(round_seed, 1 + k))
                outputs.append(part)
            images = tf.ensure_shape(tf.dynamic_stitch(positions, outputs), images.shape)
        return images if matrices is None else (images, matrices)

    def get_config(self):
        return {**super().get_config(), "num_ops": self.num_ops, "factor": self.factor, "ops": self.ops,
                "fill_mode": self.fill_mode, "interpolation": self.interpolation}
