"""Xception against keras.applications: params, MACs, weight files (by order), ImageNet metadata, contract,
its 71 px minimum, fine-tuning groups and stochastic depth."""
import keras
import numpy as np
import pytest
from keras.src.applications import xception as ka_xception

import _kparity as kp
import cnnzoo
from cnnzoo.layers.blocks.xception import XceptionBlock
from cnnzoo.models import finetune_groups

KA = keras.applications


def test_params_and_macs_equal_keras():
    assert kp.check_params("xception", KA.Xception) == 22_910_480


# keras auto-names the shortcut convs, their BNs and the adds: legacy files load by order, Keras 3 files by class
# key in `model.layers` order, so both check that the graph lists keras' layers in keras' order. Each Xception build
# takes seconds here: one case per layout runs in the fast suite, the other two in the slow one.
@pytest.mark.parametrize("top,size,layout", [
    (True, 71, "legacy"), (False, 96, "keras3"),
    pytest.param(True, 71, "keras3", marks=pytest.mark.slow),
    pytest.param(False, 96, "legacy", marks=pytest.mark.slow),
])
def test_keras_weight_files_give_the_same_logits(top, size, layout, tmp_path):
    kp.check_weights("xception", KA.Xception, {}, size, top, layout, tmp_path)


def test_imagenet_metadata():
    for top, url in ((True, ka_xception.WEIGHTS_PATH), (False, ka_xception.WEIGHTS_PATH_NO_TOP)):
        file_name = kp.check_imagenet("xception", ka_xception, ka_xception.preprocess_input, include_top=top,
                                      size=299)
        _, located, file_hash = cnnzoo.registry.get_entry("xception").imagenet.locate(top, (299, 299, 3), {})
        assert located == url and file_name == url.rsplit("/", 1)[1] and len(file_hash) == 32
    assert cnnzoo.registry.get_entry("xception").preprocessing == {"mode": "tf"}


@pytest.mark.slow  # seven Xception builds
def test_keras_contract():
    kp.check_contract("xception", 2048, small=71)


def test_inputs_under_71_px_are_refused_as_keras_does():
    assert cnnzoo.registry.get_entry("xception").min_input_size == 71
    for shape in ((70, 70, 3), (71, 64, 3), (None, 32, 3)):
        with pytest.raises(ValueError, match=r"at least 71 pixels.*Received: input_shape="):
            cnnzoo.create_model("xception", include_top=False, input_shape=shape)


def test_stochastic_depth_grows_linearly_keeps_keras_order_and_inference(tmp_path):
    ka_model = KA.Xception(weights=None, input_shape=(71, 71, 3), classifier_activation=None)
    kp.randomize(ka_model)
    path = kp.save(ka_model, tmp_path / "xception.h5", "legacy")
    # Dropout layers on the branches must not reorder the weighted layers (legacy files load by order), and
    # change nothing at inference.
    model = cnnzoo.create_model("xception", input_shape=(71, 71, 3), weights=path, preprocessing=None,
                                classifier_activation=None, drop_path_rate=0.22)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 71, 71, 3)).astype("float32")
    assert kp.rel_diff(model(x, training=False), ka_model(x, training=False)) < 1e-5
    drops = {layer.name: layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)}
    # 12 residual blocks (2..13); the first gets rate 0 (no layer), the last the full rate.
    assert list(drops) == [f"block{b}_drop" for b in range(3, 14)]
    np.testing.assert_allclose(list(drops.values()), [0.02 * i for i in range(1, 12)], rtol=1e-6)
    assert model.get_layer("block13_drop").noise_shape == (None, 1, 1, 1)
    groups = finetune_groups(model)
    assert list(groups) == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    names = {group: {layer.name for layer in layers} for group, layers in groups.items()}
    assert {"block1_conv1", "block1_conv2_act"} <= names["stem"]
    assert {"block2_residual_conv", "block2_residual_bn", "block2_pool", "block2_add"} <= names["stage1"]
    assert {"block4_sepconv1", "block12_sepconv3_bn", "block12_add"} <= names["stage3"]
    assert {"block13_residual_bn", "block13_drop", "block14_sepconv2_act"} <= names["stage4"]
    assert names["head"] == {"avg_pool", "predictions"}
    with pytest.raises(ValueError, match="drop_path_rate"):
        cnnzoo.create_model("xception", input_shape=(71, 71, 3), drop_path_rate=1.0)
    keras.backend.clear_session()


def test_block_checks_its_shortcut():
    inputs = keras.Input((8, 8, 64))
    y = XceptionBlock((128, 128), downsample=True)(inputs, name="b")
    assert tuple(y.shape[1:]) == (4, 4, 128)
    with pytest.raises(ValueError, match="identity shortcut"):
        XceptionBlock((128,))(inputs, name="c")
    with pytest.raises(ValueError, match="drop_rate"):
        XceptionBlock((64,), drop_rate=1.5)
