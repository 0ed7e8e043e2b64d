"""Multi-scale features from every zoo model: `create_model(features_only=True)`, `feature_info`, tap points."""
import math

import keras
import numpy as np
import pytest

import cnnzoo
from cnnzoo.registry import feature_info

NAMES = cnnzoo.list_models()
# Valid-padding stems (no "same" padding before their strided convs): each level is a few pixels smaller than
# ceil(size / reduction), and they need more than 64 px (Inception 75, Xception 71).
VALID_PADDING = {"inception_v3", "inception_resnet_v2", "xception"}


def _size(name):
    return (96, 128) if cnnzoo.registry.get_entry(name).family in VALID_PADDING else (64, 96)


@pytest.mark.parametrize("name", NAMES)
def test_features_of_every_model(name):
    levels = tuple(range(5)) if cnnzoo.registry.get_entry(name).family != "convnext" else (1, 2, 3, 4)
    model = cnnzoo.create_model(name, features_only=True, out_indices=levels, input_shape=(None, None, 3))
    info = model.feature_info
    assert [f.index for f in info] == list(levels)
    assert [f.reduction for f in info] == [2 ** (i + 1) for i in levels]
    assert [f.name for f in info] == [f"C{i + 1}" for i in levels]
    assert len(model.outputs) == len(info)
    height, width = _size(name)
    specs = model.compute_output_spec(keras.KerasTensor((1, height, width, 3)))
    for level, spec, tensor in zip(info, specs, model.outputs):
        assert tensor._keras_history.operation.name == level.layer
        assert spec.shape[-1] == level.channels, (level, spec.shape)
        expected = (math.ceil(height / level.reduction), math.ceil(width / level.reduction))
        got = tuple(spec.shape[1:3])
        if cnnzoo.registry.get_entry(name).family in VALID_PADDING or level.layer == "stem_bn1":
            # valid convs lose a few pixels; a wrong level would be off by a factor of two
            assert all(e - 4 <= g <= e for g, e in zip(got, expected)), (level, got, expected)
        else:
            assert got == expected, (level, got, expected)
    # the deepest level is the classifier's input: same channels as the no-top model's output
    assert info[-1].reduction == 32


@pytest.mark.parametrize("name,layers", [
    ("resnet50", ["conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"]),
    ("mobilenet_v2", ["block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu", "out_relu"]),
    ("resnet50_v2", ["conv2_block3_preact_relu", "conv3_block4_preact_relu", "conv4_block6_preact_relu",
                     "post_relu"]),
    ("efficientnet_b0", ["block3a_expand_activation", "block4a_expand_activation", "block6a_expand_activation",
                         "top_activation"]),
    ("densenet121", ["pool2_relu", "pool3_relu", "pool4_relu", "relu"]),
])
def test_default_taps_are_the_known_stage_outputs(name, layers):
    info = feature_info(name)
    assert [f.layer for f in info if f.index in (1, 2, 3, 4)] == layers


def test_inception_levels_round_as_keras_at_299():
    # keras.applications InceptionV3 at 299 px: mixed2 35x35, mixed7 17x17, mixed10 8x8
    model = cnnzoo.create_model("inception_v3", features_only=True, out_indices=(2, 3, 4),
                                input_shape=(None, None, 3))
    specs = model.compute_output_spec(keras.KerasTensor((1, 299, 299, 3)))
    assert [tuple(s.shape[1:]) for s in specs] == [(35, 35, 288), (17, 17, 768), (8, 8, 2048)]
    assert [f.layer for f in model.feature_info] == ["mixed2", "mixed7", "mixed10"]


def test_features_equal_the_classifier_layers_and_take_weights_files(tmp_path):
    backbone = cnnzoo.create_model("resnet18", include_top=False, pooling=None, input_shape=(64, 64, 3))
    path = tmp_path / "backbone.weights.h5"
    backbone.save_weights(path)
    features = cnnzoo.create_model("resnet18", features_only=True, input_shape=(64, 64, 3), weights=str(path))
    # fixed size: the same levels as the any-size build (read from the registry)
    assert features.feature_info == feature_info("resnet18")[1:]
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    taps = keras.Model(backbone.inputs, [backbone.get_layer(f.layer).output for f in features.feature_info])
    for got, want in zip(features(x, training=False), taps(x, training=False)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert [tuple(o.shape[1:3]) for o in features(x)] == [(16, 16), (8, 8), (4, 4), (2, 2)]


def test_features_model_round_trips_and_keeps_groups(tmp_path):
    model = cnnzoo.create_model("mobilenet_v2_035", features_only=True, out_indices=(2, 4),
                                input_shape=(None, None, 3))
    path = tmp_path / "features.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert feature_info(restored) == model.feature_info
    x = np.random.default_rng(1).uniform(0, 255, (1, 65, 97, 3)).astype("float32")
    for a, b in zip(restored(x), model(x)):
        np.testing.assert_array_equal(a, b)
    groups = cnnzoo.models.finetune_groups(model)
    assert list(groups)[0] == "stem" and "head" not in groups


@pytest.mark.parametrize("out_indices,match", [
    ((5,), r"out_indices"), ((2, 1), r"out_indices"), ((), r"out_indices"), ("12", r"out_indices"),
    ((1, 1), r"out_indices"), ((True,), r"out_indices"),
])
def test_bad_out_indices_name_the_argument(out_indices, match):
    with pytest.raises(ValueError, match=match):
        cnnzoo.create_model("resnet18", features_only=True, out_indices=out_indices)


def test_missing_level_is_refused_with_the_levels_there_are():
    with pytest.raises(ValueError, match=r"'convnext_tiny' has feature levels \[1, 2, 3, 4\].*out_indices=\(0, 1\)"):
        cnnzoo.create_model("convnext_tiny", features_only=True, out_indices=(0, 1), input_shape=(None, None, 3))
    with pytest.raises(ValueError, match="features_only"):
        cnnzoo.create_model("resnet18", features_only="yes")
    with pytest.raises(ValueError, match="feature_info needs a zoo name"):
        feature_info(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
