"""The raw-image wrapper every export format shares.

Every exported artifact takes raw uint8 RGB pixels and runs the same steps as cnnzoo's input pipeline: decode
(encoded bytes), resize to the training size with `cnnzoo.data.images.resize` (bilinear, same fit, rounded to
uint8 as the training images were), call the model with `training=False`, return float32 probabilities.
Keeping these steps in one object means the SavedModel signatures, the TFLite and ONNX graphs and the Keras
reference used for parity cannot drift apart.

A segmenter (`cnnzoo.create_segmenter`: probabilities [B, H, W, classes]) runs the same way at the export size,
then its probabilities are resized back to each input image's own size (bilinear, `resize_back`) and `masks` are
their per-pixel argmax (int32 class ids): a mask always matches the image it came from.

A multi-label classifier (a sigmoid per class) returns its per-class `probabilities` and `labels`, int32 [B, K]:
1 where a class's probability reaches its decision threshold (per class, tuned on validation data by
`cnnzoo.export`), besides the top-k `class_ids` / `class_names` by probability.
"""
from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from cnnzoo._checks import check_choice, check_int, received
from cnnzoo.data import images as data_images
from cnnzoo.introspect import is_multilabel, is_segmenter, returns_logits
from cnnzoo.options import FITS

INTERPOLATION = "bilinear"      # cnnzoo.data resizes bilinearly; recorded in every artifact's metadata
TASKS = ("classification", "segmentation", "multilabel")


def resize_back(probabilities, size) -> tf.Tensor:
    """Per-pixel probabilities [B, h, w, C] at the export size -> [B, *size, C] (bilinear; the identity when the
    sizes agree). Every segmentation format and runner maps its output to the input image's size with this."""
    probabilities = tf.convert_to_tensor(probabilities, tf.float32)
    size = tf.convert_to_tensor(size, tf.int32)
    same = tf.reduce_all(tf.equal(tf.shape(probabilities)[1:3], size))
    return tf.cond(same, lambda: probabilities,
                   lambda: tf.image.resize(probabilities, size, method="bilinear"))


class RawImageModel:
    """Wraps an inference model so it takes raw uint8 images of any size.

    Args:
        model: keras.Model, an inference model (see `prepare.inference_model`) that takes 0..255 float pixels.
        input_size: tuple (height, width), the size the model was trained at.
        class_names: list of str, one per output unit.
        top_k: int, how many classes `outputs` returns per image (capped at the number of classes).
        fit: str, how training images were fitted to the size: "stretch", "crop" (centre crop to the aspect
            ratio) or "pad" (the `fit` of cnnzoo.data.from_directory).
        thresholds: a multi-label model's per-class decision thresholds (default 0.5 each).
        tta: None or "flip": test-time augmentation inside the graph (the mean of the image's and its mirror's
            probabilities; a segmenter's mirror map is flipped back), as `cnnzoo.evaluate(..., tta="flip")` does.

    Example:
        >>> wrapped = RawImageModel(model, input_size=(32, 32), class_names=["cat", "dog"])   # doctest: +SKIP
        >>> wrapped.outputs(tf.zeros([1, 50, 70, 3], tf.uint8))["class_names"]               # doctest: +SKIP
    """

    def __init__(self, model: keras.Model, *, input_size: tuple[int, int], class_names: Sequence[str],
                 top_k: int = 5, fit: str = "stretch", thresholds=None, tta=None):
        self.model = model
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.class_names = [str(name) for name in class_names]
        self.top_k = min(check_int("top_k", top_k, minimum=1), len(self.class_names))
        self.fit = check_choice("fit", fit, FITS)
        self.interpolation = INTERPOLATION
        # A classifier built with classifier_activation=None returns logits; `probabilities` must not.
        self.task = ("segmentation" if is_segmenter(model) else "multilabel" if is_multilabel(model)
                     else "classification")
        self.adds_softmax = returns_logits(model) if self.task == "classification" else False
        self.thresholds = None
        if self.task == "multilabel":
            from cnnzoo.evaluate.multilabel import check_thresholds

            self.thresholds = [float(t) for t in check_thresholds(thresholds, self.class_names)]
        elif thresholds is not None:
            raise ValueError("`thresholds` are the decision thresholds of a multi-label (sigmoid) model. "
                             + received("thresholds", thresholds))
        if self.task == "segmentation" and self.fit != "stretch":
            raise ValueError("A segmenter's masks are mapped back onto the input image by resizing; export it with "
                             f"fit='stretch' (train with from_directory(..., fit='stretch')). {received('fit', fit)}")
        from cnnzoo.evaluate.tta import check_tta
        from cnnzoo.options import EXPORT_TTA_VIEWS

        self.tta = check_tta(tta, allowed=EXPORT_TTA_VIEWS)
        self._labels = tf.constant(self.class_names)

    # -- the shared steps -------------------------------------------------------------------------------
    def resize(self, images) -> tf.Tensor:
        """uint8 [B, H, W, 3] of any H, W -> uint8 [B, h, w, 3] at the training size, as the data pipeline does.

        Not keras.layers.Resizing: the Keras 3.15 layer leaks training=True (ENVIRONMENT.md).
        """
        return data_images.resize(images, self.input_size, self.fit)

    def probabilities(self, images) -> tf.Tensor:
        """uint8 images at the training size -> float32 probabilities [B, classes] ([B, h, w, classes] for a
        segmenter), averaged over the `tta` views."""
        from cnnzoo.evaluate.tta import average_views

        def probabilities_of(pixels):
            outputs = tf.cast(self.model(pixels, training=False), tf.float32)
            return tf.nn.softmax(outputs, axis=-1) if self.adds_softmax else outputs

        return average_views(probabilities_of, images, self.tta, per_pixel=self.task == "segmentation")

    def outputs(self, images) -> dict[str, tf.Tensor]:
        """uint8 images of any size -> {"probabilities", "class_ids", "class_names"} (top-k); for a segmenter
        {"probabilities" [B, H, W, C], "masks" [B, H, W]} at the images' own size H, W."""
        probabilities = self.probabilities(self.resize(images))
        if self.task == "segmentation":
            probabilities = resize_back(probabilities, tf.shape(images)[1:3])
        return self.named(probabilities)

    def named(self, probabilities) -> dict[str, tf.Tensor]:
        if self.task == "segmentation":
            return {"probabilities": probabilities,
                    "masks": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}
        top = tf.math.top_k(probabilities, k=self.top_k)
        out = {"probabilities": probabilities, "class_ids": top.indices,
               "class_names": tf.gather(self._labels, top.indices)}
        if self.task == "multilabel":
            out["labels"] = tf.cast(probabilities >= tf.constant(self.thresholds, tf.float32), tf.int32)
        return out

    def info(self) -> dict:
        """What every artifact records about its inputs and outputs (SavedModel assets.extra, TFLite metadata,
        ONNX metadata_props); runners read it back."""
        info = {"input_size": list(self.input_size), "class_names": self.class_names,
                "interpolation": self.interpolation, "fit": self.fit, "top_k": self.top_k, "task": self.task}
        if self.thresholds is not None:
            info["thresholds"] = self.thresholds
        if self.tta:
            info["tta"] = list(self.tta)
        return info

    def decode(self, image_bytes) -> tf.Tensor:
        """tf.string [B] of JPEG/PNG/GIF/BMP -> uint8 [B, h, w, 3] at the training size.

        cnnzoo's one decode rule (`cnnzoo.data.images.decode_file`: DCT-downscaled JPEGs turned by their EXIF
        orientation, BMP palettes applied, gray and RGBA made RGB), then the training resize. Bytes the rule cannot
        decode (no image, truncated, RLE or OS/2 BMP, TIFF, ...) raise InvalidArgumentError: the graph never
        decodes a file differently from training. (A segmenter's masks from bytes are at the export size: the
        images of one request may differ in size.)
        """
        target = max(self.input_size)

        def one(contents):
            return data_images.resize(data_images.decode_file(contents, target), self.input_size, self.fit)

        spec = tf.TensorSpec([*self.input_size, 3], tf.uint8)
        return tf.map_fn(one, image_bytes, fn_output_signature=spec)

    def outputs_from_bytes(self, image_bytes) -> dict[str, tf.Tensor]:
        return self.named(self.probabilities(self.decode(image_bytes)))

    # -- signatures ---------------------------------------------------------------------------------------
    def images_spec(self, *, fixed_size: bool = False, batch: int | None = None) -> tf.TensorSpec:
        height, width = self.input_size if fixed_size else (None, None)
        return tf.TensorSpec([batch, height, width, 3], tf.uint8, name="images")

    def fixed_size_function(self) -> tf.types.experimental.GenericFunction:
        """tf.function uint8 [None, h, w, 3] -> {"probabilities"}: the graph TFLite and ONNX convert."""
        @tf.function(input_signature=[self.images_spec(fixed_size=True)])
        def serve(images):
            return {"probabilities": self.probabilities(images)}
        return serve


def input_size_of(model: keras.Model, input_size=None) -> tuple[int, int]:
    """The training size: `input_size` if given, else the model's fixed input height and width."""
    if input_size is not None:
        if (not isinstance(input_size, (tuple, list)) or len(input_size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in input_size)):
            raise ValueError(f"`input_size` must be (height, width) of positive ints. "
                             f"{received('input_size', input_size)}")
        return int(input_size[0]), int(input_size[1])
    shape = model.input_shape
    if isinstance(shape, list):
        if len(shape) != 1:
            raise ValueError(f"Export needs a model with one image input. {received('model.input_shape', shape)}")
        shape = shape[0]
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError("Export needs a model whose input is RGB images [batch, height, width, 3]. "
                         f"{received('model.input_shape', shape)}")
    if shape[1] is None or shape[2] is None:
        raise ValueError("The model takes any image size; pass `input_size=(height, width)`, the size it was "
                         f"trained at, so exported models resize to it. {received('input_size', input_size)}")
    return int(shape[1]), int(shape[2])
