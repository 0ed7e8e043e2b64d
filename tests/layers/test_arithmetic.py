"""Convolution arithmetic: output sizes, receptive fields, parameter counts and the RGB worked example."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnzoo.layers import LpPooling2D, MixedPooling2D, Padding2D, conv_output_size, receptive_field


# --- conv_output_size -------------------------------------------------------------------------------

@pytest.mark.parametrize("padding, stride, expected", [
    (0, 1, 30), (1, 1, 32), (0, 2, 15), (1, 2, 16), (2, 1, 34), (1, 3, 11),
])
def test_conv_output_size_table_for_32_px_and_3x3(padding, stride, expected):
    assert conv_output_size(32, 3, stride=stride, padding=padding) == expected


def test_conv_output_size_7x7_worked_examples():
    assert conv_output_size(7, 3, stride=1) == 5
    assert conv_output_size(7, 3, stride=2) == 3
    assert conv_output_size(7, 3, stride=1, padding=1) == 7


@pytest.mark.parametrize("size, kernel, stride, padding, dilation", [
    (32, 3, 1, "same", 1), (33, 3, 2, "same", 1), (32, 3, 2, "valid", 1), (31, 5, 3, 2, 1), (32, 3, 1, 0, 2),
    (20, 3, 2, (0, 1), 3), (9, 4, 2, (2, 1), 1),
])
def test_conv_output_size_matches_keras_conv2d(size, kernel, stride, padding, dilation):
    x = np.zeros((1, size, size, 1), "float32")
    if isinstance(padding, str):
        conv_padding = padding
    else:
        pads = (padding, padding) if isinstance(padding, int) else padding
        x = np.pad(x, ((0, 0), pads, pads, (0, 0)))
        conv_padding = "valid"
    # Keras rejects strides > 1 with dilation > 1 in one layer; dilation 1 vs stride is what we compare.
    conv = keras.layers.Conv2D(1, kernel, strides=stride if dilation == 1 else 1, padding=conv_padding,
                               dilation_rate=dilation)
    expected = conv(x).shape[1]
    assert conv_output_size(size, kernel, stride if dilation == 1 else 1, padding, dilation) == expected


def test_conv_output_size_dilation_widens_the_window():
    # A 3x3 kernel with dilation 2 spans 5 pixels (the notes' dilated-kernel figure).
    assert conv_output_size(7, 3, dilation=2) == conv_output_size(7, 5) == 3


@pytest.mark.parametrize("kwargs, name", [
    (dict(size=0, kernel=3), "size"), (dict(size=8, kernel=0), "kernel"), (dict(size=8, kernel=3, stride=0), "stride"),
    (dict(size=8, kernel=3, padding=-1), "padding"), (dict(size=8, kernel=3, dilation=0), "dilation"),
    (dict(size=8, kernel=3, padding="full"), "padding"), (dict(size=8, kernel=3, padding=(1, 2, 3)), "padding"),
    (dict(size=2, kernel=3), "size"),
])
def test_conv_output_size_rejects_bad_arguments(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=f"Received: {name}="):
        conv_output_size(**kwargs)


def test_conv_output_size_rejects_non_integers():
    with pytest.raises(TypeError, match="Received: size=3.5"):
        conv_output_size(3.5, 3)


# --- receptive_field --------------------------------------------------------------------------------

def _stack(*layers, shape=(None, None, 3)):
    return keras.Sequential([keras.Input(shape), *layers])


def test_five_stacked_3x3_convs_see_11_pixels():
    model = _stack(*[keras.layers.Conv2D(4, 3, padding="same") for _ in range(5)])
    assert receptive_field(model) == 11


def test_receptive_field_strides_pools_and_dilation():
    model = _stack(keras.layers.Conv2D(4, 3), keras.layers.MaxPooling2D(2),  # 3, then 3 + 1 = 4, jump 2
                   keras.layers.Conv2D(4, 3, dilation_rate=2),                 # 4 + 2*2*2 = 12
                   Padding2D(1, "reflect"), keras.layers.BatchNormalization(), keras.layers.ReLU(),
                   LpPooling2D(3, strides=2), keras.layers.DepthwiseConv2D(3))  # 12 + 2*2 = 16, jump 4; 16 + 2*4
    assert receptive_field(model) == 24


def test_receptive_field_is_a_pair_only_when_height_and_width_differ():
    assert receptive_field(_stack(keras.layers.Conv2D(2, (3, 1)), keras.layers.Conv2D(2, (3, 5)))) == 5
    assert receptive_field(_stack(keras.layers.Conv2D(2, (1, 3)), keras.layers.Conv2D(2, (3, 3)))) == (3, 5)


def test_receptive_field_stops_at_global_pooling_and_follows_nested_models():
    inner = _stack(keras.layers.Conv2D(4, 3, strides=2), keras.layers.Conv2D(4, 3), shape=(None, None, 4))
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3)(inputs)          # r 3, jump 1
    x = keras.layers.AveragePooling2D(2)(x)        # r 4, jump 2
    x = inner(x)                                   # inner: r 7, jump 2 -> 4 + 6 * 2 = 16
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2)(x)
    assert receptive_field(keras.Model(inputs, outputs)) == 16


@pytest.mark.parametrize("build, expected", [
    (lambda: keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3)), 212),
    (lambda: keras.applications.MobileNet(weights=None, include_top=False, input_shape=(32, 32, 3)), 315),
    (lambda: keras.applications.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3)), 483),
])
def test_receptive_field_of_published_networks(build, expected):
    # VGG16 pool5 212, MobileNet v1 315, ResNet-50 483: Araujo et al., "Computing Receptive Fields of
    # Convolutional Neural Networks", Distill 2019, Table 1.
    assert receptive_field(build()) == expected


def _ones_kernels(model):
    for layer in model.layers:
        for weight in layer.weights:
            weight.assign(np.ones(weight.shape, weight.dtype))


def _empirical_field(model, size):
    """Extent of the input pixels that move the centre output unit (positive weights: no cancellation)."""
    x = tf.constant(np.random.default_rng(0).uniform(0.5, 1.0, (1, size, size, 1)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x)
        centre = y[0, y.shape[1] // 2, y.shape[2] // 2, 0]
    grad = np.abs(tape.gradient(centre, x).numpy()[0, :, :, 0]) > 0
    rows, cols = np.where(grad.any(axis=1))[0], np.where(grad.any(axis=0))[0]
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_receptive_field_of_a_residual_graph_matches_the_gradient_footprint():
    inputs = keras.Input((64, 64, 1))
    a = keras.layers.Conv2D(1, 3, padding="same", use_bias=False)(inputs)                    # 3
    b = keras.layers.Conv2D(1, 3, padding="same", dilation_rate=2, use_bias=False)(a)         # 3 + 4 = 7
    x = keras.layers.Add()([a, b])                                                            # max(3, 7) = 7
    x = MixedPooling2D(2, alpha=0.5)(x)                                                       # 8, jump 2
    x = LpPooling2D(3, p=2, strides=2, padding="same")(x)                                     # 12, jump 4
    x = keras.layers.Conv2D(1, (5, 3), padding="same", use_bias=False)(x)                     # 28 x 20
    model = keras.Model(inputs, x)
    _ones_kernels(model)
    assert receptive_field(model) == (28, 20)
    assert _empirical_field(model, 64) == (28, 20)


def test_receptive_field_rejects_unknown_geometry():
    with pytest.raises(ValueError, match="Conv2DTranspose"):
        receptive_field(_stack(keras.layers.Conv2D(2, 3), keras.layers.Conv2DTranspose(2, 3, strides=2)))
    with pytest.raises(ValueError, match="UpSampling2D"):
        receptive_field(_stack(keras.layers.UpSampling2D(2)))
    with pytest.raises(ValueError, match="Lambda"):   # keeps the grid, but could hide a window
        receptive_field(_stack(keras.layers.Lambda(lambda t: keras.ops.average_pool(t, 3, 1, padding="same"))))
    inputs = keras.Input((8, 8, 2))
    with pytest.raises(ValueError, match="MaxPool"):   # a keras.ops pooling in a functional graph
        receptive_field(keras.Model(inputs, keras.ops.max_pool(inputs, 3, 1, padding="same")))
    assert receptive_field(keras.Model(inputs, keras.ops.relu(inputs) + inputs)) == 1

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(TypeError, match="Received: model="):
        receptive_field(Subclassed())
    with pytest.raises(TypeError, match="Received: model="):
        receptive_field("resnet18")


# --- parameter counts and the worked RGB example ------------------------------------------------------

def _params(*layers, channels=256):
    model = keras.Sequential([keras.Input((8, 8, channels)), *layers])
    return model.count_params()


def test_parameter_counts_of_the_worked_examples():
    assert _params(keras.layers.Conv2D(256, 3, use_bias=False)) == 589_824
    bottleneck = [keras.layers.Conv2D(64, 1, use_bias=False),
                  keras.layers.Conv2D(64, 3, padding="same", use_bias=False),
                  keras.layers.Conv2D(256, 1, use_bias=False)]
    assert _params(*bottleneck) == 69_632            # the notes print 81,920 (erratum)
    assert _params(keras.layers.Conv2D(256, 3, groups=32, use_bias=False)) == 18_432   # printed 73,728 = 8 groups
    assert _params(keras.layers.Conv2D(256, 3, groups=8, use_bias=False)) == 73_728


def test_rgb_3x3x3_worked_example_gives_62():
    red = [[120, 150, 130], [100, 140, 160], [110, 120, 150]]
    green = [[50, 70, 90], [60, 80, 100], [70, 90, 110]]
    blue = [[30, 20, 40], [50, 40, 30], [60, 50, 40]]
    k_red = [[0.1, 0.2, 0.1], [0.0, 0.3, 0.0], [-0.1, 0.0, -0.1]]
    k_green = [[-0.1, 0.0, -0.1], [0.2, 0.3, 0.2], [-0.1, 0.0, -0.1]]
    k_blue = [[-0.2, -0.1, -0.2], [-0.1, 0.4, -0.1], [-0.2, -0.1, -0.2]]
    patch = np.stack([red, green, blue], axis=-1)[None].astype("float32")          # (1, 3, 3, 3)
    kernel = np.stack([k_red, k_green, k_blue], axis=-1)[..., None].astype("float32")  # (3, 3, 3, 1)
    conv = keras.layers.Conv2D(1, 3, use_bias=False)
    conv.build(patch.shape)
    conv.kernel.assign(kernel)
    per_channel = [float((patch[0, :, :, c] * kernel[:, :, c, 0]).sum()) for c in range(3)]
    assert per_channel == pytest.approx([71.0, 24.0, -33.0], abs=1e-4)
    assert float(conv(patch)[0, 0, 0, 0]) == pytest.approx(62.0, abs=1e-4)
