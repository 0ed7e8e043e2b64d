"""Inception-v3 and Inception-ResNet-v2 against keras.applications: params, MACs, weight files, ImageNet metadata,
contract; the 75 px minimum; stochastic depth on Inception-ResNet's residual branches.

Both models are deep (313 and ~800 layers) and only take 75 px and up, so every build here is at 75 px and the
Inception-ResNet-v2 checks that need several builds are marked slow.
"""
import inspect

import keras
import numpy as np
import pytest
from keras.src.applications import inception_resnet_v2 as ka_irv2
from keras.src.applications import inception_v3 as ka_v3

import _kparity as kp
import cnnzoo
from cnnzoo.layers.blocks.inception import Branch, InceptionConv, InceptionModule, InceptionResNetBlock
from cnnzoo.models import finetune_groups
from cnnzoo.models.inception import BLOCK35

KA = keras.applications
SIZE = 75  # the smallest input both take (valid-padding stem, stride-2 'valid' reductions): a 1x1 final map
BUILDERS = {"inception_v3": KA.InceptionV3, "inception_resnet_v2": KA.InceptionResNetV2}
KA_MODULES = {"inception_v3": (ka_v3, ka_v3.InceptionV3), "inception_resnet_v2": (ka_irv2, ka_irv2.InceptionResNetV2)}
slow = pytest.mark.slow


@pytest.mark.parametrize("name", ["inception_v3", pytest.param("inception_resnet_v2", marks=slow)])
def test_params_and_macs_equal_keras(name):
    kp.check_params(name, BUILDERS[name])


# Inception-v3 runs every (top, layout) pair; Inception-ResNet-v2 (a 30 s build pair) runs no-top legacy here and
# top Keras 3 in the stochastic-depth test below, so both layouts and both tops are covered for each model.
WEIGHT_CASES = [
    ("inception_v3", True, "legacy"),
    ("inception_v3", False, "keras3"),
    pytest.param("inception_v3", True, "keras3", marks=slow),
    pytest.param("inception_v3", False, "legacy", marks=slow),
    pytest.param("inception_resnet_v2", False, "legacy", marks=slow),
]


@pytest.mark.parametrize("name,top,layout", WEIGHT_CASES)
def test_keras_weight_files_give_the_same_logits(name, top, layout, tmp_path):
    kp.check_weights(name, BUILDERS[name], {}, SIZE, top, layout, tmp_path)


@slow
def test_irv2_weights_load_with_stochastic_depth_and_inference_is_unchanged(tmp_path):
    # The drop-path Dropout layers have no weights: keras' file still pairs up, and inference equals keras'.
    kp.check_weights("inception_resnet_v2", KA.InceptionResNetV2, {}, SIZE, True, "keras3", tmp_path,
                     overrides={"drop_path_rate": 0.3})


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_imagenet_metadata(name):
    ka_module, ka_builder = KA_MODULES[name]
    source = inspect.getsource(ka_builder)
    for top in (True, False):
        file_name = kp.check_imagenet(name, ka_module, ka_module.preprocess_input, include_top=top, size=299)
        _, url, file_hash = cnnzoo.registry.get_entry(name).imagenet.locate(top, (299, 299, 3), {})
        assert file_name == f"{name}_weights_tf_dim_ordering_tf_kernels{'' if top else '_notop'}.h5"
        assert f'"{file_hash}"' in source  # keras' own inline hash for that file
    if name == "inception_v3":
        assert cnnzoo.registry.get_entry(name).imagenet.locate(True, None, {})[1] == ka_v3.WEIGHTS_PATH
        assert cnnzoo.registry.get_entry(name).imagenet.locate(False, None, {})[1] == ka_v3.WEIGHTS_PATH_NO_TOP
    else:
        for top in (True, False):
            assert cnnzoo.registry.get_entry(name).imagenet.locate(top, None, {})[1].startswith(ka_irv2.BASE_WEIGHT_URL)
    assert cnnzoo.registry.get_entry(name).preprocessing == {"mode": "tf"}
    assert cnnzoo.registry.get_entry(name).imagenet.preprocessing == {"mode": "tf"}


@pytest.mark.parametrize("name,width", [("inception_v3", 2048),
                                        pytest.param("inception_resnet_v2", 1536, marks=slow)])
def test_keras_contract(name, width):
    kp.check_contract(name, width, small=SIZE)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_smaller_than_75_px_is_refused(name):
    assert cnnzoo.registry.get_entry(name).min_input_size == 75
    for shape in ((74, 74, 3), (75, 32, 3), (32, None, 3)):
        with pytest.raises(ValueError, match=r"at least 75 pixels.*Received: input_shape="):
            cnnzoo.create_model(name, input_shape=shape, include_top=False)


def test_inception_v3_names_groups_and_no_stochastic_depth():
    model = cnnzoo.create_model("inception_v3", num_classes=3, input_shape=(SIZE, SIZE, 3))
    names = {layer.name for layer in model.layers}
    assert {f"mixed{i}" for i in range(11)} | {"mixed9_0", "mixed9_1", "avg_pool", "predictions"} <= names
    assert {"stem_conv1_conv", "stem_conv1_bn", "stem_conv1_relu", "stem_pool2", "mixed0_branch5x5_2_conv",
            "mixed0_branch_pool", "mixed0_branch_pool_conv", "mixed3_branch_pool", "mixed9_branch3x3_2a_conv",
            "mixed10_branch3x3dbl_3b_relu", "mixed10_branch3x3dbl_concat"} <= names
    assert tuple(model.get_layer("mixed10").output.shape) == (None, 1, 1, 2048)
    groups = {g: {layer.name for layer in layers} for g, layers in finetune_groups(model).items()}
    assert list(groups) == ["stem", "stage1", "stage2", "stage3", "head"]
    assert {"mixed0", "mixed2", "mixed1_branch1x1_conv"} <= groups["stage1"]
    assert {"mixed3", "mixed3_branch_pool", "mixed7"} <= groups["stage2"]
    assert {"mixed8", "mixed9_0", "mixed9_1", "mixed10"} <= groups["stage3"]
    assert groups["head"] == {"avg_pool", "predictions"}
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    with pytest.raises(TypeError, match="drop_path_rate"):
        cnnzoo.create_model("inception_v3", input_shape=(SIZE, SIZE, 3), drop_path_rate=0.1)
    keras.backend.clear_session()


@slow
def test_inception_resnet_v2_names_groups_and_drop_path_rates():
    model = cnnzoo.create_model("inception_resnet_v2", num_classes=3, input_shape=(SIZE, SIZE, 3),
                                drop_path_rate=0.2)
    names = {layer.name for layer in model.layers}
    assert {"mixed_5b", "mixed_6a", "mixed_7a", "block35_1_mixed", "block35_1_conv", "block35_1_ac",
            "block17_20_ac", "block8_9_ac", "block8_10_conv", "conv_7b", "conv_7b_bn", "conv_7b_ac"} <= names
    assert "block8_10_ac" not in names and "block8_10_scale" not in names  # the last block: unscaled, linear
    assert model.get_layer("block35_1_scale").scale == pytest.approx(0.17)
    # Stochastic depth after each scale, before each add, 0 at block35_1 up to the rate at block8_10.
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert len(drops) == 39 and "block35_1_drop" not in names
    assert model.get_layer("block8_10_drop").rate == pytest.approx(0.2)
    assert model.get_layer("block17_1_drop").rate == pytest.approx(0.2 * 10 / 39)
    assert model.get_layer("block35_2_add").input[1] is model.get_layer("block35_2_drop").output
    groups = {g: {layer.name for layer in layers} for g, layers in finetune_groups(model).items()}
    assert list(groups) == ["stem", "stage1", "stage2", "stage3", "head"]
    assert {"mixed_5b", "block35_10_ac"} <= groups["stage1"] and {"mixed_6a", "block17_20_ac"} <= groups["stage2"]
    assert {"mixed_7a", "block8_10_add", "conv_7b_ac"} <= groups["stage3"]
    keras.backend.clear_session()


def test_modules_concat_branches_in_order():
    inputs = keras.Input((9, 9, 16))
    module = InceptionModule((
        Branch("branch1x1", (InceptionConv(8),)),
        Branch("branch3x3", (InceptionConv(4),), split=(InceptionConv(5, (1, 3)), InceptionConv(6, (3, 1))),
               split_name="split"),
        Branch("branch_pool", (InceptionConv(3),), pool="avg"),
    ))
    outputs = module(inputs, name="m")
    model = keras.Model(inputs, outputs)
    assert tuple(outputs.shape) == (None, 9, 9, 8 + 5 + 6 + 3)
    assert model.get_layer("m").input[0] is model.get_layer("m_branch1x1_relu").output
    assert model.get_layer("m").input[1] is model.get_layer("split").output
    assert model.get_layer("split").input[1] is model.get_layer("m_branch3x3_2b_relu").output
    assert isinstance(model.get_layer("m_branch_pool"), keras.layers.AveragePooling2D)
    assert model.get_layer("m_branch3x3_2a_conv").kernel.shape == (1, 3, 4, 5)
    bn = model.get_layer("m_branch1x1_bn")
    assert not bn.scale and bn.epsilon == 1e-3 and not model.get_layer("m_branch1x1_conv").use_bias
    with pytest.raises(ValueError, match="pool"):
        Branch("b", pool="min")
    with pytest.raises(ValueError, match="kernel_size"):
        InceptionConv(8, (1, 2, 3))
    with pytest.raises(ValueError, match="scale"):
        InceptionResNetBlock(module, scale=0.0)
    with pytest.raises(ValueError, match="Branch names"):
        InceptionModule((Branch("b", pool="max"), Branch("b", pool="max")))


def test_residual_block_scales_and_drops_only_in_training():
    inputs = keras.Input((5, 5, 320))
    plain = keras.Model(inputs, BLOCK35(inputs, name="b"))
    inputs = keras.Input((5, 5, 320))
    dropped = keras.Model(inputs, InceptionResNetBlock(BLOCK35.module, 0.17, drop_rate=0.5)(inputs, name="b"))
    kp.randomize(plain)
    dropped.set_weights(plain.get_weights())
    x = np.random.default_rng(0).normal(size=(16, 5, 5, 320)).astype("float32")
    np.testing.assert_allclose(dropped(x, training=False), plain(x, training=False), rtol=1e-5, atol=1e-6)
    assert not np.allclose(dropped(x, training=True), plain(x, training=True))
    # x + 0.17 * conv(mixed), then ReLU: keras' CustomScaleLayer, with plain Keras layers.
    branch = keras.Model(plain.input, plain.get_layer("b_conv").output)(x, training=False)
    np.testing.assert_allclose(plain(x, training=False), np.maximum(x + 0.17 * branch, 0), rtol=1e-5, atol=1e-5)
    keras.backend.clear_session()
