"""The classifier head every builder shares: pooling, dropout, and a float32 classifier named "predictions"."""
from __future__ import annotations

from keras import layers

from cnnzoo._checks import check_choice, check_float, check_int

BUILTIN_POOLINGS = ("avg", "max", None)


def pooling_choices() -> tuple:
    """Every accepted `pooling=`: "avg", "max", None, plus the global poolings of `cnnzoo.layers.pooling`."""
    try:
        from cnnzoo.layers.pooling import GLOBAL_POOLINGS
    except ImportError:  # the pooling toolbox is optional for the head
        GLOBAL_POOLINGS = {}
    return BUILTIN_POOLINGS + tuple(GLOBAL_POOLINGS)


def global_pool(x, pooling: str | None):
    """Reduce [B, H, W, C] features to [B, D] with the named pooling (None returns x unchanged)."""
    if pooling is None:
        return x
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    from cnnzoo.layers.pooling import GLOBAL_POOLINGS

    return GLOBAL_POOLINGS[pooling](f"{pooling}_pool")(x)


def validate_head_args(*, num_classes, include_top, pooling, dropout, classifier_activation):
    check_choice("include_top", include_top, (True, False))
    check_choice("pooling", pooling, pooling_choices())
    if include_top:
        check_int("num_classes", num_classes, minimum=1)
        if include_top and pooling is None:
            raise ValueError("A classifier needs pooled features: with include_top=True `pooling` cannot be None. "
                             "Received: pooling=None")
    if dropout is not None:
        check_float("dropout", dropout, minimum=0.0, maximum=1.0)
        if dropout >= 1.0:
            raise ValueError(f"`dropout` must be < 1. Received: dropout={dropout!r}")
    if classifier_activation is not None and not (isinstance(classifier_activation, str) or
                                                  callable(classifier_activation)):
        raise TypeError(f"`classifier_activation` must be a string, a callable or None. "
                        f"Received: classifier_activation={classifier_activation!r}")


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
