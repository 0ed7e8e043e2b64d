"""FeaturePyramid: the Feature Pyramid Network neck (Lin et al. 2017) on a backbone's stage feature maps.

For levels C_i (finest first), P_top = lateral(C_top) and, going down, P_i = lateral(C_i) + upsample(P_{i+1}); each
P_i is then smoothed by a 3x3 convolution. `extra_levels` adds coarser maps by stride-2 3x3 convolutions (RetinaNet's
and FCOS' P6 from P5, P7 from ReLU(P6)).

Upsampling is nearest-neighbour to the lateral map's own height and width (a gather of rows and columns), so odd or
unknown input sizes never give a shape error: where the coarser map doubled is one pixel too large (65 px in: 33 and
17) its last row is dropped, where it is too small (valid-padding backbones) an edge row repeats. For the usual
exact halving it equals `UpSampling2D(2)`. The graph is plain Conv2D/Gather/Add, so it converts to TFLite and ONNX.

Example:
    >>> backbone = cnnzoo.create_model("resnet18", features_only=True, input_shape=(None, None, 3))
    >>> pyramid = FeaturePyramid(channels=128)(backbone.outputs)     # [P2, P3, P4, P5], 128 channels each
"""
from __future__ import annotations

import keras
from keras import layers, ops

from cnnzoo._checks import check_int, received
from cnnzoo.layers.resize import resize_nearest_to

__all__ = ["FeaturePyramid"]


@keras.saving.register_keras_serializable(package="cnnzoo")
class FeaturePyramid(layers.Layer):
    """FPN neck: called on a list of feature maps (finest first, each half the size of the one before), returns
    `[P_1, ..., P_n]` plus `extra_levels` coarser maps, all with `channels` channels.

    Args:
        channels: int, width of every output level (256 in the paper; 64-128 suit small backbones).
        extra_levels: int, stride-2 3x3 convs on top of the coarsest level (2: RetinaNet's P6 and P7).

    Sublayers are named `lateral_{i}`, `smooth_{i}`, `extra_{k}` (i from 0, finest level first).
    """

    def __init__(self, channels: int = 256, extra_levels: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.channels = check_int("channels", channels, minimum=1)
        self.extra_levels = check_int("extra_levels", extra_levels, minimum=0)
        self.laterals: list = []
        self.smooths: list = []
        self.extras: list = []

    def _check_inputs(self, shapes):
        if not isinstance(shapes, (list, tuple)) or not shapes or any(
                not isinstance(s, (list, tuple)) or len(s) != 4 for s in shapes):
            raise ValueError("FeaturePyramid is called on a list of 4D feature maps (N, H, W, C), finest first. "
                             f"{received('inputs', shapes)}")

    def build(self, input_shape):
        shapes = [tuple(s) for s in input_shape] if isinstance(input_shape, (list, tuple)) and input_shape and \
            isinstance(input_shape[0], (list, tuple)) else input_shape
        self._check_inputs(shapes)
        init = keras.initializers.HeNormal()
        for i, shape in enumerate(shapes):
            lateral = layers.Conv2D(self.channels, 1, kernel_initializer=init, name=f"lateral_{i}")
            lateral.build(shape)
            smooth = layers.Conv2D(self.channels, 3, padding="same", kernel_initializer=init, name=f"smooth_{i}")
            smooth.build(shape[:3] + (self.channels,))
            self.laterals.append(lateral)
            self.smooths.append(smooth)
        top = shapes[-1][:3] + (self.channels,)
        for k in range(self.extra_levels):
            extra = layers.Conv2D(self.channels, 3, strides=2, padding="same", kernel_initializer=init,
                                  name=f"extra_{k}")
            extra.build(top)
            self.extras.append(extra)
        self.built = True

    def call(self, inputs):
        inputs = list(inputs)
        merged = [None] * len(inputs)
        merged[-1] = self.laterals[-1](inputs[-1])
        for i in range(len(inputs) - 2, -1, -1):
            lateral = self.laterals[i](inputs[i])
            merged[i] = lateral + resize_nearest_to(merged[i + 1], lateral)
        outputs = [smooth(p) for smooth, p in zip(self.smooths, merged)]
        x = outputs[-1]
        for k, extra in enumerate(self.extras):
            x = extra(x if k == 0 else ops.relu(x))
            outputs.append(x)
        return outputs

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        out = [s[:3] + (self.channels,) for s in shapes]
        h, w = shapes[-1][1], shapes[-1][2]
        for _ in range(self.extra_levels):
            h = None if h is None else (h + 1) // 2
            w = None if w is None else (w + 1) // 2
            out.append((shapes[-1][0], h, w, self.channels))
        return out

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "extra_levels": self.extra_levels}
