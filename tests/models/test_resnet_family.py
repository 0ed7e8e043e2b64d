"""ResNet v2 (pre-activation) against keras.applications, ResNeXt / SE-ResNeXt against torchvision and timm, and
stochastic depth (`drop_path_rate`) across every residual family of the ResNet world."""
import keras
import numpy as np
import pytest

import _kparity as kp
import cnnzoo
from cnnzoo.layers.blocks import Bottleneck, PreActBottleneck, drop_path_rates
from cnnzoo.models import finetune_groups
from cnnzoo.profiling import layer_macs

KA = keras.applications
SMALL = (32, 32, 3)


# --- ResNet v2 ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,builder", [
    ("resnet50_v2", KA.ResNet50V2),
    pytest.param("resnet101_v2", KA.ResNet101V2, marks=pytest.mark.slow),
    pytest.param("resnet152_v2", KA.ResNet152V2, marks=pytest.mark.slow),
])
def test_v2_params_and_macs_equal_keras(name, builder):
    kp.check_params(name, builder)


@pytest.mark.parametrize("layout", ["legacy", "keras3"])
@pytest.mark.parametrize("top", [True, False])
def test_v2_keras_weights_give_same_logits(top, layout, tmp_path):
    kp.check_weights("resnet50_v2", KA.ResNet50V2, {}, 64, top, layout, tmp_path)


@pytest.mark.parametrize("name,weights_name", [("resnet50_v2", "resnet50v2"), ("resnet101_v2", "resnet101v2"),
                                               ("resnet152_v2", "resnet152v2")])
def test_v2_imagenet_files_and_preprocessing(name, weights_name):
    from keras.src.applications import resnet

    assert kp.check_imagenet(name, KA.resnet_v2, KA.resnet_v2.preprocess_input) == (
        f"{weights_name}_weights_tf_dim_ordering_tf_kernels.h5")
    entry = cnnzoo.registry.get_entry(name)
    file_name, url, file_hash = entry.imagenet.locate(False, (224, 224, 3), {})
    assert file_name == f"{weights_name}_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert url == resnet.BASE_WEIGHTS_PATH + file_name and file_hash == resnet.WEIGHTS_HASHES[weights_name][1]
    assert entry.preprocessing == entry.imagenet.preprocessing == {"mode": "tf"}


def test_v2_contract():
    kp.check_contract("resnet50_v2", 2048)


def test_v2_layout_strides_in_last_block_biases_epsilons_groups_and_drop_path():
    model = cnnzoo.create_model("resnet50_v2", num_classes=3, input_shape=(64, 64, 3), drop_path_rate=0.2)
    get = model.get_layer
    assert get("conv1_conv").use_bias and "conv1_bn" not in {l.name for l in model.layers}
    # keras' v2: block 1 projects (stride 1), the LAST block of stages 1-3 strides and its shortcut max-pools.
    assert get("conv2_block1_0_conv").strides == (1, 1) and get("conv2_block1_0_conv").use_bias
    assert get("conv2_block3_2_conv").strides == (2, 2) and get("conv2_block3_0_pool").strides == (2, 2)
    assert get("conv4_block6_0_pool").strides == (2, 2) and "conv5_block3_0_pool" not in {l.name for l in model.layers}
    assert tuple(get("conv2_block3_out").output.shape[1:3]) == (8, 8)
    assert not get("conv3_block1_1_conv").use_bias and not get("conv3_block1_2_conv").use_bias
    assert get("conv3_block1_3_conv").use_bias
    assert isinstance(get("conv3_block1_out"), keras.layers.Add)
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert {l.epsilon for l in bns} == {1.001e-5} and {l.momentum for l in bns} == {0.99}
    assert [b.name for b in bns[:2]] == ["conv2_block1_preact_bn", "conv2_block1_1_bn"]
    groups = finetune_groups(model)
    assert list(groups) == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    names = {g: {l.name for l in layers} for g, layers in groups.items()}
    assert {"conv1_pad", "conv1_conv", "pool1_pad", "pool1_pool"} <= names["stem"]
    assert "conv2_block3_0_pool" in names["stage1"] and {"post_bn", "post_relu"} <= names["stage4"]
    # Stochastic depth on the residual branch, just before the `_out` add: 15 of 16 blocks (the first has rate 0).
    drops = _drops(model)
    assert len(drops) == 15 and all(get(l.name[:-len("drop")] + "out").input[1] is l.output for l in drops)
    np.testing.assert_allclose([l.rate for l in drops], _expected_rates(model, "resnet50_v2", 0.2), rtol=1e-12)
    assert get("conv5_block3_drop").rate == pytest.approx(0.2)
    assert "conv2_block1_drop" not in {l.name for l in model.layers}


# --- ResNeXt / SE-ResNeXt ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,trainable,published_gmacs", [
    ("resnext50_32x4d", 25_028_904, 4.23),          # torchvision
    pytest.param("resnext101_32x8d", 88_791_336, 16.41, marks=pytest.mark.slow),  # torchvision
    ("se_resnext50_32x4d", 27_559_896, None),       # timm's seresnext50_32x4d
])
def test_resnext_counts_equal_torchvision_and_timm(name, trainable, published_gmacs):
    model = cnnzoo.create_model(name, preprocessing=None)  # 224 px, 1000 classes, built without calling
    prof = cnnzoo.profile(model)
    assert prof.trainable_params == trainable, (name, prof.trainable_params)
    # Grouped convolutions count in_channels / groups multiply-adds per output value.
    assert prof.macs == kp.independent_macs(model)
    if published_gmacs:
        assert abs(prof.macs / 1e9 - published_gmacs) / published_gmacs < 0.02, prof.macs
    keras.backend.clear_session()


def test_resnext_layout_is_torchvisions():
    model = cnnzoo.create_model("resnext50_32x4d", num_classes=3, input_shape=SMALL)
    get = model.get_layer
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert not any(l.use_bias for l in convs)
    assert {l.epsilon for l in model.layers if isinstance(l, keras.layers.BatchNormalization)} == {1e-5}
    grouped = get("conv3_block1_2_conv")
    assert grouped.groups == 32 and grouped.filters == 256 and grouped.strides == (2, 2)  # v1.5: stride on the 3x3
    assert get("conv3_block1_1_conv").strides == (1, 1) and get("conv3_block1_3_conv").filters == 512
    assert get("conv2_block1_1_conv").filters == 128 and get("conv5_block1_2_conv").filters == 1024
    macs = layer_macs(grouped, grouped.input.shape, grouped.output.shape)
    assert macs == 4 * 4 * 256 * 9 * 256 // 32  # 32 px: 8x8 into stage 2, 4x4 after its stride
    x = np.random.default_rng(0).uniform(0, 255, (2,) + SMALL).astype("float32")
    assert np.all(np.isfinite(model(x, training=False)))
    se = cnnzoo.create_model("se_resnext50_32x4d", num_classes=3, input_shape=SMALL)
    assert se.get_layer("conv2_block1_se_reduce").filters == 16 and se.get_layer("conv5_block3_2_conv").groups == 32
    keras.backend.clear_session()


def test_bottleneck_width_rule_and_checks():
    assert Bottleneck(64).width == 64
    assert Bottleneck(64, groups=32, base_width=4).width == 128   # resnext50_32x4d, first stage
    assert Bottleneck(512, groups=32, base_width=8).width == 2048  # resnext101_32x8d, last stage
    assert Bottleneck(64, groups=2, base_width=40).width == 80      # int(64 * 40 / 64) * 2
    with pytest.raises(ValueError, match="Received: groups=0"):
        Bottleneck(64, groups=0)
    with pytest.raises(ValueError, match="Received: filters=8, base_width=4"):
        Bottleneck(8, groups=32, base_width=4)
    with pytest.raises(ValueError, match="Received: drop_rate=1.0"):
        PreActBottleneck(64, drop_rate=1.0)


# --- stochastic depth --------------------------------------------------------------------------------------------

def _drops(model):
    return [l for l in model.layers if isinstance(l, keras.layers.Dropout) and l.name.endswith("_drop")]


def _expected_rates(model, name, rate):
    """The rate each `_drop` layer should have, from its block's index (blocks without a residual have none)."""
    drop_names = [l.name for l in _drops(model)]
    if name.startswith("mobilenet_v2"):  # block_{i}_drop: EfficientNet's rule, rate * i / 17
        return [rate * int(n.split("_")[1]) / 17 for n in drop_names]
    if name.startswith("efficientnet"):  # keras' rule over B0's 16 blocks, in model order
        blocks = [l.name[:-len("project_bn")] for l in model.layers if l.name.endswith("_project_bn")]
        return [rate * blocks.index(n[:-len("drop")]) / 16 for n in drop_names]
    # ResNets: timm's linspace from 0 at the first block to `rate` at the last
    blocks = [f"conv{s}_block{b}_" for s, n in zip((2, 3, 4, 5), cnnzoo.models.resnet.SPECS[name].layers)
              for b in range(1, n + 1)]
    linear = drop_path_rates(rate, len(blocks), endpoint=True)
    return [linear[blocks.index(n[:-len("drop")])] for n in drop_names]


@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d", "mobilenet_v2_035", "efficientnet_b0"])
def test_drop_path_rate_adds_dropout_and_changes_nothing_at_inference(name):
    # Rate 0 is the default (EfficientNet: keras' 0.2) and adds no layer: the models of before the option.
    plain = cnnzoo.create_model(name, num_classes=3, input_shape=SMALL,
                                **({"drop_path_rate": 0.0} if name.startswith("efficientnet") else {}))
    dropped = cnnzoo.create_model(name, num_classes=3, input_shape=SMALL, drop_path_rate=0.3)
    assert not _drops(plain)
    drops = _drops(dropped)
    drop_names = [l.name for l in drops]
    assert len(drops) >= 5
    # The same layers plus the drops (Keras orders layers by depth, so the order of parallel branches may differ).
    assert sorted(l.name for l in dropped.layers if l not in drops) == sorted(l.name for l in plain.layers)
    np.testing.assert_allclose([l.rate for l in drops], _expected_rates(dropped, name, 0.3), rtol=1e-12)
    assert all(l.noise_shape == (None, 1, 1, 1) for l in drops)  # a whole residual branch per sample
    group_of = cnnzoo.registry.get_entry(name).group_of
    assert all(group_of(n) and group_of(n).startswith("stage") for n in drop_names)
    for layer in plain.layers:
        if layer.weights:
            dropped.get_layer(layer.name).set_weights(layer.get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (8,) + SMALL).astype("float32")
    np.testing.assert_array_equal(dropped(x, training=False), plain(x, training=False))
    assert not np.allclose(dropped(x, training=True), dropped(x, training=True))
    keras.backend.clear_session()


@pytest.mark.parametrize("name", ["resnet34", "resnet50", "resnet50_v1_5", "se_resnet18", "se_resnet50",
                                  "resnet101_v2", "resnext101_32x8d", "se_resnext50_32x4d", "mobilenet_v2",
                                  "efficientnet_b3"])
def test_every_residual_name_takes_drop_path_rate(name):
    with pytest.raises(ValueError, match=r"Received: drop_path_rate=1\.0"):
        cnnzoo.create_model(name, input_shape=SMALL, drop_path_rate=1.0)
    with pytest.raises(ValueError, match=r"Received: drop_path_rate=-0\.1"):
        cnnzoo.create_model(name, input_shape=SMALL, drop_path_rate=-0.1)


def test_efficientnet_drop_path_rate_and_drop_connect_rate_are_one_option():
    def rates(**kwargs):
        return [l.rate for l in _drops(cnnzoo.create_model("efficientnet_b0", num_classes=3, input_shape=SMALL,
                                                           **kwargs))]

    default = rates()
    assert max(default) == pytest.approx(0.2 * 14 / 16)  # keras' drop_connect_rate=0.2; block 15 has no residual
    assert rates(drop_path_rate=0.1) == rates(drop_path_rate=0.1, drop_connect_rate=0.1) == pytest.approx(
        [r / 2 for r in default])
    with pytest.raises(ValueError, match=r"pass one of them.*Received: drop_path_rate=0\.1, drop_connect_rate=0\.3"):
        cnnzoo.create_model("efficientnet_b0", input_shape=SMALL, drop_path_rate=0.1, drop_connect_rate=0.3)
    with pytest.raises(ValueError, match=r"Received: drop_path_rate=0\.0, drop_connect_rate=0\.2"):
        cnnzoo.create_model("efficientnet_b0", input_shape=SMALL, drop_path_rate=0.0, drop_connect_rate=0.2)
    keras.backend.clear_session()
