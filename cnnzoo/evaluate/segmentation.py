"""Evaluating a segmenter: mean IoU, per-class IoU, pixel accuracy and the confusion matrix over every pixel.

Pixels whose mask value is `ignore_index` (255) count for nothing. A class that appears neither in the masks
nor in the predictions has no IoU (NaN) and is left out of the mean, as in Pascal VOC and Cityscapes scoring.

Example:
    >>> report = cnnzoo.evaluate(segmenter, data)            # data: ImageData of task "segmentation"
    >>> report.miou, report.per_class_iou["7"]
    >>> report.plot_predictions().savefig("predictions.png")
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from cnnzoo._checks import check_int, received

IGNORE = 255


@dataclasses.dataclass
class SegmentationReport:
    """Per-pixel scores of a segmenter. `confusion[i, j]`: pixels of true class i predicted as j."""

    confusion: np.ndarray
    class_names: list
    examples: dict   # a few {"images", "masks", "predictions"} for `plot_predictions`

    @property
    def iou(self) -> np.ndarray:
        tp = np.diag(self.confusion).astype(float)
        union = self.confusion.sum(0) + self.confusion.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    @property
    def miou(self) -> float:
        return float(np.nanmean(self.iou))

    @property
    def per_class_iou(self) -> dict:
        return {name: float(v) for name, v in zip(self.class_names, self.iou)}

    @property
    def pixel_accuracy(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else float("nan")

    @property
    def pixels(self) -> int:
        return int(self.confusion.sum())

    def summary(self) -> str:
        rows = [f"mIoU {self.miou:.4f}   pixel accuracy {self.pixel_accuracy:.4f}   ({self.pixels} pixels)"]
        rows += [f"  {name:>12s}  IoU {iou:.4f}" for name, iou in self.per_class_iou.items()]
        return "\n".join(rows)

    def plot_predictions(self, n: int = 4):
        """A figure: n images, their true masks and the predicted masks (one class colour each)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = min(check_int("n", n, minimum=1), len(self.examples["images"]))
        fig, axes = plt.subplots(3, n, figsize=(2.4 * n, 7.2), squeeze=False)
        classes = len(self.class_names)
        for i in range(n):
            for row, (title, image) in enumerate((("image", self.examples["images"][i]),
                                                  ("mask", self.examples["masks"][i]),
                                                  ("prediction", self.examples["predictions"][i]))):
                ax = axes[row, i]
                if row == 0:
                    ax.imshow(image)
                else:
                    shown = np.ma.masked_equal(image.astype(int), IGNORE)
                    ax.imshow(shown, cmap="tab20", vmin=0, vmax=max(classes - 1, 1), interpolation="nearest")
                ax.set_title(title if i == 0 else "", fontsize=9)
                ax.axis("off")
        fig.tight_layout()
        return fig


def pixel_confusion(truth, predicted, classes: int, ignore_index: int = IGNORE) -> np.ndarray:
    """Confusion matrix [classes, classes] over the pixels of masks `truth` and `predicted` (same shape; pixels
    whose truth is `ignore_index` are left out), by scikit-learn."""
    from sklearn.metrics import confusion_matrix

    truth, predicted = np.asarray(truth), np.asarray(predicted)
    keep = truth != ignore_index
    return confusion_matrix(truth[keep], predicted[keep], labels=np.arange(classes)).astype(np.int64)


def mean_iou(truth, predicted, classes: int, ignore_index: int = IGNORE) -> float:
    """mIoU of predicted masks against true masks, scored as `SegmentationReport.miou` is.

    Example:
        >>> mean_iou(np.array([[0, 1]]), np.array([[0, 1]]), classes=2)
        1.0
    """
    confusion = pixel_confusion(truth, predicted, classes, ignore_index)
    return SegmentationReport(confusion=confusion, class_names=[str(i) for i in range(classes)], examples={}).miou


def _batches(data, split: str):
    from cnnzoo.data.imagedata import ImageData

    if isinstance(data, ImageData):
        stream = data.val if split == "val" else data.train
        if stream is None:
            raise ValueError(f"The data has no {split!r} split. {received('split', split)}")
        return stream, list(data.class_names)
    if isinstance(data, tf.data.Dataset):
        return data, None
    if isinstance(data, (tuple, list)) and len(data) == 2:
        images, masks = np.asarray(data[0]), np.asarray(data[1])
        if images.ndim != 4 or masks.shape != images.shape[:3]:
            raise ValueError("Segmentation data as arrays is (images [N, H, W, 3], masks [N, H, W]). "
                             f"Received: images {images.shape}, masks {masks.shape}")
        return tf.data.Dataset.from_tensor_slices((images, masks)).batch(16), None
    raise TypeError("`data` must be an ImageData, a tf.data.Dataset of (images, masks) batches or (images, masks) "
                    f"arrays. {received('data', type(data).__name__)}")


def _predicted_masks(model, images, views):
    from cnnzoo.evaluate.tta import average_views

    probabilities = average_views(lambda x: model(x, training=False), images, views, per_pixel=True)
    return tf.argmax(probabilities, axis=-1, output_type=tf.int32)


def evaluate_segmenter(model, data, *, split: str = "val", class_names=None, ignore_index: int = IGNORE,
                       examples: int = 8, tta: tuple = ()) -> SegmentationReport:
    """Run `model` (inference mode) over `data` and score every pixel; see the module docstring."""
    from cnnzoo.introspect import num_outputs

    stream, names = _batches(data, split)
    classes = num_outputs(model)
    names = list(class_names or names or [str(i) for i in range(classes)])
    if len(names) != classes:
        raise ValueError(f"The data has {len(names)} classes but the segmenter predicts {classes}. "
                         f"Received: class_names={names}")

    from cnnzoo.evaluate.tta import traced

    infer = traced(model, _predicted_masks, tuple(tta))

    confusion = np.zeros((classes, classes), np.int64)
    kept = {"images": [], "masks": [], "predictions": []}
    for images, masks in stream:
        predicted = infer(images).numpy()
        truth = np.asarray(masks).reshape(predicted.shape)
        keep = truth != ignore_index
        if np.any(truth[keep] >= classes) or np.any(truth[keep] < 0):
            raise ValueError(f"Mask values must lie in [0, {classes}) or be {ignore_index} (ignore). Received: "
                             f"values in [{truth[keep].min()}, {truth[keep].max()}]")
        confusion += pixel_confusion(truth, predicted, classes, ignore_index)
        if len(kept["images"]) < examples:
            take = examples - len(kept["images"])
            kept["images"] += list(np.asarray(images)[:take].astype(np.uint8))
            kept["masks"] += list(truth[:take])
            kept["predictions"] += list(predicted[:take])
    if not confusion.any():
        raise ValueError(f"`data` gave no labelled pixels. {received('data', data)}")
    return SegmentationReport(confusion=confusion, class_names=names, examples=kept)
