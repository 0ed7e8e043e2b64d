"""DenseNet-121/169/201 against keras.applications: params, MACs, weight files, ImageNet metadata, contract."""
import keras
import numpy as np
import pytest
from keras.src.applications import densenet as ka_densenet

import _kparity as kp
import cnnzoo
from cnnzoo.layers.blocks.dense import DenseLayer, Transition
from cnnzoo.models import finetune_groups

KA = keras.applications
BUILDERS = {"densenet121": KA.DenseNet121, "densenet169": KA.DenseNet169, "densenet201": KA.DenseNet201}
# keras.applications' own URL constants, one per file.
URLS = {
    ("densenet121", True): ka_densenet.DENSENET121_WEIGHT_PATH,
    ("densenet121", False): ka_densenet.DENSENET121_WEIGHT_PATH_NO_TOP,
    ("densenet169", True): ka_densenet.DENSENET169_WEIGHT_PATH,
    ("densenet169", False): ka_densenet.DENSENET169_WEIGHT_PATH_NO_TOP,
    ("densenet201", True): ka_densenet.DENSENET201_WEIGHT_PATH,
    ("densenet201", False): ka_densenet.DENSENET201_WEIGHT_PATH_NO_TOP,
}


# 169 and 201 take the same code path as 121 with deeper blocks: slow (still run by CI), like the no-top files
# (the same backbone) and the contract (seven builds of a 429-layer model); the fast part stays ~25 s of CPU.
@pytest.mark.parametrize("name", ["densenet121", pytest.param("densenet169", marks=pytest.mark.slow),
                                  pytest.param("densenet201", marks=pytest.mark.slow)])
def test_params_and_macs_equal_keras(name):
    kp.check_params(name, BUILDERS[name])


@pytest.mark.parametrize("layout", ["legacy", "keras3"])
@pytest.mark.parametrize("top", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_keras_weight_files_give_the_same_logits(top, layout, tmp_path):
    kp.check_weights("densenet121", KA.DenseNet121, {}, 64, top, layout, tmp_path)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_imagenet_metadata(name):
    for top in (True, False):
        file_name = kp.check_imagenet(name, ka_densenet, ka_densenet.preprocess_input, include_top=top)
        _, url, file_hash = cnnzoo.registry.get_entry(name).imagenet.locate(top, (224, 224, 3), {})
        assert url == URLS[name, top] and file_name == url.rsplit("/", 1)[1]
        assert len(file_hash) == 32
    assert cnnzoo.registry.get_entry(name).preprocessing == {"mode": "torch"}


@pytest.mark.slow
def test_keras_contract():
    kp.check_contract("densenet121", 1024)


def test_32_px_gives_a_1x1_map_and_groups_every_layer():
    model = cnnzoo.create_model("densenet121", num_classes=3, input_shape=(32, 32, 3))
    assert tuple(model.get_layer("relu").output.shape) == (None, 1, 1, 1024)
    assert np.all(np.isfinite(model(np.zeros((1, 32, 32, 3), "float32"), training=False)))
    groups = finetune_groups(model)
    assert list(groups) == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    names = {group: {layer.name for layer in layers} for group, layers in groups.items()}
    # A stage is a transition plus the dense block after it; the final BN-ReLU goes with stage4.
    assert {"pool2_bn", "pool2_conv", "pool2_pool", "conv3_block1_0_bn", "conv3_block12_concat"} <= names["stage2"]
    assert {"conv2_block1_0_bn", "conv2_block6_concat"} <= names["stage1"] and "pool2_conv" not in names["stage1"]
    assert {"pool4_conv", "conv5_block16_concat", "bn", "relu"} <= names["stage4"]
    assert {"conv1_conv", "conv1_bn", "conv1_relu", "pool1"} <= names["stem"]
    assert names["head"] == {"avg_pool", "predictions"}
    # Not residual: no stochastic depth option, and no Dropout layers.
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    with pytest.raises((TypeError, ValueError), match="drop_path_rate"):
        cnnzoo.create_model("densenet121", input_shape=(32, 32, 3), drop_path_rate=0.1)
    keras.backend.clear_session()


def test_blocks_grow_and_compress_channels():
    inputs = keras.Input((8, 8, 64))
    x = DenseLayer(32)(inputs, name="conv2_block1")
    assert x.shape[-1] == 96
    y = Transition(0.5)(x, name="pool2")
    assert tuple(y.shape[1:]) == (4, 4, 48)
    with pytest.raises(ValueError, match="growth_rate"):
        DenseLayer(0)
    with pytest.raises(ValueError, match="compression"):
        Transition(1.5)
