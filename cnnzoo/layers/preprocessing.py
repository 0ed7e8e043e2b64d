"""The in-model normalization layer: raw 0..255 pixels in, what the weights expect out."""
from __future__ import annotations

import keras
from keras import ops

from cnnzoo._checks import check_choice

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# keras.applications "caffe" mode: RGB -> BGR, then subtract the BGR ImageNet mean in 0..255 units.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

MODES = ("torch", "tf", "caffe", "unit", "custom")


@keras.saving.register_keras_serializable(package="cnnzoo")
class Preprocessing(keras.layers.Layer):
    """Map raw pixels (0..255, any dtype) to a model's input range; no weights, exported with the model.

    Modes (keras.applications' names where they exist):
        "torch": x / 255, then (x - ImageNet mean) / ImageNet std  (EfficientNet, ResNet18/34, SE-ResNet)
        "tf":    x / 127.5 - 1                                       (MobileNetV2)
        "caffe": RGB -> BGR, then subtract the ImageNet BGR mean     (VGG, keras ResNet50/101/152)
        "unit":  x / 255
        "custom": (x * scale - mean) / std with the given per-channel mean and std; one value each applies to
                  every channel (`Preprocessing("custom", mean=[1], std=[1], scale=1/128)` is x / 128 - 1,
                  EfficientNetV2-S/M/L's input range).
    For 1-channel input the per-channel constants are averaged, and caffe mode does not reorder channels.

    Example:
        >>> layer = Preprocessing("tf")
        >>> float(layer(np.full((1, 1, 1, 3), 255.0))[0, 0, 0, 0])
        1.0
    """

    def __init__(self, mode: str = "torch", mean=None, std=None, scale: float = 1.0 / 255.0, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.mode = check_choice("mode", mode, MODES)
        if mode == "custom" and (mean is None or std is None):
            raise ValueError(f"mode='custom' needs both `mean` and `std`. Received: mean={mean!r}, std={std!r}")
        if mode == "torch":
            mean, std, scale = IMAGENET_MEAN, IMAGENET_STD, 1.0 / 255.0
        self.mean = None if mean is None else tuple(float(m) for m in mean)
        self.std = None if std is None else tuple(float(s) for s in std)
        if self.std is not None and any(s <= 0 for s in self.std):
            raise ValueError(f"`std` must be positive. Received: std={std!r}")
        if self.mean is not None and self.std is not None and len(self.std) not in (1, len(self.mean)):
            raise ValueError(f"`std` needs one value or one per mean ({len(self.mean)}). Received: std={std!r}")
        self.scale = float(scale)

    def channel_constants(self) -> tuple:
        """The per-channel means this mode subtracts (empty for "tf" and "unit", which treat channels alike)."""
        if self.mode == "caffe":
            return CAFFE_MEAN_BGR
        if self.mode in ("torch", "custom") and len(self.mean) > 1:
            return self.mean
        return ()

    def supports_channels(self, channels: int) -> bool:
        """Whether inputs with `channels` channels can be normalized: any for "tf"/"unit", else 1 or one per
        constant (1-channel input uses the average constant)."""
        constants = self.channel_constants()
        return not constants or channels in (1, len(constants))

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is not None and not self.supports_channels(channels):
            raise ValueError(f"Preprocessing mode {self.mode!r} has {len(self.channel_constants())} channel "
                             f"constants; the input needs 1 or that many channels. Received: input_shape="
                             f"{tuple(input_shape)}")

    def _per_channel(self, values, channels):
        values = list(values)
        if channels == len(values) or len(values) == 1:
            return values
        if channels == 1:
            return [sum(values) / len(values)]
        raise ValueError(f"Preprocessing has {len(values)} channel constants but the input has {channels} "
                         f"channels. Received: input channels={channels}")

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        channels = inputs.shape[-1]
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "unit":
            return x / 255.0
        if self.mode == "caffe":
            mean = CAFFE_MEAN_BGR
            if channels == 3:
                x = ops.flip(x, axis=-1)
            return x - ops.convert_to_tensor(self._per_channel(mean, channels), dtype=self.compute_dtype)
        mean = ops.convert_to_tensor(self._per_channel(self.mean, channels), dtype=self.compute_dtype)
        std = ops.convert_to_tensor(self._per_channel(self.std, channels), dtype=self.compute_dtype)
        return (x * self.scale - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode, scale=self.scale,
                      mean=None if self.mode == "torch" else self.mean,
                      std=None if self.mode == "torch" else self.std)
        return config
