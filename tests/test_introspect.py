"""cnnzoo.introspect answers "what does this model's head compute?" once, for training, evaluation and export."""
import keras
import numpy as np
import pytest

import cnnzoo
from cnnzoo import introspect
from cnnzoo.export.serving import RawImageModel
from cnnzoo.train.fit import make_loss


def _zoo(**kwargs):
    return cnnzoo.create_model("mobilenet_v2_035", num_classes=3, input_shape=(32, 32, 3), **kwargs)


def _wrapped(model):
    """Input -> augmentation -> zoo model: the stack a user builds to train with augmentation in the model."""
    inputs = keras.Input((32, 32, 3))
    return keras.Model(inputs, model(keras.layers.RandomFlip(seed=0, name="flip")(inputs)))


@pytest.mark.parametrize("wrap", [False, True])
@pytest.mark.parametrize("activation,expected", [("softmax", "softmax"), (None, "linear"), ("sigmoid", "sigmoid")])
def test_head_activation_is_read_through_nested_models(wrap, activation, expected):
    model = _zoo(classifier_activation=activation)
    model = _wrapped(model) if wrap else model
    assert introspect.head_activation(model) == expected
    assert introspect.outputs_probabilities(model) == (expected == "softmax")
    assert introspect.returns_logits(model) == (expected == "linear")
    assert introspect.has_classifier(model)
    assert introspect.classifier_layer(model).name == "predictions"


def test_heads_after_the_dense_and_feature_extractors():
    inputs = keras.Input((4,))
    dense = keras.layers.Dense(3, name="logits")(inputs)
    assert introspect.head_activation(keras.Model(inputs, keras.layers.Softmax()(dense))) == "softmax"
    assert introspect.head_activation(keras.Model(inputs, keras.layers.Activation("softmax")(dense))) == "softmax"
    assert introspect.head_activation(keras.Model(inputs, keras.layers.Dropout(0.2)(dense))) == "linear"
    unbuilt = keras.Sequential([keras.layers.Dense(3, activation="softmax"), keras.layers.Dropout(0.1)])
    assert introspect.head_activation(unbuilt) == "softmax"
    for pooling in ("avg", None):
        features = cnnzoo.create_model("mobilenet_v2_035", include_top=False, pooling=pooling,
                                       input_shape=(32, 32, 3))
        assert not introspect.has_classifier(features) and introspect.head_activation(features) is None


def test_wrapped_softmax_model_trains_on_probabilities_and_evaluates_without_a_second_softmax():
    # Before: training looked at the outer model's last layer (the nested model) and chose from_logits=True,
    # and evaluate applied softmax to outputs that already were probabilities.
    model = _wrapped(_zoo())
    assert make_loss(model).get_config()["from_logits"] is False
    assert make_loss(_wrapped(_zoo(classifier_activation=None))).get_config()["from_logits"] is True
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 32, 32, 3)).astype("uint8")
    y = np.arange(12) % 3
    data = cnnzoo.data.from_arrays(x, y, batch_size=6, validation_split=0.5, seed=0)
    report = cnnzoo.evaluate(model, data)
    images = np.concatenate([batch[0].numpy() for batch in data.val])
    expected = model(images.astype("float32"), training=False).numpy()
    np.testing.assert_allclose(report.probabilities, expected, atol=1e-5)


def test_export_wrapper_adds_softmax_only_to_logits():
    assert RawImageModel(_wrapped(_zoo(classifier_activation=None)), input_size=(32, 32),
                         class_names=list("abc")).adds_softmax
    assert not RawImageModel(_wrapped(_zoo()), input_size=(32, 32), class_names=list("abc")).adds_softmax


@pytest.mark.parametrize("pooling", ["avg", None])
def test_export_refuses_a_feature_extractor(tmp_path, pooling):
    # Before: a "classifier" whose probabilities were 1,280 raw features and whose labels.txt had 1,280 lines.
    features = cnnzoo.create_model("mobilenet_v2_035", include_top=False, pooling=pooling, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="neither a classifier nor a segmenter.*Received: model="):
        cnnzoo.export(features, tmp_path / "out", formats=("saved_model",))
    assert not (tmp_path / "out").exists()


def test_one_owner_of_model_introspection():
    # "all layers", the classifier layer and the logits question are answered in cnnzoo.introspect only.
    import pathlib
    import re

    root = pathlib.Path(cnnzoo.__file__).parent
    pattern = re.compile(r"_flatten_layers\(|def (_?all_layers|_?classifier_layer|_?returns_logits|"
                         r"_?outputs_probabilities|_?is_mixed\w*|_?flat_layers)\(")
    owners = sorted(str(path.relative_to(root)) for path in root.rglob("*.py") if pattern.search(path.read_text()))
    assert owners == ["introspect.py"], owners
