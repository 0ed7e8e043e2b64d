"""Registry, argument errors, scaling rules, compound scaling and fine-tuning groups."""
import dataclasses

import numpy as np
import pytest

import cnnzoo
from cnnzoo.models import finetune_groups, get_entry, register_model
from cnnzoo.scaling import compound_coefficients, make_divisible, round_filters, round_repeats


def test_list_models_pattern_and_natural_order():
    names = cnnzoo.list_models("resnet*")
    assert names[:6] == ["resnet18", "resnet34", "resnet50", "resnet50_v1_5", "resnet50_v2", "resnet101"]
    assert cnnzoo.list_models("efficientnet_b?") == [f"efficientnet_b{i}" for i in range(8)]
    required = ["vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg19_bn", "resnet152", "se_resnet18",
                "se_resnet34", "se_resnet50", "se_resnet101", "mobilenet_v2", "mobilenet_v2_035", "mobilenet_v2_140",
                # issue 15: the rest of keras.applications' CNN families, and ResNeXt
                "densenet121", "densenet169", "densenet201", "inception_v3", "inception_resnet_v2", "xception",
                "mobilenet_v1", "mobilenet_v1_025", "mobilenet_v1_050", "mobilenet_v1_075", "mobilenet_v1_100",
                "mobilenet_v3_small", "mobilenet_v3_large", "mobilenet_v3_small_minimal", "mobilenet_v3_large_minimal",
                *[f"efficientnet_v2_{v}" for v in ("b0", "b1", "b2", "b3", "s", "m", "l")],
                *[f"convnext_{v}" for v in ("tiny", "small", "base", "large", "xlarge")],
                "resnet50_v2", "resnet101_v2", "resnet152_v2", "nasnet_mobile", "nasnet_large", "resnext50_32x4d",
                "resnext101_32x8d", "se_resnext50_32x4d"]
    assert set(required) <= set(cnnzoo.list_models())
    assert cnnzoo.list_models("nothing*") == []


def test_unknown_name_lists_closest():
    with pytest.raises(ValueError, match=r"resnet50.*Received: name='resnet05'"):
        cnnzoo.create_model("resnet05")
    with pytest.raises(ValueError, match="efficientnet_b0"):
        cnnzoo.model_info("efficentnet_b0")


@pytest.mark.parametrize("kwargs,match", [
    (dict(pooling="median"), r"Received: pooling='median'"),
    (dict(num_classes=0), r"Received: num_classes=0"),
    (dict(num_classes=2.5), r"Received: num_classes=2.5"),
    (dict(input_shape=(16, 16, 3)), r"at least 32.*Received: input_shape"),
    (dict(input_shape=(64, 64)), r"Received: input_shape=\(64, 64\)"),
    (dict(include_top=True, pooling=None), r"Received: pooling=None"),
    (dict(dropout=1.5), r"Received: dropout=1.5"),
    (dict(preprocessing="caffe"), r"Received: preprocessing='caffe'"),
    (dict(weights=3), r"Received: weights=3"),
    (dict(alpha=0.5), r"'resnet18' has no option 'alpha'.*Received: alpha=0.5"),
])
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cnnzoo.create_model("resnet18", **{"input_shape": (32, 32, 3), **kwargs})


def test_vgg_flatten_head_needs_known_size_unless_spp():
    with pytest.raises(ValueError, match="height and width must be known"):
        cnnzoo.create_model("vgg11", input_shape=(None, None, 3))


def test_none_overrides_are_dropped_and_alpha_override_works():
    model = cnnzoo.create_model("mobilenet_v2", alpha=0.5, drop_connect_rate=None, num_classes=3,
                                input_shape=(32, 32, 3), preprocessing=None)
    reference = cnnzoo.create_model("mobilenet_v2_050", num_classes=3, input_shape=(32, 32, 3), preprocessing=None)
    assert model.count_params() == reference.count_params()
    with pytest.raises(ValueError, match="Received: alpha=-1"):
        cnnzoo.create_model("mobilenet_v2", alpha=-1, input_shape=(32, 32, 3))


def test_model_info_fields():
    info = cnnzoo.model_info("mobilenet_v2_035")
    assert info.family == "mobilenet_v2" and info.default_input_size == 224
    assert info.paper.startswith("https://arxiv.org/")
    assert info.params == cnnzoo.create_model("mobilenet_v2_035", preprocessing=None).count_params()
    assert 0.05e9 < info.macs < 0.07e9
    assert cnnzoo.model_info("efficientnet_b3").default_input_size == 300


def test_registering_twice_warns():
    entry = get_entry("resnet18")
    with pytest.warns(UserWarning, match="registered twice"):
        register_model(entry)


def test_scaling_rules():
    assert make_divisible(32 * 0.35) == 16
    assert make_divisible(1280 * 1.4) == 1792
    assert make_divisible(10) == 16  # 8 would lose more than 10 %
    assert make_divisible(12) == 16 and make_divisible(11.9) == 8 + 8 and make_divisible(20) == 24
    assert make_divisible(64 * 0.75) == 48
    assert round_filters(32, 1.1) == 32 and round_filters(1280, 2.0) == 2560 and round_filters(40, 1.8) == 72
    assert round_repeats(3, 1.4) == 5 and round_repeats(1, 3.1) == 4
    assert compound_coefficients(0) == (1.0, 1.0, 224)
    depth, width, resolution = compound_coefficients(2)
    assert depth == pytest.approx(1.44) and width == pytest.approx(1.21) and resolution == 296
    with pytest.raises(ValueError, match="Received: phi=-1"):
        compound_coefficients(-1)


def test_efficientnet_any_phi():
    b0 = cnnzoo.create_model("efficientnet_b0", input_shape=(64, 64, 3), preprocessing=None)
    phi0 = cnnzoo.models.efficientnet(0, input_shape=(64, 64, 3), preprocessing=None)
    assert phi0.count_params() == b0.count_params()
    assert phi0.name == "efficientnet_phi0"
    phi = cnnzoo.models.efficientnet(1.5, num_classes=4, include_top=True)
    assert phi.input_shape == (None, 280, 280, 3)  # 224 * 1.15**1.5 = 276.2 -> nearest multiple of 8
    assert phi.get_layer("stem_conv").filters == round_filters(32, 1.1 ** 1.5)
    assert len([l for l in phi.layers if l.name.endswith("_project_conv")]) == sum(
        round_repeats(r, 1.2 ** 1.5) for r in (1, 2, 2, 3, 3, 4, 1))
    assert phi.get_layer("top_dropout").rate == 0.2
    assert list(finetune_groups(phi))[:2] == ["stem", "stage1"]


def test_stochastic_depth_in_mbconv():
    model = cnnzoo.create_model("efficientnet_b0", num_classes=3, input_shape=(32, 32, 3), drop_connect_rate=0.5)
    drops = [l for l in model.layers if l.name.endswith("_drop")]
    rates = [l.rate for l in drops]
    assert rates == sorted(rates) and rates[0] > 0 and rates[-1] < 0.5
    assert drops[0].noise_shape == (None, 1, 1, 1)  # whole residual branch per sample
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=True))


@pytest.mark.parametrize("name,expected", [
    ("resnet18", ["stem", "stage1", "stage2", "stage3", "stage4", "head"]),
    ("se_resnet50", ["stem", "stage1", "stage2", "stage3", "stage4", "head"]),
    ("vgg11_bn", ["stage1", "stage2", "stage3", "stage4", "stage5", "head"]),
    ("mobilenet_v2_035", ["stem"] + [f"stage{i}" for i in range(1, 8)] + ["head"]),
    ("efficientnet_b0", ["stem"] + [f"stage{i}" for i in range(1, 8)] + ["head"]),
])
def test_finetune_groups(name, expected, tmp_path):
    model = cnnzoo.create_model(name, num_classes=3, input_shape=(32, 32, 3))
    groups = finetune_groups(model)
    assert list(groups) == expected
    grouped = {l.name for layers in groups.values() for l in layers}
    weighted = {l.name for l in model.layers if l.weights}
    assert weighted <= grouped  # every trainable layer belongs to a group
    assert [l.name for l in groups["head"]][-1] == "predictions"
    # groups come from names, so they survive a .keras round trip and a renamed model
    model.save(tmp_path / "m.keras")
    import keras

    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert list(finetune_groups(restored)) == expected


def test_finetune_groups_rejects_foreign_model():
    import keras

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="mystery")(inputs), name="custom")
    with pytest.raises(ValueError, match="Received: model.name='custom'"):
        finetune_groups(model)


def test_entry_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_entry("resnet18").name = "x"
