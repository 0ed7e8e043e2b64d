"""Augmentation policies, MixUp/CutMix, and applying them to a tf.data stream of batches.

`augmentation(policy)` builds an `Augmentation` layer from a named policy or a list of steps; the layer runs
in the input pipeline (never inside a model, so nothing that is saved or exported augments). The steps are the
fast layers of `cnnzoo.data.transforms` (tested against Keras's own) or any Keras layer you pass.

Policies (on raw 0..255 pixels):
    "none"      nothing (images become float32)
    "light"     horizontal flip, rotation +-0.03 turn (~11 degrees), zoom +-10 %, translation +-10 %
    "standard"  light + colour jitter (brightness 0.2, contrast 0.2, saturation 0.3, hue 0.02)
                + random erasing (p = 0.25)
    "heavy"     standard + RandAugment (2 ops, magnitude 0.3), before the colour jitter

Segmentation (batches of (images, int masks [B, H, W])): every step that moves pixels (flip, rotation, zoom,
translation, so also zoom-in crops, and RandAugment's shear/translate/rotate) moves the mask through the same
matrix, with nearest neighbour (no new class values) and 255 (ignore) where the warp looks outside the image;
colour steps, erasing and colour-only Keras layers change the image only. MixUp and CutMix are not defined
for masks.
"""
from __future__ import annotations

from typing import Any, Sequence

import keras
import tensorflow as tf

from cnnzoo._checks import check_choice, check_float, check_int, received
from cnnzoo.data import transforms as T
from cnnzoo.data.imagedata import ImageData
from cnnzoo.options import AUGMENT_POLICIES as POLICIES  # defined once, for the CLI and tune too

_GEOMETRIC = ("flip", "rotation", "zoom", "translation")
STEPS = (*_GEOMETRIC, "color_jitter", "erasing", "rand_augment", "grayscale")

_LIGHT = [("flip", {"mode": "horizontal"}), ("rotation", {"factor": 0.03}), ("zoom", {"factor": 0.1}),
          ("translation", {"factor": 0.1})]
_JITTER = ("color_jitter", {"brightness": 0.2, "contrast": 0.2, "saturation": 0.3, "hue": 0.02})
_ERASING = ("erasing", {"probability": 0.25, "scale": (0.02, 0.25)})
_RAND_AUGMENT = ("rand_augment", {"num_ops": 2, "factor": 0.3})
IGNORE = 255   # the mask value of pixels without a label (cnnzoo.data.masks.IGNORE)
# Keras layers that change pixel values but never move pixels: with masks they touch the image only.
_IMAGE_ONLY_KERAS = ("RandomBrightness", "RandomContrast", "RandomGrayscale", "RandomColorJitter",
                     "RandomSaturation", "RandomHue", "RandomColorDegeneration", "RandomSharpness",
                     "RandomPosterization", "RandomGaussianBlur", "RandomInvert", "Solarization", "AutoContrast",
                     "Equalization", "RandomErasing")


def policy_steps(policy: str) -> list[tuple[str, dict]]:
    """The (step, options) list a named policy stands for."""
    check_choice("policy", policy, POLICIES)
    return {"none": [], "light": list(_LIGHT), "standard": [*_LIGHT, _JITTER, _ERASING],
            "heavy": [*_LIGHT, _RAND_AUGMENT, _JITTER, _ERASING]}[policy]


def _normalise_step(step: Any) -> tuple[str, dict] | keras.layers.Layer:
    if isinstance(step, keras.layers.Layer):
        return step
    if isinstance(step, str):
        step = (step, {})
    elif isinstance(step, dict):
        options = dict(step)
        step = (options.pop("name", None), options)
    if not (isinstance(step, (tuple, list)) and len(step) == 2 and isinstance(step[1], dict)):
        raise ValueError("Each augmentation step must be a step name, a (name, options) pair, a dict with "
                         f"'name', or a keras layer. Received: policy step={step!r}")
    check_choice("policy step", step[0], STEPS)
    return step[0], dict(step[1])


def _build_layers(steps: Sequence[Any], seed: int | None) -> list[keras.layers.Layer]:
    """Turn steps into layers, fusing each run of consecutive geometric steps into one RandomAffine."""
    layers, geometry = [], {}

    def close_geometry():
        if geometry:
            layers.append(T.RandomAffine(**geometry, seed=seed))
            geometry.clear()

    for raw in steps:
        step = _normalise_step(raw)
        if isinstance(step, keras.layers.Layer):
            close_geometry()
            layers.append(step)
            continue
        name, options = step
        if name in _GEOMETRIC:
            if name in geometry:  # the same step twice cannot share one matrix slot: start a new RandomAffine
                close_geometry()
            if name == "flip":
                geometry["flip"] = options.pop("mode", "horizontal")
            else:
                geometry[name] = options.pop("factor", 0.1)
            if options:
                raise ValueError(f"Unknown options for augmentation step {name!r}: {sorted(options)}. "
                                 f"{received('policy step', raw)}")
            continue
        close_geometry()
        if name == "color_jitter":
            layers.append(T.ColorJitter(**options, seed=seed))
        elif name == "erasing":
            layers.append(T.RandomErasing(**options, seed=seed))
        elif name == "rand_augment":
            layers.append(T.RandAugment(**options, seed=seed))
        elif name == "grayscale":
            layers.append(keras.layers.RandomGrayscale(factor=options.get("factor", 0.1), seed=seed))
    close_geometry()
    return layers


# ---------------------------------------------------------------- MixUp and CutMix

def mixup(images, labels, alpha: float, seed):
    """MixUp (Zhang et al., 2018) on a batch with one-hot `labels`: pair each image with a shuffled partner.

    lambda ~ Beta(alpha, alpha) per image; images and labels are mixed by the same lambda, as keras.layers.MixUp.
    """
    batch = tf.shape(images)[0]
    partner = _permutation(batch, T._seed(seed, 0))
    weight = _beta([batch], alpha, T._seed(seed, 1))
    images = weight[:, None, None, None] * images + (1 - weight[:, None, None, None]) * tf.gather(images, partner)
    labels = weight[:, None] * labels + (1 - weight[:, None]) * tf.gather(labels, partner)
    return images, labels


def cutmix(images, labels, alpha: float, seed):
    """CutMix (Yun et al., 2019): paste a box from a shuffled partner; labels mix by the pasted area.

    lambda ~ Beta(alpha, alpha); the box has sides sqrt(1 - lambda) * (W, H) at a uniform position inside the
    image (as keras.layers.CutMix), and the label weight is the area actually kept.
    """
    shape = tf.shape(images)
    batch, height, width = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    partner = _permutation(batch, T._seed(seed, 0))
    ratio = tf.sqrt(1.0 - _beta([batch], alpha, T._seed(seed, 1)))
    box_w, box_h = ratio * width, ratio * height
    x0 = T._uniform(seed, 2, [batch], 0.0, 1.0) * (width - box_w)
    y0 = T._uniform(seed, 3, [batch], 0.0, 1.0) * (height - box_h)
    mask = T.box_mask(shape[1], shape[2], x0, x0 + box_w, y0, y0 + box_h)
    images = images + mask * (tf.gather(images, partner) - images)
    kept = 1.0 - tf.reduce_mean(mask, axis=[1, 2, 3])
    labels = kept[:, None] * labels + (1 - kept[:, None]) * tf.gather(labels, partner)
    return images, labels


def _permutation(n, seed):
    return tf.argsort(tf.random.stateless_uniform([n], seed))


def _beta(shape, alpha, seed):
    a = tf.random.stateless_gamma(shape, T._seed(seed, 0), alpha=alpha)
    b = tf.random.stateless_gamma(shape, T._seed(seed, 1), alpha=alpha)
    return a / tf.maximum(a + b, 1e-12)


# ---------------------------------------------------------------- the pipeline layer

class Augmentation(keras.layers.Layer):
    """A sequence of augmentation layers, plus optional batch-level MixUp/CutMix, for the input pipeline.

    Called on images it returns augmented float32 images (0..255). Called on {"images", "labels"} (one-hot or
    soft labels) it also applies MixUp/CutMix and returns the mixed dict, the Keras 3 preprocessing convention.
    With both `mixup` and `cutmix`, each batch gets one of the two with probability 1/2 (timm's switch).

    Example:
        >>> augment = cnnzoo.data.augmentation("standard", seed=0)
        >>> out = augment(tf.zeros([8, 64, 64, 3], tf.uint8))           # float32 [8, 64, 64, 3]
    """

    def __init__(self, layers: Sequence[keras.layers.Layer] = (), *, mixup: float | None = None,
                 cutmix: float | None = None, seed: int | None = None, policy: str | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.steps = list(layers)
        self.mixup = None if mixup is None else check_float("mixup", mixup, minimum=0.0, exclusive_minimum=True)
        self.cutmix = None if cutmix is None else check_float("cutmix", cutmix, minimum=0.0,
                                                               exclusive_minimum=True)
        self.seed = seed
        self.policy = policy
        self._generator = keras.random.SeedGenerator(seed)

    @property
    def mixes(self) -> bool:
        return self.mixup is not None or self.cutmix is not None

    def __call__(self, inputs, *args, **kwargs):
        values = inputs.values() if isinstance(inputs, dict) else [inputs]
        if any(isinstance(v, keras.KerasTensor) for v in values):
            raise TypeError("cnnzoo augmentation runs in the tf.data input pipeline, never inside a model (a "
                            "saved or exported model must not augment). Use "
                            "cnnzoo.data.augment_dataset(dataset, augmentation) instead.")
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=True, seed=None):
        images = inputs["images"] if isinstance(inputs, dict) else inputs
        images = tf.cast(images, tf.float32)
        if not training:
            return {**inputs, "images": images} if isinstance(inputs, dict) else images
        seed = self._generator.next() if seed is None else seed
        if isinstance(inputs, dict) and "segmentation_masks" in inputs:
            images, masks = self.augment_pairs(images, inputs["segmentation_masks"], seed)
            return {**inputs, "images": images, "segmentation_masks": masks}
        images = self.augment_images(images, seed)
        if not isinstance(inputs, dict):
            return images
        labels = inputs.get("labels")
        if labels is not None and self.mixes:
            images, labels = self.mix(images, tf.cast(labels, tf.float32), seed)
        return {**inputs, "images": images, **({"labels": labels} if labels is not None else {})}

    def augment_images(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """float32 images through every step; cnnzoo steps use `seed`, Keras layers their own generator.

        A RandomAffine's warp is held back while a RandAugment follows it, so RandAugment's shear, translation
        and rotation compose into the same matrix: one resampling instead of up to 1 + num_ops.
        """
        images = tf.cast(images, tf.float32)
        pending, warp_options = None, {}
        for i, layer in enumerate(self.steps):
            step_seed = T._seed(seed, i)
            warps = isinstance(layer, T.RandomAffine) and any(
                factor != (0.0, 0.0) for factor in (layer.rotation, layer.zoom, layer.translation))
            if warps and i + 1 < len(self.steps) and isinstance(self.steps[i + 1], T.RandAugment):
                shape = tf.shape(images)
                pending = layer.matrices(shape[0], shape[1], shape[2], step_seed)
                warp_options = dict(fill_mode=layer.fill_mode, interpolation=layer.interpolation,
                                    fill_value=layer.fill_value)
                continue
            if pending is not None and isinstance(layer, T.RandAugment):
                images, pending = layer.augment(images, step_seed, pending)
                images = T.warp(images, pending, **warp_options)
                pending = None
            elif isinstance(layer, T.BatchAugmenter):
                images = layer.augment(images, step_seed)
            else:
                images = tf.cast(layer(images, training=True), tf.float32)
        return images

    def check_masks(self) -> None:
        """Raise a ValueError unless every step can run on (image, mask) pairs (see `augment_pairs`)."""
        if self.mixes:
            raise ValueError("MixUp and CutMix mix class labels and are not defined for segmentation masks. "
                             f"Received: mixup={self.mixup}, cutmix={self.cutmix}")
        for layer in self.steps:
            if not isinstance(layer, T.BatchAugmenter) and type(layer).__name__ not in _IMAGE_ONLY_KERAS:
                raise ValueError(f"Cannot tell whether {type(layer).__name__} moves pixels, so it cannot augment "
                                 "an image and its mask alike; use cnnzoo steps ('flip', 'rotation', 'zoom', "
                                 "'translation', 'rand_augment') for geometry. "
                                 f"Received: augment step={type(layer).__name__}")

    def augment_pairs(self, images: tf.Tensor, masks: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(float32 images, int32 masks) from images [B, H, W, 3] and int masks [B, H, W] (or [B, H, W, 1]).

        A step that moves pixels warps the mask by the image's matrix, with nearest neighbour and 255 (ignore)
        where the warp looks outside the image; the image keeps the step's own interpolation and fill. Colour
        steps and erasing change the image only.
        """
        self.check_masks()
        images = tf.cast(images, tf.float32)
        channel = masks.shape.rank == 4
        labels = tf.cast(masks if channel else masks[..., None], tf.float32)
        for i, layer in enumerate(self.steps):
            step_seed = T._seed(seed, i)
            shape = tf.shape(images)
            if isinstance(layer, T.RandomAffine):
                if layer.flip is None and layer.rotation == layer.zoom == layer.translation == (0.0, 0.0):
                    continue
                matrices = layer.matrices(shape[0], shape[1], shape[2], step_seed)
                images = T.warp(images, matrices, fill_mode=layer.fill_mode, interpolation=layer.interpolation,
                                fill_value=layer.fill_value)
            elif isinstance(layer, T.RandAugment):
                images, matrices = layer.augment(images, step_seed, T._identity(shape[0]))
                images = T.warp(images, matrices, fill_mode=layer.fill_mode, interpolation=layer.interpolation)
            elif isinstance(layer, T.BatchAugmenter):
                images = layer.augment(images, step_seed)
                continue
            else:
                images = tf.cast(layer(images, training=True), tf.float32)
                continue
            labels = T.warp(labels, matrices, fill_mode="constant", interpolation="nearest", fill_value=IGNORE)
        labels = tf.cast(labels, tf.int32)
        return images, (labels if channel else labels[..., 0])

    def mix(self, images, labels, seed):
        """MixUp or CutMix (or one of them per batch when both are set) with float `labels` [B, classes]."""
        seed = T._seed(seed, 1000)
        if self.mixup is not None and self.cutmix is not None:
            coin = T._uniform(seed, 0, [], 0.0, 1.0) < 0.5
            return tf.cond(coin, lambda: mixup(images, labels, self.mixup, T._seed(seed, 1)),
                           lambda: cutmix(images, labels, self.cutmix, T._seed(seed, 2)))
        if self.mixup is not None:
            return mixup(images, labels, self.mixup, T._seed(seed, 1))
        return cutmix(images, labels, self.cutmix, T._seed(seed, 2))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "policy": self.policy, "mixup": self.mixup, "cutmix": self.cutmix,
                "seed": self.seed, "steps": [type(layer).__name__ for layer in self.steps]}

    def __repr__(self):
        steps = ", ".join(type(layer).__name__ for layer in self.steps) or "none"
        return f"Augmentation(policy={self.policy!r}, steps=[{steps}], mixup={self.mixup}, cutmix={self.cutmix})"


def augmentation(policy: str | Sequence[Any] = "standard", *, seed: int | None = None,
                 mixup: float | None = None, cutmix: float | None = None) -> Augmentation:
    """An augmentation layer for the input pipeline, from a named policy or a list of steps.

    Args:
        policy: "none", "light", "standard", "heavy" (see the module docstring), or a list of steps: a name
            ("flip", "rotation", "zoom", "translation", "color_jitter", "erasing", "rand_augment",
            "grayscale"), a (name, options) pair such as ("rotation", {"factor": 0.05}), or any Keras layer
            (e.g. `keras.layers.RandomContrast(0.2)`). Consecutive flip/rotation/zoom/translation steps are
            fused into one resampling.
        seed: int or None; fixes the random stream.
        mixup: MixUp's Beta alpha (e.g. 0.2), applied when the layer is called on {"images", "labels"}.
        cutmix: CutMix's Beta alpha (e.g. 1.0), likewise.

    Example:
        >>> augment = cnnzoo.data.augmentation("light", seed=0)
        >>> augment = cnnzoo.data.augmentation(["flip", ("rotation", {"factor": 0.1}), "color_jitter"])
    """
    if seed is not None:
        check_int("seed", seed)
    if isinstance(policy, str):
        steps, name = policy_steps(policy), policy
    elif isinstance(policy, (list, tuple)):
        steps, name = list(policy), "custom"
    elif isinstance(policy, keras.layers.Layer):
        steps, name = [policy], "custom"
    else:
        raise ValueError(f"`policy` must be one of {POLICIES} or a list of steps. {received('policy', policy)}")
    return Augmentation(_build_layers(steps, seed), mixup=mixup, cutmix=cutmix, seed=seed, policy=name)


def augment_dataset(dataset, augment: Any = "standard", *, mixup: float | None = None,
                    cutmix: float | None = None, num_classes: int | None = None, seed: int | None = None,
                    one_hot: bool = False) -> tf.data.Dataset:
    """Apply augmentation (and MixUp/CutMix) to a batched stream of (images, int labels).

    Segmentation streams (an ImageData with `task="segmentation"`, or batches whose labels are int masks
    [B, H, W]) are augmented jointly: the mask follows every step that moves pixels (nearest neighbour, 255 =
    ignore outside the image) and is untouched by colour steps; see the module docstring.

    Args:
        dataset: an `ImageData` (its `.train` is used) or a tf.data.Dataset of batched (images [B, H, W, 3]
            uint8 or float 0..255, int labels [B] or int masks [B, H, W]).
        augment: a policy name, a list of steps (see `augmentation`), an `Augmentation` / Keras layer, or None.
        mixup, cutmix: Beta alphas; either one turns labels into soft one-hot vectors.
        num_classes: needed for one-hot labels; taken from an ImageData when not given.
        seed: int or None; with an int the augmentation of every batch in every epoch is reproducible (each
            batch draws its own stateless seed, so parallel mapping does not change the result).
        one_hot: return one-hot labels even without MixUp/CutMix (e.g. for label smoothing).

    Returns:
        tf.data.Dataset of (images float32 [B, H, W, 3] in 0..255, labels): int32 [B] class ids, or float32
        [B, num_classes] (soft) one-hot vectors when mixup, cutmix or one_hot is set; for segmentation int32
        masks of the input's shape. Prefetched.

    Example:
        >>> train = cnnzoo.data.augment_dataset(data, "standard", mixup=0.2, seed=0)  # doctest: +SKIP
        >>> model.fit(train, validation_data=data.val)                                 # doctest: +SKIP
        >>> seg_train = cnnzoo.data.augment_dataset(seg_data, "light", seed=0)        # doctest: +SKIP
    """
    segmentation = False
    if isinstance(dataset, ImageData):
        num_classes = dataset.num_classes if num_classes is None else num_classes
        segmentation = dataset.task == "segmentation"
        dataset = dataset.train
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"`dataset` must be an ImageData or a tf.data.Dataset. Received: dataset={dataset!r}")
    segmentation = segmentation or _holds_masks(dataset)
    if seed is not None:
        check_int("seed", seed)
    if augment is None or isinstance(augment, Augmentation):
        layer = augment or Augmentation([], seed=seed, policy="none")
    elif isinstance(augment, keras.layers.Layer):
        layer = Augmentation([augment], seed=seed, policy="custom")
    else:
        layer = augmentation(augment, seed=seed)
    mixing = dict(mixup=mixup if mixup is not None else layer.mixup,
                  cutmix=cutmix if cutmix is not None else layer.cutmix)
    if mixing != {"mixup": layer.mixup, "cutmix": layer.cutmix}:
        layer = Augmentation(layer.steps, **mixing, seed=seed, policy=layer.policy)
    if segmentation:
        if one_hot:
            raise ValueError("`one_hot` is for class labels; segmentation masks stay class indices. "
                             "Received: one_hot=True")
        layer.check_masks()
        return _augment_pairs(dataset, layer, seed)
    soft = one_hot or layer.mixes
    if soft:
        if num_classes is None:
            raise ValueError("`num_classes` is needed for one-hot labels (mixup, cutmix or one_hot=True). "
                             "Received: num_classes=None")
        num_classes = check_int("num_classes", num_classes, minimum=2)

    def apply(batch, batch_seed):
        images, labels = batch
        images = layer.augment_images(images, batch_seed)
        if soft:
            labels = tf.one_hot(tf.cast(labels, tf.int32), num_classes, dtype=tf.float32)
            if layer.mixes:
                images, labels = layer.mix(images, labels, batch_seed)
        else:
            labels = tf.cast(labels, tf.int32)
        return images, labels

    # One stateless seed per batch, different every epoch, fixed by `seed` across runs.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    paired = tf.data.Dataset.zip((dataset, seeds))
    return paired.map(apply, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _holds_masks(dataset: tf.data.Dataset) -> bool:
    """Whether a batched stream's labels are integer masks [B, H, W] (or [B, H, W, 1]), not class ids."""
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], tf.TensorSpec)):
        return False
    shape, dtype = spec[1].shape, spec[1].dtype
    rank_ok = shape.rank == 3 or (shape.rank == 4 and shape[-1] == 1)
    return bool(rank_ok and (dtype.is_integer or dtype == tf.bool))


def _augment_pairs(dataset: tf.data.Dataset, layer: Augmentation, seed: int | None) -> tf.data.Dataset:
    """`augment_dataset` for (images, masks) batches: `layer.augment_pairs` with one stateless seed per batch."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    paired = tf.data.Dataset.zip((dataset, seeds))
    return paired.map(lambda batch, batch_seed: layer.augment_pairs(batch[0], batch[1], batch_seed),
                      num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
