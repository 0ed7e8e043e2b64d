"""Losses the zoo's tasks need beyond Keras': per-pixel cross-entropy that skips an ignore label, and Dice.

Example:
    >>> segmenter.compile(optimizer="adam", loss=SegmentationLoss(ignore_index=255))   # doctest: +SKIP
"""
from __future__ import annotations

import keras
from keras import ops

from cnnzoo._checks import check_choice, check_float, check_int

__all__ = ["SegmentationLoss", "SEGMENTATION_LOSSES"]

SEGMENTATION_LOSSES = ("cross_entropy", "dice", "cross_entropy+dice")


@keras.saving.register_keras_serializable(package="cnnzoo")
class SegmentationLoss(keras.losses.Loss):
    """Per-pixel loss of a segmenter's probabilities [B, H, W, K] against integer masks [B, H, W].

    Pixels labelled `ignore_index` (255: "void" in VOC-style masks) count for nothing, neither in the sum nor in
    the mean. "cross_entropy" is the mean sparse categorical cross-entropy over the kept pixels; "dice" is
    1 - the soft Dice coefficient averaged over the classes present in the batch (Milletari et al. 2016);
    "cross_entropy+dice" adds them, `dice_weight` scaling the Dice term. `class_weights` (one per class) weigh each
    pixel's cross-entropy by its true class, normalised by the total weight (PyTorch's `CrossEntropyLoss(weight=)`
    rule); Dice already treats the classes alike.
    """

    def __init__(self, kind: str = "cross_entropy", *, ignore_index: int | None = 255, dice_weight: float = 1.0,
                 from_logits: bool = False, class_weights=None, name: str = "segmentation_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.kind = check_choice("kind", kind, SEGMENTATION_LOSSES)
        if class_weights is not None:
            class_weights = [check_float(f"class_weights[{i}]", w, minimum=0.0, finite=True)
                             for i, w in enumerate(class_weights)]
        self.class_weights = class_weights
        self.ignore_index = None if ignore_index is None else check_int("ignore_index", ignore_index, minimum=0)
        self.dice_weight = check_float("dice_weight", dice_weight, minimum=0.0, finite=True)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        labels = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")
        classes = ops.shape(y_pred)[-1]
        keep = ops.ones_like(labels, "float32") if self.ignore_index is None else ops.cast(
            ops.not_equal(labels, self.ignore_index), "float32")
        safe = ops.where(keep > 0, labels, ops.zeros_like(labels))
        total = ops.maximum(ops.sum(keep), 1.0)
        loss = 0.0
        if "cross_entropy" in self.kind:
            pixel = keras.losses.sparse_categorical_crossentropy(safe, y_pred, from_logits=self.from_logits)
            weight = keep
            if self.class_weights is not None:
                weight = keep * ops.take(ops.convert_to_tensor(self.class_weights, "float32"), safe)
            loss = ops.sum(pixel * weight) / ops.maximum(ops.sum(weight), 1e-6)
        if "dice" in self.kind:
            probs = ops.softmax(y_pred, axis=-1) if self.from_logits else y_pred
            onehot = ops.one_hot(safe, classes) * keep[..., None]
            probs = probs * keep[..., None]
            axes = (0, 1, 2)
            intersection = ops.sum(probs * onehot, axis=axes)
            sizes = ops.sum(probs, axis=axes) + ops.sum(onehot, axis=axes)
            present = ops.cast(ops.sum(onehot, axis=axes) > 0, "float32")
            dice = (2.0 * intersection + 1.0) / (sizes + 1.0)
            dice_loss = 1.0 - ops.sum(dice * present) / ops.maximum(ops.sum(present), 1.0)
            loss = loss + (self.dice_weight if "cross_entropy" in self.kind else 1.0) * dice_loss
        # one figure per batch: Keras' reduction over the batch axis then leaves it as is
        return ops.ones((ops.shape(y_pred)[0],), "float32") * loss

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "ignore_index": self.ignore_index,
                "dice_weight": self.dice_weight, "from_logits": self.from_logits, "class_weights": self.class_weights}
