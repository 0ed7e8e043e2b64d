"""The classifier head every builder shares: pooling, dropout, and a float32 classifier named "predictions"."""
from __future__ import annotations

from keras import layers

from cnnzoo.layers.pooling import GLOBAL_POOLINGS


def global_pool(x, pooling: str | None):
    """Reduce [B, H, W, C] features to [B, D] with the named pooling (None returns x unchanged)."""
    if pooling is None:
        return x
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return GLOBAL_POOLINGS[pooling](f"{pooling}_pool")(x)


def classifier(x, *, include_top, num_classes, pooling, dropout, classifier_activation, pool=True):
    """Pool (unless `pool=False`: VGG's flattening head pools itself), drop out, classify.

    The classifier runs in float32 whatever the global dtype policy, so softmax never runs in float16.
    """
    if not include_top:
        return global_pool(x, pooling)
    if pool:
        x = global_pool(x, pooling)
    if dropout:
        x = layers.Dropout(dropout, name="top_dropout")(x)
    return layers.Dense(num_classes, activation=classifier_activation, dtype="float32", name="predictions")(x)
