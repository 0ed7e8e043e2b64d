"""The public blocks build the layers (and counts) their specs promise."""
import dataclasses

import keras
import numpy as np
import tensorflow as tf
import pytest

from cnnzoo.layers import BasicBlock, Bottleneck, ConvBNAct, InvertedResidual, Preprocessing, SqueezeExcite


def _conv_params(model):
    return sum(l.count_params() for l in model.layers if isinstance(l, (keras.layers.Conv2D,
                                                                        keras.layers.DepthwiseConv2D)))


def test_bottleneck_256_64_256_has_69632_conv_params():
    inputs = keras.Input((8, 8, 256))
    outputs = Bottleneck(64, use_bias=False)(inputs, name="b")
    model = keras.Model(inputs, outputs)
    assert _conv_params(model) == 256 * 64 + 64 * 64 * 9 + 64 * 256 == 69_632
    assert [l.name for l in model.layers if isinstance(l, keras.layers.Conv2D)] == ["b_1_conv", "b_2_conv",
                                                                                    "b_3_conv"]
    assert model.output_shape == (None, 8, 8, 256)


def test_basic_block_projection_and_se():
    inputs = keras.Input((16, 16, 32))
    outputs = BasicBlock(64, strides=2, se_ratio=0.25)(inputs, name="blk")
    model = keras.Model(inputs, outputs)
    names = {l.name for l in model.layers}
    assert {"blk_0_conv", "blk_0_bn", "blk_1_pad", "blk_se_squeeze", "blk_se_excite", "blk_add", "blk_out"} <= names
    assert model.get_layer("blk_se_reduce").filters == 16
    assert model.output_shape == (None, 8, 8, 64)


def test_squeeze_excite_gates_channels():
    inputs = keras.Input((4, 4, 8))
    model = keras.Model(inputs, SqueezeExcite(2)(inputs, prefix="se_"))
    x = np.random.default_rng(0).uniform(0, 1, (1, 4, 4, 8)).astype("float32")
    ratio = np.asarray(model(x)) / x
    # one gate per channel, in (0, 1), shared across positions
    assert np.allclose(ratio, ratio[:, :1, :1, :], atol=1e-5) and np.all((ratio > 0) & (ratio < 1))


@pytest.mark.parametrize("naming,expected", [
    ("mobilenet_v2", {"block_3_expand", "block_3_depthwise_BN", "block_3_project_BN", "block_3_pad"}),
    ("efficientnet", {"block2a_expand_conv", "block2a_dwconv", "block2a_se_reduce", "block2a_dwconv_pad"}),
])
def test_inverted_residual_names(naming, expected):
    prefix = "block_3_" if naming == "mobilenet_v2" else "block2a_"
    inputs = keras.Input((32, 32, 16))
    block = InvertedResidual(24, expand_ratio=6, strides=2, naming=naming,
                             se_ratio=0.25 if naming == "efficientnet" else None)
    model = keras.Model(inputs, block(inputs, prefix=prefix))
    assert expected <= {l.name for l in model.layers}
    assert model.output_shape == (None, 16, 16, 24)


def test_residual_only_when_shapes_match():
    inputs = keras.Input((8, 8, 16))
    model = keras.Model(inputs, InvertedResidual(16, drop_rate=0.1, naming="efficientnet")(inputs, prefix="b_"))
    assert {"b_add", "b_drop"} <= {l.name for l in model.layers}


def test_specs_are_frozen_and_validated():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ConvBNAct(8).filters = 4
    with pytest.raises(ValueError, match="Received: padding='full'"):
        ConvBNAct(8, padding="full")
    with pytest.raises(ValueError, match="Received: strides=3"):
        InvertedResidual(8, strides=3)
    with pytest.raises(TypeError, match="Received: filters='8'"):
        BasicBlock("8")


def test_preprocessing_modes_and_serialization():
    raw = np.array([[[[0.0, 127.5, 255.0]]]], "float32")
    np.testing.assert_allclose(Preprocessing("tf")(raw), [[[[-1, 0, 1]]]], atol=1e-6)
    np.testing.assert_allclose(Preprocessing("unit")(raw), raw / 255, atol=1e-6)
    custom = Preprocessing("custom", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    np.testing.assert_allclose(custom(raw), [[[[-1, 0, 1]]]], atol=1e-6)
    restored = Preprocessing.from_config(custom.get_config())
    np.testing.assert_allclose(restored(raw), custom(raw))
    grey = Preprocessing("torch")(np.full((1, 1, 1, 1), 255.0, "float32"))
    assert grey.shape == (1, 1, 1, 1)
    with pytest.raises(ValueError, match="Received: mode='bgr'"):
        Preprocessing("bgr")
    with pytest.raises(ValueError, match="Received: mean=None"):
        Preprocessing("custom")
    assert Preprocessing().trainable is False and not Preprocessing().weights


def test_same_shaped_layers_start_from_different_weights():
    # One shared initializer instance (Keras fixes its seed when made) gave every same-shaped conv equal weights.
    import cnnzoo

    model = cnnzoo.create_model("resnet50", include_top=False, input_shape=(32, 32, 3))
    kernels = [model.get_layer(f"conv4_block{i}_1_conv").kernel.numpy() for i in (2, 3, 4)]
    assert not np.array_equal(kernels[0], kernels[1]) and not np.array_equal(kernels[1], kernels[2])
    dense = cnnzoo.create_model("densenet121", include_top=False, input_shape=(32, 32, 3))
    first, second = (dense.get_layer(f"conv2_block{i}_2_conv").kernel.numpy() for i in (1, 2))  # both 3x3, 128 -> 32
    assert first.shape == second.shape and not np.array_equal(first, second)


@pytest.mark.parametrize("split", [False, True], ids=["auto-gradients", "split-gradients"])
@pytest.mark.parametrize("groups,filters", [(4, 8), (8, 8)])   # grouped (ResNeXt) and depthwise (ConvNeXt)
def test_grouped_conv2d_equals_keras_and_keeps_its_weights(groups, filters, split, monkeypatch):
    from cnnzoo.layers.blocks import Conv2D, core

    if split:   # the per-group backward pass that TensorFlow builds without oneDNN or a GPU take
        monkeypatch.setattr(core, "_native_grouped_gradients", lambda: False)

    x = np.random.default_rng(0).normal(size=(2, 9, 9, 8)).astype("float32")
    ours = Conv2D(filters, 3, strides=2, padding="same", groups=groups)
    theirs = keras.layers.Conv2D(filters, 3, strides=2, padding="same", groups=groups)
    ours.build(x.shape), theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
    assert type(ours).__name__ == "Conv2D" and ours.kernel.shape == theirs.kernel.shape   # same file keys
    # Gradients too, eager and in a graph: TensorFlow's plain CPU kernels have no grouped backprop.
    weights = np.arange(filters, dtype="float32")

    def grads(layer, inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(layer(inputs) * weights)
        return tape.gradient(loss, [inputs, layer.kernel, layer.bias])

    xt = tf.constant(x)
    expected = grads(theirs, xt)
    for got in (grads(ours, xt), tf.function(grads)(ours, xt)):
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
