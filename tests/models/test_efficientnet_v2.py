"""EfficientNetV2 against keras.applications: tables, rounding, params/MACs, weight files, preprocessing, contract."""
import dataclasses
import functools

import _kparity as kp
import keras
import numpy as np
import pytest
from keras.src.applications import efficientnet_v2 as ka

import cnnzoo
from cnnzoo.layers.blocks.efficientnet_v2 import FusedMBConv, MBConvV2
from cnnzoo.models import efficientnet_v2 as v2
from cnnzoo.scaling import round_filters

KA = keras.applications
NO_PREP = dict(include_preprocessing=False)
BUILDERS = {"b0": KA.EfficientNetV2B0, "b1": KA.EfficientNetV2B1, "b2": KA.EfficientNetV2B2,
            "b3": KA.EfficientNetV2B3, "s": KA.EfficientNetV2S, "m": KA.EfficientNetV2M, "l": KA.EfficientNetV2L}
SLOW = {"m", "l"}  # 54 M / 119 M parameters at 480 px


def _keras_args(stages):
    return [dict(kernel_size=s.kernel_size, num_repeat=s.repeats, input_filters=s.filters_in,
                 output_filters=s.filters_out, expand_ratio=s.expand_ratio, se_ratio=s.se_ratio, strides=s.strides,
                 conv_type=int(s.fused)) for s in stages]


def _variants(slow=SLOW):
    return [pytest.param(v, marks=pytest.mark.slow) if v in slow else v for v in BUILDERS]


def test_names_registered():
    assert set(cnnzoo.list_models("efficientnet_v2_*")) == {f"efficientnet_v2_{v}" for v in BUILDERS}
    sizes = {v: cnnzoo.registry.get_entry(f"efficientnet_v2_{v}").default_input_size for v in BUILDERS}
    assert sizes == {"b0": 224, "b1": 240, "b2": 260, "b3": 300, "s": 384, "m": 480, "l": 480}
    assert {cnnzoo.registry.get_entry(f"efficientnet_v2_{v}").family for v in BUILDERS} == {"efficientnet_v2"}


@pytest.mark.parametrize("variant", list(BUILDERS))
def test_stage_tables_are_keras(variant):
    assert _keras_args(v2.SPECS[variant].stages) == ka.DEFAULT_BLOCKS_ARGS[v2.SPECS[variant].keras_name]


def test_rounding_is_keras_v2_rule():
    for filters in range(1, 700):
        for width in (0.25, 0.5, 1.0, 1.1, 1.2, 1.4, 2.0):
            assert v2.v2_round_filters(filters, width) == ka.round_filters(filters, width, 8, 8), (filters, width)
    # V2 has no "lost more than 10 %" guard: B3's first stage keeps 16 channels where EfficientNet's rule gives 24.
    assert v2.v2_round_filters(16, 1.2) == 16 and round_filters(16, 1.2) == 24
    assert ka.round_repeats(3, 1.4) == 5 == cnnzoo.scaling.round_repeats(3, 1.4)


@pytest.mark.parametrize("variant", _variants())
def test_params_and_macs(variant):
    kp.check_params(f"efficientnet_v2_{variant}", BUILDERS[variant], **NO_PREP)


WEIGHT_CASES = [("b0", True, "legacy"), ("b0", False, "keras3"),
                *[pytest.param(v, top, layout, marks=pytest.mark.slow)
                  for v, top, layout in [("b0", True, "keras3"), ("b0", False, "legacy"), ("s", True, "legacy"),
                                         ("s", True, "keras3"), ("s", False, "legacy"), ("s", False, "keras3")]]]


@pytest.mark.parametrize("variant,top,layout", WEIGHT_CASES)
def test_keras_weight_files_load(variant, top, layout, tmp_path):
    kp.check_weights(f"efficientnet_v2_{variant}", BUILDERS[variant], NO_PREP, 64, top, layout, tmp_path)


# A tiny table through keras' own EfficientNetV2 builder: every block kind in seconds (fused with expand 1 and a
# residual as in S/M/L, fused with expansion, MBConv with SE, stride 1 and 2) and depth > 1 (B1-B3's drop rates).
TINY = v2._stages((2, 16, 16, 1, 1, 0.0, True), (2, 16, 24, 4, 2, 0.0, True), (2, 24, 32, 4, 2, 0.25, False),
                  (3, 32, 32, 6, 1, 0.25, False))


def _tiny_entry(width, depth):
    spec = v2.V2Spec(TINY, width, depth, 64, "b0")
    entry = cnnzoo.registry.get_entry("efficientnet_v2_b0")
    return dataclasses.replace(entry, name="efficientnet_v2_tiny", imagenet=None,
                               builder=functools.partial(v2.build_efficientnet_v2, spec=spec))


def _tiny_keras(width, depth, **kwargs):
    return ka.EfficientNetV2(width, depth, 64, blocks_args=_keras_args(TINY), name="efficientnetv2-tiny",
                             weights=None, include_top=True, input_shape=(64, 64, 3), classes=5,
                             classifier_activation=None, **NO_PREP, **kwargs)


@pytest.mark.parametrize("width,depth,layout", [(1.0, 1.0, "legacy"), (1.2, 1.4, "keras3")])
def test_tiny_table_matches_keras_layer_for_layer(width, depth, layout, tmp_path):
    theirs = _tiny_keras(width, depth)
    kp.randomize(theirs)
    path = kp.save(theirs, tmp_path / ("t.weights.h5" if layout == "keras3" else "t.h5"), layout)
    ours = cnnzoo.create_model(_tiny_entry(width, depth), num_classes=5, input_shape=(64, 64, 3), weights=path,
                               preprocessing=None, classifier_activation=None)
    assert [(type(l).__name__, l.name) for l in ours.layers[1:]] == \
        [(type(l).__name__, l.name) for l in theirs.layers[1:]]
    # Stochastic depth: keras' rate * block / (blocks of the unscaled table), so depth 1.4 goes past 0.2.
    rates = [l.rate for l in ours.layers if isinstance(l, keras.layers.Dropout)]
    assert rates == [l.rate for l in theirs.layers if isinstance(l, keras.layers.Dropout)]
    x = np.random.default_rng(1).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    assert kp.rel_diff(ours(x, training=False), theirs(x, training=False)) < 1e-5
    keras.backend.clear_session()


def test_drop_path_rate_changes_training_only(tmp_path):
    entry = _tiny_entry(1.0, 1.1)
    base = cnnzoo.create_model(entry, num_classes=5, input_shape=(64, 64, 3), preprocessing=None, drop_path_rate=0.0)
    assert not [l.name for l in base.layers if l.name.endswith("_drop")]
    kp.randomize(base)
    path = kp.save(base, tmp_path / "b.weights.h5", "keras3")
    heavy = cnnzoo.create_model(entry, num_classes=5, input_shape=(64, 64, 3), preprocessing=None,
                                drop_path_rate=0.5, weights=path)
    drops = [l for l in heavy.layers if l.name.endswith("_drop")]
    assert drops and drops[0].noise_shape == (None, 1, 1, 1)
    x = np.random.default_rng(2).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(heavy(x, training=False), base(x, training=False), rtol=1e-6)
    keras.backend.clear_session()


@pytest.mark.parametrize("overrides,match", [
    (dict(drop_path_rate=1.0), r"Received: drop_path_rate=1.0"),
    (dict(drop_path_rate=-0.1), r"Received: drop_path_rate=-0.1"),
    (dict(drop_path_rate=0.7), r"drop_path_rate < 0\.677.*Received: drop_path_rate=0.7"),  # B3: 32 blocks / 21
])
def test_bad_drop_path_rate(overrides, match):
    with pytest.raises(ValueError, match=match):
        cnnzoo.create_model("efficientnet_v2_b3", input_shape=(32, 32, 3), **overrides)


def test_no_other_options():
    with pytest.raises(TypeError, match=r"has no option 'width'.*options: drop_path_rate.*Received: width=2.0"):
        cnnzoo.create_model("efficientnet_v2_b0", width=2.0)


def _keras_in_model_preprocessing(variant):
    """keras' own include_preprocessing layers for `variant` (chosen by its model name) on raw pixels."""
    model = ka.EfficientNetV2(1.0, 1.0, 224, blocks_args=_keras_args(TINY), name=v2.SPECS[variant].keras_name,
                              weights=None, include_top=False, input_shape=(None, None, 3),
                              include_preprocessing=True)
    return keras.Model(model.input, model.get_layer("stem_conv").input)


@pytest.mark.parametrize("variant", list(BUILDERS))
def test_imagenet_file_and_preprocessing(variant):
    name = f"efficientnet_v2_{variant}"
    entry = cnnzoo.registry.get_entry(name)
    assert entry.preprocessing == entry.imagenet.preprocessing
    assert entry.imagenet.preprocessing == ({"mode": "torch"} if variant.startswith("b") else
                                            {"mode": "custom", "mean": [1.0], "std": [1.0], "scale": 1 / 128})
    assert ka.preprocess_input(7.0) == 7.0  # keras' preprocess_input is a pass-through: its models normalize inside
    key = v2.SPECS[variant].weights_key
    for top, index, suffix in ((True, 0, ".h5"), (False, 1, "_notop.h5")):
        file_name, url, file_hash = entry.imagenet.locate(top, (224, 224, 3), {})
        assert file_name == v2.SPECS[variant].keras_name + suffix and url == ka.BASE_WEIGHTS_PATH + file_name
        assert file_hash == ka.WEIGHTS_HASHES[key][index]
    prep = _keras_in_model_preprocessing(variant)
    kp.check_imagenet(name, ka, lambda x: np.asarray(prep(x)))
    keras.backend.clear_session()


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(BUILDERS))
def test_preprocessing_matches_the_public_keras_builders(variant):
    full = BUILDERS[variant](weights=None, include_top=False, input_shape=(None, None, 3))
    prep = keras.Model(full.input, full.get_layer("stem_conv").input)
    kp.check_imagenet(f"efficientnet_v2_{variant}", ka, lambda x: np.asarray(prep(x)))
    keras.backend.clear_session()


def test_contract():
    kp.check_contract("efficientnet_v2_b0", 1280)


def test_finetune_groups():
    model = cnnzoo.create_model("efficientnet_v2_b0", num_classes=3, input_shape=(32, 32, 3))
    groups = cnnzoo.registry.finetune_groups(model)
    assert list(groups) == ["stem"] + [f"stage{i}" for i in range(1, 7)] + ["head"]
    assert [l.name for l in groups["stem"]] == ["stem_conv", "stem_bn", "stem_activation"]
    assert {"block6h_project_conv", "top_conv", "top_bn", "top_activation"} <= {l.name for l in groups["stage6"]}
    assert {l.name for l in groups["head"]} == {"avg_pool", "top_dropout", "predictions"}
    assert cnnzoo.registry.get_entry("efficientnet_v2_l").group_of("top_conv") == "stage7"
    keras.backend.clear_session()


@pytest.mark.parametrize("kind,expand,strides,filters_in,filters,se,size", [
    ("fused", 1, 1, 24, 24, 0.0, 9), ("fused", 4, 2, 16, 32, 0.0, 9), ("fused", 4, 1, 32, 32, 0.25, 8),
    ("mbconv", 4, 2, 48, 96, 0.25, None), ("mbconv", 6, 1, 96, 96, 0.25, 7), ("mbconv", 1, 2, 16, 16, 0.0, None),
])
def test_blocks_match_keras_blocks(kind, expand, strides, filters_in, filters, se, size):
    """Our blocks against keras' FusedMBConvBlock / MBConvBlock, odd and unknown sizes ("same" padding)."""
    inputs = keras.Input((size, size, filters_in))
    args = dict(expand_ratio=expand, strides=strides, se_ratio=se, drop_rate=0.1)
    ours_block = (FusedMBConv if kind == "fused" else MBConvV2)(filters, **args)
    theirs_fn = ka.FusedMBConvBlock if kind == "fused" else ka.MBConvBlock
    ours = keras.Model(inputs, ours_block(inputs, prefix="block2b_"))
    theirs = keras.Model(inputs, theirs_fn(filters_in, filters, expand_ratio=expand, strides=strides, se_ratio=se,
                                           bn_momentum=0.9, survival_probability=0.1, name="block2b_")(inputs))
    assert [(type(l).__name__, l.name) for l in ours.layers] == [(type(l).__name__, l.name) for l in theirs.layers]
    kp.randomize(theirs)
    for layer in theirs.layers:
        ours.get_layer(layer.name).set_weights(layer.get_weights())
    x = np.random.default_rng(0).normal(size=(2, size or 11, size or 11, filters_in)).astype("float32")
    assert kp.rel_diff(ours(x, training=False), theirs(x, training=False)) < 1e-6
    keras.backend.clear_session()
