"""MobileNetV1 against keras.applications: params, MACs (every alpha, depth_multiplier), weight files (its
1x1-conv classifier into our Dense), ImageNet files per alpha and size, contract, groups, head dropout."""
import keras
import pytest
from keras.src.applications import mobilenet as ka_mobilenet

import _kparity as kp
import cnnzoo
from cnnzoo.models import finetune_groups

KA = keras.applications
NAMES = {"mobilenet_v1": 1.0, "mobilenet_v1_025": 0.25, "mobilenet_v1_050": 0.5, "mobilenet_v1_075": 0.75,
         "mobilenet_v1_100": 1.0}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_params_and_macs_equal_keras(name):
    kp.check_params(name, KA.MobileNet, alpha=NAMES[name])


def test_depth_multiplier_params_and_macs_equal_keras():
    # Parameters do not depend on the input size: 96 px keeps the build cheap.
    ka_model = KA.MobileNet(weights=None, alpha=0.25, depth_multiplier=2, input_shape=(96, 96, 3))
    ours = cnnzoo.create_model("mobilenet_v1_025", depth_multiplier=2, input_shape=(96, 96, 3), preprocessing=None)
    assert ours.count_params() == kp.keras_count(ka_model) == 687_888
    assert cnnzoo.profile(ours).macs == kp.independent_macs(ka_model)
    keras.backend.clear_session()


@pytest.mark.parametrize("layout", ["legacy", "keras3"])
@pytest.mark.parametrize("top", [True, False])
def test_keras_weight_files_give_the_same_logits(top, layout, tmp_path):
    kp.check_weights("mobilenet_v1_025", KA.MobileNet, {"alpha": 0.25}, 64, top, layout, tmp_path)


def test_depth_multiplier_weight_files_give_the_same_logits(tmp_path):
    kp.check_weights("mobilenet_v1_025", KA.MobileNet, {"alpha": 0.25, "depth_multiplier": 2}, 64, True, "keras3",
                     tmp_path, overrides={"depth_multiplier": 2})


def _locate(name, top, size, **options):
    entry = cnnzoo.registry.get_entry(name)
    return entry.imagenet.locate(top, size, {**entry.defaults, **options})


@pytest.mark.parametrize("name", sorted(NAMES))
def test_imagenet_metadata(name):
    for top in (True, False):
        kp.check_imagenet(name, ka_mobilenet, ka_mobilenet.preprocess_input, include_top=top)
    assert cnnzoo.registry.get_entry(name).imagenet.classifier == "conv_preds"
    assert cnnzoo.registry.get_entry(name).preprocessing == {"mode": "tf"}


@pytest.mark.parametrize("name,options,top,size,expected", [
    ("mobilenet_v1_025", {}, True, (128, 128, 3), "mobilenet_2_5_128_tf.h5"),
    ("mobilenet_v1_050", {}, False, (160, 160, 3), "mobilenet_5_0_160_tf_no_top.h5"),
    ("mobilenet_v1_075", {}, True, (192, 192, 3), "mobilenet_7_5_192_tf.h5"),
    ("mobilenet_v1_100", {}, False, (224, 224, 3), "mobilenet_1_0_224_tf_no_top.h5"),
    ("mobilenet_v1", {"alpha": 0.5}, True, (224, 224, 3), "mobilenet_5_0_224_tf.h5"),
    ("mobilenet_v1", {"alpha": 0.75}, False, (128, 128, 3), "mobilenet_7_5_128_tf_no_top.h5"),
])
def test_imagenet_file_follows_alpha_and_size(name, options, top, size, expected):
    file_name, url, file_hash = _locate(name, top, size, **options)
    assert file_name == expected and url == ka_mobilenet.BASE_WEIGHT_PATH + expected and file_hash is None


@pytest.mark.parametrize("size", [(96, 96, 3), (128, 160, 3), (None, None, 3)])
def test_imagenet_file_for_other_sizes_warns_and_is_the_224_one(size):
    with pytest.warns(UserWarning, match="224"):
        file_name, _, _ = _locate("mobilenet_v1_025", False, size)
    assert file_name == "mobilenet_2_5_224_tf_no_top.h5"


def test_imagenet_refuses_other_alphas_and_depth_multipliers():
    with pytest.raises(ValueError, match=r"alpha in .*Received: alpha=0.6"):
        _locate("mobilenet_v1", True, (224, 224, 3), alpha=0.6)
    with pytest.raises(ValueError, match=r"depth_multiplier=1.*Received: depth_multiplier=2"):
        _locate("mobilenet_v1_050", True, (224, 224, 3), depth_multiplier=2)
    # Through create_model too: refused before any download is tried.
    with pytest.raises(ValueError, match="Received: alpha=0.6"):
        cnnzoo.create_model("mobilenet_v1", alpha=0.6, input_shape=(32, 32, 3), weights="imagenet")
    keras.backend.clear_session()


def test_keras_contract():
    kp.check_contract("mobilenet_v1", 1024)


def test_names_fix_alpha_and_options_are_checked():
    with pytest.raises(ValueError, match=r"fixes alpha=0.5.*'mobilenet_v1' with alpha=1.0"):
        cnnzoo.create_model("mobilenet_v1_050", alpha=1.0)
    with pytest.raises(ValueError, match="Received: alpha=0.01"):
        cnnzoo.create_model("mobilenet_v1", alpha=0.01, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="Received: depth_multiplier=0"):
        cnnzoo.create_model("mobilenet_v1", depth_multiplier=0, input_shape=(32, 32, 3))
    with pytest.raises(TypeError, match="depth_multiplier"):
        cnnzoo.create_model("mobilenet_v1", depth_multiplier=1.5, input_shape=(32, 32, 3))
    # Not residual: no stochastic depth.
    with pytest.raises(TypeError, match="drop_path_rate"):
        cnnzoo.create_model("mobilenet_v1_025", input_shape=(32, 32, 3), drop_path_rate=0.1)


def test_groups_by_output_stride_and_keras_head_dropout():
    model = cnnzoo.create_model("mobilenet_v1_025", num_classes=3, input_shape=(32, 32, 3))
    assert model.get_layer("conv_pw_13_relu").output.shape[1:] == (1, 1, 256)
    groups = finetune_groups(model)
    assert list(groups) == ["stem", "stage1", "stage2", "stage3", "stage4", "stage5", "head"]
    names = {group: {layer.name for layer in layers} for group, layers in groups.items()}
    assert names["stem"] == {"conv1", "conv1_bn", "conv1_relu"}
    assert {"conv_dw_1", "conv_pw_1_relu"} <= names["stage1"]
    assert {"conv_pad_2", "conv_dw_2", "conv_pw_3_relu"} <= names["stage2"]
    assert {"conv_pad_6", "conv_pw_11_bn"} <= names["stage4"] and "conv_pad_12" in names["stage5"]
    assert names["head"] == {"avg_pool", "top_dropout", "predictions"}
    # keras' head drops out 1e-3 while training; dropout=None keeps it, 0 removes it, a rate replaces it.
    assert model.get_layer("top_dropout").rate == 1e-3
    plain = cnnzoo.create_model("mobilenet_v1_025", num_classes=3, input_shape=(32, 32, 3), dropout=0)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in plain.layers)
    assert cnnzoo.create_model("mobilenet_v1_025", num_classes=3, input_shape=(32, 32, 3),
                               dropout=0.2).get_layer("top_dropout").rate == 0.2
    keras.backend.clear_session()
