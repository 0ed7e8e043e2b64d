"""Semantic segmentation: a zoo backbone's stage features -> FPN neck -> semantic head -> per-pixel classes.

The head is Panoptic FPN's semantic branch (Kirillov et al. 2019): every pyramid level goes through 3x3
conv-BN-ReLU blocks, 2x upsampling after each, until it is at 1/4 of the input, and the levels are summed. Class
logits at the input size come from that sum in one of two ways, before a float32 softmax:

- "bilinear" (the paper's): a 1x1 conv gives logits at 1/4 size, resized bilinearly to the input size. Smooth,
  but a structure thinner than 4 px (a pen stroke in a small image) is blurred away: on digit scenes at 64 px
  even perfect 1/4-size class maps, resized this way, top out at mIoU ~0.80.
- "transposed" (sub-pixel convolution, Shi et al. 2016): a Conv2DTranspose with kernel = stride = 4 maps each
  1/4-size cell of the merged features to its own learned 4x4 block of logits (the same as a 1x1 conv to
  16x the classes followed by depth-to-space), cut to the input size from the top-left. Full-resolution detail
  for the price of one 1x1 conv: on digit scenes it raised held-out mIoU from 0.56 to 0.64 at the same cost.

The model takes raw 0..255 pixels (the backbone's `Preprocessing` layer comes first) of any size and returns
probabilities [B, H, W, num_classes].

Layer names: the backbone's own, `neck_fpn` (the `FeaturePyramid`), `head_p{level}_{k}_conv/_bn/_relu`,
`head_sum`, `head_logits`, `head_upsample`, `probabilities`. Fine-tuning groups: the backbone's stages, "neck",
"head", so `cnnzoo.finetune` trains the new neck and head first with the backbone frozen.

Example:
    >>> model = cnnzoo.create_segmenter("mobilenet_v2_035", num_classes=11, input_shape=(None, None, 3))
    >>> model(np.zeros((1, 65, 97, 3), "float32")).shape
    TensorShape([1, 65, 97, 11])
"""
from __future__ import annotations

import keras
from keras import layers

from cnnzoo._checks import check_choice, check_int, received
from cnnzoo.layers.pyramid import FeaturePyramid
from cnnzoo.layers.resize import ResizeLike

NECKS = ("fpn",)
UPSAMPLINGS = ("bilinear", "transposed")
# The head's levels: C2..C5 (strides 4..32), merged at stride 4; `head_stride=2` adds C1 and merges at stride 2
# (thin structures in small images: digit strokes a few pixels wide).
OUT_INDICES = {4: (1, 2, 3, 4), 2: (0, 1, 2, 3, 4)}
HEAD_STRIDES = (4, 2)


def _default_channels(backbone: keras.Model) -> int:
    """256 as in the paper for wide backbones (median level width >= 512: ResNet-50), 128 for mid-size ones
    (ResNet-18), 64 for small ones (MobileNets at low alpha): the neck should not outweigh the backbone."""
    import statistics

    median = statistics.median(int(t.shape[-1]) for t in backbone.outputs)
    return 256 if median >= 512 else 128 if median >= 192 else 64


def _conv_bn_relu(x, filters: int, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def create_segmenter(backbone, num_classes: int, *, neck: str = "fpn", input_shape=(None, None, 3),
                     weights: str | None = None, backbone_weights: str | None = None, channels: int | None = None,
                     head_channels: int | None = None, upsampling: str = "bilinear", head_stride: int = 4,
                     preprocessing="default", **backbone_options) -> keras.Model:
    """A semantic segmenter on a zoo backbone: features -> FPN -> semantic head -> per-pixel probabilities.

    Args:
        backbone: a zoo name (built with `features_only=True`, levels C2..C5, or C1..C5 with `head_stride=2`)
            or such a features model.
        num_classes: int >= 2, classes including background.
        neck: "fpn".
        input_shape: (height, width, channels); None height/width take any size.
        weights: None or a `.weights.h5` file of a whole segmenter (same backbone and options).
        backbone_weights: None, "imagenet" or a weights file for the backbone alone (with a name).
        channels: FPN width (default: 256, 128 or 64 by the backbone's median level width; see `_default_channels`).
        head_channels: width of the semantic head's convs (default: half of `channels`, >= 32).
        upsampling: "bilinear" (1x1 conv, then a parameter-free resize of the 1/4-size logits) or "transposed"
            (a learned kernel-4, stride-4 Conv2DTranspose from the merged features: full-resolution logits, for
            thin structures and small images; see the module docstring).
        head_stride: 4 (Panoptic FPN: levels C2..C5 merged at 1/4 of the input) or 2 (C1..C5, merged at 1/2).
        preprocessing: as `create_model`'s ("default": the backbone's, so the model takes raw pixels).
        **backbone_options: family options for a named backbone (e.g. `alpha=`).

    Example:
        >>> model = create_segmenter("resnet18", num_classes=3, input_shape=(64, 64, 3))
        >>> model.output_shape
        (None, 64, 64, 3)
    """
    from cnnzoo.registry import create_model, feature_info

    check_int("num_classes", num_classes, minimum=2)
    check_choice("neck", neck, NECKS)
    check_choice("upsampling", upsampling, UPSAMPLINGS)
    check_choice("head_stride", head_stride, HEAD_STRIDES)
    indices = OUT_INDICES[head_stride]
    if channels is not None:
        check_int("channels", channels, minimum=1)
    if head_channels is not None:
        check_int("head_channels", head_channels, minimum=1)
    if isinstance(backbone, str):
        features = create_model(backbone, features_only=True, out_indices=indices, input_shape=input_shape,
                                weights=backbone_weights, preprocessing=preprocessing, **backbone_options)
    elif isinstance(backbone, keras.Model):
        if backbone_options or backbone_weights is not None:
            raise ValueError("`backbone_options` and `backbone_weights` apply to a backbone given by name; this one "
                             f"is already built. {received('backbone', backbone.name)}")
        features = backbone
    else:
        raise TypeError(f"`backbone` must be a zoo name or a features model. {received('backbone', backbone)}")
    info = feature_info(features)
    if [f.index for f in info] != list(indices):
        wanted = ", ".join(f"C{i + 1}" for i in indices)
        raise ValueError(f"With head_stride={head_stride} the segmenter needs the backbone's levels {wanted} "
                         f"(out_indices={indices}); this one has {[f.name for f in info]}. "
                         f"{received('backbone', features.name)}")
    width = channels or _default_channels(features)
    head_width = head_channels or max(32, width // 2)

    images = features.inputs[0]
    pyramid = FeaturePyramid(channels=width, name="neck_fpn")(features.outputs)
    fine = pyramid[0]
    branches = []
    base = indices[0]
    for level, p in zip(indices, pyramid):
        x = p
        steps = max(1, level - base)   # (head_stride 4) stride 8 -> one 2x step to stride 4, 16 -> two, 32 -> three
        for k in range(steps):
            x = _conv_bn_relu(x, head_width, f"head_p{level + 1}_{k}")
            if level > base:
                # each step doubles; the last one lands exactly on the finest level's size (odd sizes included)
                target = fine if k == steps - 1 else pyramid[level - base - k - 1]
                x = ResizeLike("nearest", name=f"head_p{level + 1}_{k}_up")([x, target])
        branches.append(x)
    x = layers.Add(name="head_sum")(branches)
    if upsampling == "transposed":
        logits = layers.Conv2DTranspose(num_classes, head_stride, strides=head_stride, name="head_logits")(x)
        logits = ResizeLike("crop", name="head_upsample")([logits, images])
    else:
        logits = layers.Conv2D(num_classes, 1, name="head_logits")(x)
        logits = ResizeLike("bilinear", name="head_upsample")([logits, images])
    probabilities = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    name = f"{features.name}_{neck}_segmenter"
    model = keras.Model(images, probabilities, name=name)
    if weights is not None:
        if not isinstance(weights, str):
            raise TypeError(f"`weights` must be None or a file path. {received('weights', weights)}")
        model.load_weights(weights)
    return model
