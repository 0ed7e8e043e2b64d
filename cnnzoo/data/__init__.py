"""Data: tf.data pipelines from folders, TFDS and arrays, and augmentation policies.

Example:
    >>> data = cnnzoo.data.from_directory("photos/", image_size=224)            # doctest: +SKIP
    >>> train = cnnzoo.data.augment_dataset(data, "standard", seed=0)           # doctest: +SKIP
"""
from cnnzoo.data import bundled
from cnnzoo.data.adapt import as_rgb_uint8, as_uint8
from cnnzoo.data.augment import Augmentation, augment_dataset, augmentation
from cnnzoo.data.imagedata import ImageData
from cnnzoo.data.show import show_batch
from cnnzoo.data.sources import from_arrays, from_directory, from_tfds
from cnnzoo.data.transforms import ColorJitter, RandAugment, RandomAffine, RandomErasing

__all__ = ["ImageData", "from_directory", "from_tfds", "from_arrays", "augmentation", "augment_dataset",
           "Augmentation", "show_batch", "RandomAffine", "ColorJitter", "RandomErasing", "RandAugment", "as_uint8",
           "as_rgb_uint8", "bundled"]
