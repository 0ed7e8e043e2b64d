"""ConvNeXt against keras.applications: parameters and MACs, both weight-file layouts, the in-model normalization,
ImageNet metadata, the applications contract, and what the family adds (groups, stochastic depth, layer scale)."""
import keras
import numpy as np
import pytest
from keras.src.applications import convnext as ka_convnext

import _kparity as kp
import cnnzoo
from cnnzoo.layers.blocks.convnext import Conv2D, ConvNeXtBlock, LayerScale, gelu
from cnnzoo.models import finetune_groups, get_entry

KA = keras.applications
BUILDERS = {"convnext_tiny": KA.ConvNeXtTiny, "convnext_small": KA.ConvNeXtSmall, "convnext_base": KA.ConvNeXtBase,
            "convnext_large": KA.ConvNeXtLarge, "convnext_xlarge": KA.ConvNeXtXLarge}
SLOW = {"convnext_base", "convnext_large", "convnext_xlarge"}
NO_PREPROCESSING = {"include_preprocessing": False}
SIZE = 32   # the smallest input: stride 4 stem and three stride-2 steps leave 1x1


def keras_prestem(x):
    """keras' in-model normalization (its PreStem Normalization layer) on raw pixels; its preprocess_input is a
    pass-through."""
    return keras.ops.convert_to_numpy(ka_convnext.PreStem(name="check")(x))


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in BUILDERS])
def test_params_and_macs_equal_keras(name):
    kp.check_params(name, BUILDERS[name], **NO_PREPROCESSING)


@pytest.mark.parametrize("top,layout", [(True, "legacy"), pytest.param(True, "keras3", marks=pytest.mark.slow),
                                        pytest.param(False, "legacy", marks=pytest.mark.slow), (False, "keras3")])
def test_keras_weight_files_give_the_same_logits(top, layout, tmp_path):
    # Both keras layouts, with the stem and downsampling Sequentials; without top keras normalizes the pooled
    # features with an auto-named LayerNorm, which loads by order.
    kp.check_weights("convnext_tiny", KA.ConvNeXtTiny, NO_PREPROCESSING, SIZE, top, layout, tmp_path)


def test_keras_in_model_normalization_equals_our_preprocessing_layer(tmp_path):
    # keras' own model on raw pixels (its Normalization inside) against ours with its Preprocessing layer.
    ka_model = KA.ConvNeXtTiny(weights=None, input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    assert ka_model.layers[1].name == "convnext_tiny_prestem_normalization"
    kp.randomize(ka_model)
    path = kp.save(ka_model, tmp_path / "convnext_tiny.weights.h5", "keras3")
    ours = cnnzoo.create_model("convnext_tiny", input_shape=(SIZE, SIZE, 3), weights=path,
                               classifier_activation=None)
    assert ours.layers[1].name == "preprocessing"
    raw = np.random.default_rng(2).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    assert kp.rel_diff(ours(raw, training=False), ka_model(raw, training=False)) < 1e-5
    # A file with keras' classifier (`convnext_tiny_head_dense`) also fills a model without top.
    legacy = kp.save(ka_model, tmp_path / "convnext_tiny.h5", "legacy")
    features = cnnzoo.create_model("convnext_tiny", include_top=False, input_shape=(SIZE, SIZE, 3), weights=legacy)
    np.testing.assert_array_equal(features.get_layer("convnext_tiny_head_layernorm").get_weights()[0],
                                  ka_model.get_layer("convnext_tiny_head_layernorm").get_weights()[0])
    keras.backend.clear_session()


@pytest.mark.parametrize("name", list(BUILDERS))
def test_imagenet_files_and_preprocessing(name):
    assert kp.check_imagenet(name, ka_convnext, keras_prestem) == f"{name}.h5"
    assert kp.check_imagenet(name, ka_convnext, keras_prestem, include_top=False) == f"{name}_notop.h5"
    entry = get_entry(name)
    assert entry.preprocessing == entry.imagenet.preprocessing == {"mode": "torch"}
    assert entry.imagenet.locate(True, (224, 224, 3), {})[2] == ka_convnext.WEIGHTS_HASHES[name][0]
    assert entry.imagenet.locate(False, (224, 224, 3), {})[2] == ka_convnext.WEIGHTS_HASHES[name][1]
    assert entry.imagenet.classifier == f"{name}_head_dense"   # keras' classifier name in its files


def test_keras_contract():
    kp.check_contract("convnext_tiny", 768)


def test_layers_groups_stochastic_depth_and_layer_scale():
    model = cnnzoo.create_model("convnext_tiny", num_classes=5, input_shape=(SIZE, SIZE, 3), pooling="spp",
                                drop_path_rate=0.3, layer_scale_init_value=0.5)
    names = [layer.name for layer in model.layers]
    assert names[2] == "convnext_tiny_stem" and isinstance(model.layers[2], keras.Sequential)
    assert [layer.name for layer in model.get_layer("convnext_tiny_downsampling_block_0").layers] == [
        "convnext_tiny_downsampling_layernorm_0", "convnext_tiny_downsampling_conv_0"]
    # The head LayerNorm stays with any pooling.
    assert names[-3:] == ["spp_pool", "convnext_tiny_head_layernorm", "predictions"]

    groups = finetune_groups(model)
    assert list(groups) == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    of = {layer.name: group for group, layers in groups.items() for layer in layers}
    assert of["convnext_tiny_stem"] == "stem"
    assert of["convnext_tiny_stage_0_block_2_layer_scale"] == "stage1"
    assert of["convnext_tiny_downsampling_block_0"] == of["convnext_tiny_stage_1_block_0_depthwise_conv"] == "stage2"
    assert of["convnext_tiny_downsampling_block_2"] == "stage4"
    assert of["convnext_tiny_head_layernorm"] == of["predictions"] == "head"
    assert all(layer.name in of for layer in model.layers if layer.weights)

    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    expected = np.linspace(0.0, 0.3, 18)   # keras: np.linspace(0, drop_path_rate, sum(depths))
    assert len(drops) == 17   # the first block's rate is 0: no layer
    assert drops[0].name == "convnext_tiny_stage_0_block_1_drop"
    np.testing.assert_allclose([d.rate for d in drops], expected[1:], rtol=1e-12)
    assert all(d.noise_shape == (None, 1, 1, 1) for d in drops)

    scale = model.get_layer("convnext_tiny_stage_2_block_4_layer_scale")
    assert isinstance(scale, LayerScale) and scale.weights[0].shape == (384,)
    np.testing.assert_array_equal(scale.get_weights()[0], np.full(384, 0.5, "float32"))
    keras.backend.clear_session()


def test_option_errors_name_the_option():
    with pytest.raises(ValueError, match="drop_path_rate"):
        cnnzoo.create_model("convnext_tiny", input_shape=(SIZE, SIZE, 3), drop_path_rate=1.0)
    for bad in (0.0, -1e-6, float("inf")):
        with pytest.raises(ValueError, match="layer_scale_init_value"):
            cnnzoo.create_model("convnext_tiny", input_shape=(SIZE, SIZE, 3), layer_scale_init_value=bad)


def test_head_with_max_pooling_and_without_top():
    model = cnnzoo.create_model("convnext_tiny", num_classes=3, input_shape=(SIZE, SIZE, 3), pooling="max")
    norm = model.get_layer("convnext_tiny_head_layernorm")
    assert isinstance(norm, keras.layers.LayerNormalization) and norm.epsilon == 1e-6
    assert isinstance(model.get_layer("max_pool"), keras.layers.GlobalMaxPooling2D)
    assert model.get_layer("predictions").input is norm.output
    # keras without top: the (optionally pooled) features through a LayerNorm, also with pooling=None.
    features = cnnzoo.create_model("convnext_tiny", include_top=False, pooling=None, input_shape=(SIZE, SIZE, 3))
    assert isinstance(features.layers[-1], keras.layers.LayerNormalization)
    assert features.output_shape == (None, 1, 1, 768)
    keras.backend.clear_session()


def test_block_layers_and_layer_scale_serialization():
    inputs = keras.Input((8, 8, 16))
    outputs = ConvNeXtBlock(16, layer_scale_init_value=None)(inputs, name="b")
    block = keras.Model(inputs, outputs)
    assert [type(layer).__name__ for layer in block.layers[1:]] == [
        "Conv2D", "LayerNormalization", "Dense", "Activation", "Dense", "Add"]
    with pytest.raises(ValueError, match="input channels"):
        ConvNeXtBlock(32)(inputs, name="c")
    layer = LayerScale(1e-6, 16)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, LayerScale) and restored.get_config() == layer.get_config()


def test_depthwise_conv_and_gelu_equal_keras():
    x = np.random.default_rng(0).normal(size=(2, 9, 11, 16)).astype("float32")
    theirs, ours = keras.layers.Conv2D(16, 7, padding="same", groups=16), Conv2D(16, 7, padding="same", groups=16)
    theirs.build(x.shape)
    ours.build(x.shape)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours(x), theirs(x), atol=1e-5)
    z = np.linspace(-8, 8, 4001).astype("float32")
    np.testing.assert_allclose(gelu(z), keras.activations.gelu(z), atol=2e-6)
