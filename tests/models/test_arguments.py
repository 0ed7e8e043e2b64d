"""Nonsense arguments to create_model are refused before anything is built, naming the argument; what is
accepted builds a model that runs at its first call."""
import dataclasses
import functools

import keras
import numpy as np
import pytest

import cnnzoo
from cnnzoo.layers import ConvBNAct, InvertedResidual, Preprocessing
from cnnzoo.models import get_entry

SHAPE = (32, 32, 3)


def recording(name):
    """The registry entry of `name` with a builder that records each call, to see that a check ran before it."""
    entry = get_entry(name)
    calls = []

    @functools.wraps(entry.builder)  # keeps the signature: the registry reads the options from it
    def builder(*args, **kwargs):
        calls.append(kwargs)
        return entry.builder(*args, **kwargs)

    return dataclasses.replace(entry, builder=builder), calls


def refused(name, match, **kwargs):
    entry, calls = recording(name)
    with pytest.raises((ValueError, TypeError), match=match):
        cnnzoo.create_model(entry, **{"input_shape": SHAPE, "num_classes": 3, **kwargs})
    assert not calls, "the check ran only after the builder started"


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "se_resnet18", "mobilenet_v2_035", "efficientnet_b0",
                                  "vgg11_bn"])
@pytest.mark.parametrize("momentum", [5, -1, 1.0, float("nan")])
def test_bn_momentum_outside_0_1_is_refused_by_every_family(name, momentum):
    with pytest.raises(ValueError, match=rf"`bn_momentum`.*Received: bn_momentum={momentum!r}"):
        cnnzoo.create_model(name, input_shape=SHAPE, num_classes=3, bn_momentum=momentum)


def test_bn_momentum_in_range_reaches_every_batchnorm():
    model = cnnzoo.create_model("mobilenet_v2_035", input_shape=SHAPE, num_classes=3, bn_momentum=0.9)
    momenta = {l.momentum for l in model.layers if isinstance(l, keras.layers.BatchNormalization)}
    assert momenta == {0.9}
    # A VGG without BatchNorm has nothing for bn_momentum to change.
    with pytest.raises(ValueError, match=r"no BatchNormalization.*Received: bn_momentum=0.9"):
        cnnzoo.create_model("vgg11", input_shape=SHAPE, bn_momentum=0.9)


@pytest.mark.parametrize("block", [lambda **kw: ConvBNAct(8, **kw), lambda **kw: InvertedResidual(8, **kw)])
def test_blocks_check_their_batchnorm_settings(block):
    with pytest.raises(ValueError, match="Received: bn_momentum=5"):
        block(bn_momentum=5)
    with pytest.raises(ValueError, match="Received: bn_epsilon=0"):
        block(bn_epsilon=0)


@pytest.mark.parametrize("name,override,match", [
    ("mobilenet_v2_035", dict(alpha=1.0), r"'mobilenet_v2_035' fixes alpha=0.35.*'mobilenet_v2'.*Received: alpha=1.0"),
    ("mobilenet_v2_100", dict(alpha=0.5), r"fixes alpha=1.0.*Received: alpha=0.5"),
    ("efficientnet_b3", dict(width=1.0), r"'efficientnet_b3' fixes width=1.2.*Received: width=1.0"),
    ("efficientnet_b3", dict(depth=2.0), r"fixes depth=1.4.*Received: depth=2.0"),
    ("efficientnet_b3", dict(phi=2.0), r"'efficientnet_b3' has no option 'phi'.*Received: phi=2.0"),
    ("resnet50_v1_5", dict(stride_in_3x3=False), r"has no option 'stride_in_3x3'"),
])
def test_a_name_that_fixes_an_option_refuses_another_value(name, override, match):
    refused(name, match, **override)


def test_fixed_options_accept_the_value_of_the_name():
    reference = cnnzoo.create_model("mobilenet_v2_035", input_shape=SHAPE, num_classes=3)
    same = cnnzoo.create_model("mobilenet_v2_035", input_shape=SHAPE, num_classes=3, alpha=0.35)
    assert same.count_params() == reference.count_params()
    with pytest.raises(ValueError, match=r"fixes width.*Received: width=3.0"):
        cnnzoo.models.efficientnet(1.0, input_shape=SHAPE, width=3.0)  # phi fixes the width too


@pytest.mark.parametrize("name", ["resnet18", "vgg11", "efficientnet_b0"])  # torch, caffe, torch preprocessing
@pytest.mark.parametrize("channels", [2, 5])
def test_channels_the_preprocessing_cannot_normalize_are_refused(name, channels):
    # These built, then failed at the first call ("Preprocessing has 3 channel constants ...").
    refused(name, rf"1 or 3 channels.*Received: input_shape=\(32, 32, {channels}\)", input_shape=(32, 32, channels))


@pytest.mark.parametrize("name,channels,kwargs", [
    ("mobilenet_v2_035", 5, {}),                          # "tf" mode treats every channel alike
    ("resnet18", 5, dict(preprocessing=None)),            # no normalization: any channel count
    ("resnet18", 1, {}),                                  # one channel: the averaged ImageNet constants
    ("resnet18", 5, dict(preprocessing=Preprocessing("custom", mean=[0.5] * 5, std=[0.25] * 5))),
])
def test_accepted_channel_counts_run_at_the_first_call(name, channels, kwargs):
    model = cnnzoo.create_model(name, input_shape=(32, 32, channels), num_classes=3, **kwargs)
    out = np.asarray(model(np.full((2, 32, 32, channels), 128.0, "float32"), training=False))
    assert out.shape == (2, 3) and np.isfinite(out).all()


def test_a_preprocessing_layer_refuses_channels_when_the_graph_is_built():
    with pytest.raises(ValueError, match=r"3 channel constants.*input_shape=\(None, 8, 8, 5\)"):
        Preprocessing("torch")(keras.Input((8, 8, 5)))


@pytest.mark.parametrize("shape", [(0, 32, 3), (-32, 32, 3), (32, 32, 0), (32, 32, True), (32.0, 32, 3),
                                   (32, 32, None), (31, 32, 3), (32, 16, 3), (32, 32), (32, 32, 3, 1), "abc"])
def test_nonsense_input_shapes_are_refused(shape):
    refused("resnet18", r"Received: input_shape=", input_shape=shape)


def test_numpy_sizes_are_sizes():
    model = cnnzoo.create_model("resnet18", input_shape=tuple(np.int64(d) for d in SHAPE), num_classes=3)
    assert model.input_shape == (None, *SHAPE)


@pytest.mark.parametrize("kwargs,match", [
    (dict(dropout=1.0), r"Received: dropout=1.0"),
    (dict(dropout=-0.1), r"Received: dropout=-0.1"),
    (dict(dropout=float("nan")), r"`dropout`"),
    (dict(num_classes=0), r"Received: num_classes=0"),
    (dict(num_classes=1), r"softmax over one class.*Received: num_classes=1"),
    (dict(pooling="median"), r"Received: pooling='median'"),
])
def test_nonsense_head_arguments_are_refused_before_building(kwargs, match):
    refused("mobilenet_v2_035", match, **kwargs)


def test_one_class_works_without_softmax():
    model = cnnzoo.create_model("mobilenet_v2_035", input_shape=SHAPE, num_classes=1, classifier_activation=None)
    assert model.output_shape == (None, 1)


@pytest.mark.parametrize("name,kwargs,match", [
    ("efficientnet_b0", dict(drop_connect_rate=1.0), r"Received: drop_connect_rate=1.0"),
    ("efficientnet_b0", dict(drop_connect_rate=-0.1), r"Received: drop_connect_rate=-0.1"),
    ("efficientnet_b0", dict(activation="nope"), r"Received: activation='nope'"),
    ("mobilenet_v2", dict(alpha=float("inf")), r"Received: alpha=inf"),
])
def test_nonsense_family_options_are_refused(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cnnzoo.create_model(name, input_shape=SHAPE, num_classes=3, **kwargs)
