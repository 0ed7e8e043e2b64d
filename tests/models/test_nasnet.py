"""NASNet-A Mobile/Large against keras.applications: params, MACs, weight files, contract; any-size graphs."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import _kparity as kp
import cnnzoo
from cnnzoo.layers.blocks.nasnet import SamePadding2D
from cnnzoo.models import finetune_groups

KA = keras.applications
NAS = keras.src.applications.nasnet


def test_params_and_macs_mobile():
    assert kp.check_params("nasnet_mobile", KA.NASNetMobile) == 5_326_716


@pytest.mark.slow
def test_params_and_macs_large():
    assert kp.check_params("nasnet_large", KA.NASNetLarge) == 88_949_818


# A NASNet pair of builds costs ~12 s of CPU: each layout and each top once (the crossed pair adds no code path:
# top and no-top differ only in the classifier, which the legacy case loads).
@pytest.mark.parametrize("top,layout", [(True, "legacy"), (False, "keras3")])
def test_keras_weight_files_load(top, layout, tmp_path):
    kp.check_weights("nasnet_mobile", KA.NASNetMobile, {}, 64, top, layout, tmp_path)


@pytest.mark.parametrize("name,weights_name", [("nasnet_mobile", "NASNet-mobile"), ("nasnet_large", "NASNet-large")])
def test_imagenet_metadata(name, weights_name):
    assert kp.check_imagenet(name, NAS, NAS.preprocess_input) == f"{weights_name}.h5"
    assert kp.check_imagenet(name, NAS, NAS.preprocess_input, include_top=False) == f"{weights_name}-no-top.h5"
    assert cnnzoo.registry.get_entry(name).imagenet.preprocessing == {"mode": "tf"}


@pytest.mark.slow  # seven builds
def test_contract():
    kp.check_contract("nasnet_mobile", 1056)


@pytest.mark.slow
def test_unknown_size_equals_static_size_at_odd_and_even_sizes():
    """keras pads for stride 2 by the static size; unknown sizes pad when the tensor arrives, to the same result."""
    any_size = cnnzoo.create_model("nasnet_mobile", include_top=False, pooling="avg", input_shape=(None, None, 3),
                                   preprocessing=None)
    assert any(isinstance(layer, SamePadding2D) for layer in any_size.layers)
    kp.randomize(any_size)
    # One graph for every size: the paddings are computed from the dynamic shape, as in fit/predict/export.
    graph = tf.function(lambda x: any_size(x, training=False),
                        input_signature=[tf.TensorSpec((None, None, None, 3), "float32")])
    for size in (45, 64):  # stem output 22 / 31: odd maps reach the stride-2 cells
        static = cnnzoo.create_model("nasnet_mobile", include_top=False, pooling="avg", input_shape=(size, size, 3),
                                     preprocessing=None)
        assert not any(isinstance(layer, SamePadding2D) for layer in static.layers)  # keras' ZeroPadding2D
        static.set_weights(any_size.get_weights())
        x = np.random.default_rng(size).uniform(-1, 1, (1, size, size, 3)).astype("float32")
        assert kp.rel_diff(graph(x), static(x, training=False)) < 1e-6
    keras.backend.clear_session()


def test_same_padding_equals_keras_correct_pad():
    from cnnzoo.layers.blocks import correct_pad

    for size in (7, 8, 15, 16):
        for kernel in (3, 5, 7):
            x = keras.Input((size, size + 1, 2))
            assert SamePadding2D(kernel).compute_output_shape(x.shape) == \
                keras.layers.ZeroPadding2D(correct_pad(x, kernel)).compute_output_shape(x.shape)
            value = np.ones((1, size, size + 1, 2), "float32")
            padded = keras.ops.convert_to_numpy(SamePadding2D(kernel)(value))
            expected = keras.ops.convert_to_numpy(
                keras.layers.ZeroPadding2D(correct_pad(keras.Input((size, size + 1, 2)), kernel))(value))
            np.testing.assert_array_equal(padded, expected)
    layer = SamePadding2D(5, name="pad")
    assert SamePadding2D.from_config(layer.get_config()).kernel_size == 5


def test_finetune_groups_follow_the_cells():
    model = cnnzoo.create_model("nasnet_mobile", num_classes=3, input_shape=(32, 32, 3))
    groups = finetune_groups(model)
    assert list(groups) == ["stem", "stage1", "stage2", "stage3", "head"]
    names = {group: {layer.name for layer in layers} for group, layers in groups.items()}
    assert {"stem_conv1", "adjust_bn_stem_2", "reduction_concat_stem_2"} <= names["stem"]
    assert {"normal_concat_0", "normal_concat_3"} <= names["stage1"]
    assert {"reduction_concat_reduce_4", "normal_concat_5", "normal_concat_8"} <= names["stage2"]
    assert {"reduction_concat_reduce_8", "normal_concat_12", "final_relu"} <= names["stage3"]
    assert names["head"] == {"avg_pool", "predictions"}
    group_of = cnnzoo.registry.get_entry("nasnet_large").group_of
    assert group_of("normal_concat_6") is None and group_of("normal_concat_7") == "stage2"
    assert group_of("separable_conv_2_bn_reduction_right3_reduce_12") == "stage3"
    assert group_of("normal_concat_18") == "stage3" and group_of("normal_concat_19") is None


def test_no_drop_path_option():
    with pytest.raises(TypeError, match="drop_path_rate"):
        cnnzoo.create_model("nasnet_mobile", input_shape=(32, 32, 3), drop_path_rate=0.1)
