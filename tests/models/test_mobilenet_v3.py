"""MobileNetV3 Small/Large (alpha, minimalistic) against keras.applications: params, MACs, weight files (Keras 3
and legacy layouts, and the tf.keras names of keras' ImageNet files), in-model rescaling, metadata, contract."""
import re

import h5py
import keras
import numpy as np
import pytest
from keras.src.applications import mobilenet_v3 as ka_v3

import _kparity as kp
import cnnzoo
from cnnzoo.models import finetune_groups
from cnnzoo.layers.blocks.mobilenet_v3 import InvertedResidualV3, SqueezeExciteV3, hard_sigmoid
from cnnzoo.scaling import make_divisible

KA = keras.applications
# name -> (keras builder, keras kwargs); keras' in-model Rescaling is left out (ours is the Preprocessing layer).
KERAS = {
    "mobilenet_v3_small": (KA.MobileNetV3Small, {}),
    "mobilenet_v3_small_075": (KA.MobileNetV3Small, {"alpha": 0.75}),
    "mobilenet_v3_small_100": (KA.MobileNetV3Small, {"alpha": 1.0}),
    "mobilenet_v3_small_minimal": (KA.MobileNetV3Small, {"minimalistic": True}),
    "mobilenet_v3_large": (KA.MobileNetV3Large, {}),
    "mobilenet_v3_large_075": (KA.MobileNetV3Large, {"alpha": 0.75}),
    "mobilenet_v3_large_100": (KA.MobileNetV3Large, {"alpha": 1.0}),
    "mobilenet_v3_large_minimal": (KA.MobileNetV3Large, {"minimalistic": True}),
}
# The ImageNet file each distinct weight set resolves to (keras' own table key).
FILES = {"mobilenet_v3_small": "small_224_1.0_float", "mobilenet_v3_small_075": "small_224_0.75_float",
         "mobilenet_v3_small_minimal": "small_minimalistic_224_1.0_float",
         "mobilenet_v3_large": "large_224_1.0_float", "mobilenet_v3_large_075": "large_224_0.75_float",
         "mobilenet_v3_large_minimal": "large_minimalistic_224_1.0_float"}
NO_PREP = {"include_preprocessing": False}


def test_registered_names():
    assert set(cnnzoo.list_models("mobilenet_v3*")) == set(KERAS)
    assert cnnzoo.registry.get_entry("mobilenet_v3_large").paper == "https://arxiv.org/abs/1905.02244"


@pytest.mark.parametrize("name", sorted(KERAS))
def test_params_and_macs_equal_keras(name):
    builder, kwargs = KERAS[name]
    kp.check_params(name, builder, **kwargs, **NO_PREP)


@pytest.mark.parametrize("layout", ["legacy", "keras3"])
@pytest.mark.parametrize("top", [True, False])
@pytest.mark.parametrize("name", ["mobilenet_v3_small", "mobilenet_v3_large_minimal"])
def test_keras_weight_files_give_the_same_logits(name, top, layout, tmp_path):
    builder, kwargs = KERAS[name]
    kp.check_weights(name, builder, {**kwargs, **NO_PREP}, 64, top, layout, tmp_path)


def test_raw_pixels_match_keras_in_model_rescaling(tmp_path):
    """keras' MobileNetV3 rescales inside (Rescaling(1/127.5, offset=-1)); ours puts Preprocessing("tf") first."""
    ka_model = KA.MobileNetV3Small(weights=None, input_shape=(64, 64, 3), classifier_activation=None)
    kp.randomize(ka_model)
    path = kp.save(ka_model, tmp_path / "small.weights.h5", "keras3")
    ours = cnnzoo.create_model("mobilenet_v3_small", input_shape=(64, 64, 3), weights=path,
                               classifier_activation=None)
    assert ours.layers[1].name == "preprocessing"
    x = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    assert kp.rel_diff(ours(x, training=False), ka_model(x, training=False)) < 1e-5
    keras.backend.clear_session()


def _tf_keras_name(name):
    """The name tf.keras 2 gave a keras 3 MobileNetV3 layer, as keras' ImageNet .h5 files store it."""
    name = {"conv": "Conv", "conv_bn": "Conv/BatchNorm", "conv_1": "Conv_1", "conv_1_bn": "Conv_1/BatchNorm",
            "conv_2": "Conv_2", "logits": "Logits"}.get(name, name)
    match = re.match(r"^(expanded_conv(?:_\d+)?)_(.*)$", name)
    if not match:
        return name
    rest = {"expand_bn": "expand/BatchNorm", "depthwise_bn": "depthwise/BatchNorm", "project_bn": "project/BatchNorm",
            "squeeze_excite_conv": "squeeze_excite/Conv", "squeeze_excite_conv_1": "squeeze_excite/Conv_1"}
    return f"{match.group(1)}/{rest.get(match.group(2), match.group(2))}"


def _save_tf_keras_layout(model, path):
    """A legacy HDF5 file with tf.keras' MobileNetV3 names (`Conv/BatchNorm`, ..., `Logits`), which Keras 3 loads
    by order; keras.applications' ImageNet files are written so."""
    with h5py.File(path, "w") as f:
        names = [_tf_keras_name(layer.name) for layer in model.layers]
        f.attrs["layer_names"] = [n.encode() for n in names]
        for layer, name in zip(model.layers, names):
            group = f.require_group(name)
            weight_names = [f"{name}/{w.name}:0" for w in layer.weights]
            group.attrs["weight_names"] = [w.encode() for w in weight_names]
            for weight_name, value in zip(weight_names, layer.get_weights()):
                group.create_dataset(weight_name, data=value)
    return str(path)


@pytest.mark.parametrize("top", [False, True])
def test_imagenet_file_layout_loads_by_order(top, tmp_path):
    """keras' ImageNet files carry tf.keras names; Keras 3 (and cnnzoo) pair them with the layers by order."""
    kwargs = dict(weights=None, input_shape=(64, 64, 3), include_top=top, classifier_activation=None,
                  pooling=None if top else "avg", **NO_PREP)
    ka_model = KA.MobileNetV3Small(**kwargs)
    kp.randomize(ka_model)
    path = _save_tf_keras_layout(ka_model, tmp_path / "imagenet_layout.h5")
    x = np.random.default_rng(1).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    ours = cnnzoo.create_model("mobilenet_v3_small", include_top=top, input_shape=(64, 64, 3), weights=path,
                               preprocessing=None, classifier_activation=None)
    assert kp.rel_diff(ours(x, training=False), ka_model(x, training=False)) < 1e-5
    keras.backend.clear_session()


@pytest.fixture(scope="module")
def keras_rescaling():
    """keras' in-model preprocessing of MobileNetV3 (its `preprocess_input` is a pass-through)."""
    model = KA.MobileNetV3Small(weights=None, input_shape=(32, 32, 3), include_top=False)
    rescaling = [layer for layer in model.layers if isinstance(layer, keras.layers.Rescaling)]
    assert len(rescaling) == 1 and ka_v3.preprocess_input(np.ones(3)).tolist() == [1, 1, 1]
    return rescaling[0]


@pytest.mark.parametrize("name", sorted(FILES))
def test_imagenet_metadata(name, keras_rescaling):
    key = FILES[name]
    entry = cnnzoo.registry.get_entry(name)
    for top, suffix, index in ((True, "", 0), (False, "_no_top_v2", 1)):
        file_name = kp.check_imagenet(name, ka_v3, keras_rescaling, include_top=top)
        _, url, file_hash = entry.imagenet.locate(top, (224, 224, 3), dict(entry.defaults))
        assert file_name == f"weights_mobilenet_v3_{key}{suffix}.h5"
        assert url == ka_v3.BASE_WEIGHT_PATH + file_name and file_hash == ka_v3.WEIGHTS_HASHES[key][index]
    assert entry.preprocessing == entry.imagenet.preprocessing == {"mode": "tf"}


def test_imagenet_refuses_alphas_without_files():
    locate = cnnzoo.registry.get_entry("mobilenet_v3_small").imagenet.locate
    with pytest.raises(ValueError, match=r"Received: alpha=0.5"):
        locate(True, (224, 224, 3), {"model_type": "small", "alpha": 0.5, "minimalistic": False})
    with pytest.raises(ValueError, match=r"minimalistic.*Received: alpha=0.75"):
        locate(False, (224, 224, 3), {"model_type": "large", "alpha": 0.75, "minimalistic": True})
    with pytest.raises(ValueError, match="alpha"):  # refused before any download
        cnnzoo.create_model("mobilenet_v3_large_minimal", alpha=0.75, weights="imagenet", input_shape=(32, 32, 3))
    keras.backend.clear_session()


def test_keras_contract():
    kp.check_contract("mobilenet_v3_small", 576)
    large = cnnzoo.create_model("mobilenet_v3_large", include_top=False, pooling=None, input_shape=(None, None, 1))
    assert tuple(large.output_shape) == (None, None, None, 960)
    keras.backend.clear_session()


def _depthwise_kernels(model):
    return {layer.kernel_size for layer in model.layers if isinstance(layer, keras.layers.DepthwiseConv2D)}


def _activations(model):
    """The Activation layers' functions by name (keras' "hard_swish" is its `hard_silu`; the SE gate is ours)."""
    return {keras.activations.serialize(layer.activation) if isinstance(layer.get_config()["activation"], str)
            else layer.activation.__name__ for layer in model.layers if type(layer) is keras.layers.Activation}


@pytest.mark.parametrize("size", ["small", "large"])
def test_minimal_variants_have_no_se_no_hard_swish_and_3x3_kernels(size):
    full = cnnzoo.create_model(f"mobilenet_v3_{size}", include_top=False, input_shape=(32, 32, 3))
    assert any("squeeze_excite" in layer.name for layer in full.layers)
    assert _activations(full) == {"hard_silu", "hard_sigmoid_gate"} and (5, 5) in _depthwise_kernels(full)
    minimal = cnnzoo.create_model(f"mobilenet_v3_{size}_minimal", num_classes=3, input_shape=(32, 32, 3))
    assert not any("squeeze_excite" in layer.name or isinstance(layer, keras.layers.Multiply)
                   for layer in minimal.layers)
    assert _activations(minimal) == set()  # every nonlinearity is a ReLU layer, as keras' minimalistic models
    assert {type(layer) for layer in minimal.layers if "relu" in layer.name} == {keras.layers.ReLU}
    assert _depthwise_kernels(minimal) == {(3, 3)}
    keras.backend.clear_session()


def test_32_px_gives_a_1x1_map_and_groups_by_output_stride():
    # Large's first block runs at the stem's stride 2, so it trains with the stem.
    large_block0 = {"expanded_conv_depthwise", "expanded_conv_depthwise_bn", "expanded_conv_depthwise_relu",
                    "expanded_conv_project", "expanded_conv_project_bn", "expanded_conv_add"}
    for size, stem_extra, stage1 in (("small", set(), "expanded_conv_depthwise"),
                                     ("large", large_block0, "expanded_conv_1_expand")):
        model = cnnzoo.create_model(f"mobilenet_v3_{size}", num_classes=3, input_shape=(32, 32, 3))
        groups = finetune_groups(model)
        assert list(groups) == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
        names = {group: {layer.name for layer in layers} for group, layers in groups.items()}
        assert tuple(model.get_layer("avg_pool").input.shape) == (None, 1, 1, 576 if size == "small" else 960)
        assert not any(layer.name.endswith("_drop") for layer in model.layers)  # drop_path_rate defaults to 0
        assert names["stem"] == {"conv", "conv_bn", "conv_hard_swish"} | stem_extra
        assert stage1 in names["stage1"]
        assert {"conv_1", "conv_1_bn", "conv_1_hard_swish"} <= names["stage4"]
        assert names["head"] == {"avg_pool", "conv_2_reshape", "conv_2", "conv_2_hard_swish", "flatten",
                                 "top_dropout", "predictions"}
        # Each stage ends at the next output stride: 4, 8, 16, 32 (32 px in: 8, 4, 2, 1).
        for k, stage in enumerate(("stage1", "stage2", "stage3", "stage4")):
            assert {model.get_layer(n).output.shape[1] for n in names[stage]
                    if n.endswith("project_bn")} == {32 // 2 ** (k + 2)}
        keras.backend.clear_session()


def test_head_feeds_conv_2_from_any_pooling():
    model = cnnzoo.create_model("mobilenet_v3_small", num_classes=5, input_shape=(64, 64, 3), pooling="spp")
    assert tuple(model.get_layer("conv_2").input.shape) == (None, 1, 1, model.get_layer("spp_pool").output.shape[-1])
    assert model.get_layer("top_dropout").rate == 0.2  # keras' dropout_rate
    assert model.get_layer("predictions").dtype_policy.name == "float32"
    # alpha > 1 widens conv_2 too (keras: _depth(last_point * alpha)).
    assert cnnzoo.create_model("mobilenet_v3_small", alpha=1.5, input_shape=(32, 32, 3)).get_layer(
        "conv_2").filters == make_divisible(1024 * 1.5)
    keras.backend.clear_session()


def test_drop_path_on_identity_branches_growing_with_depth():
    model = cnnzoo.create_model("mobilenet_v3_small", num_classes=3, input_shape=(32, 32, 3), drop_path_rate=0.22)
    rates = {layer.name: layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)
             and layer.name != "top_dropout"}
    # Small's identity branches are blocks 2, 4, 5, 7, 9, 10 of 11; block i gets rate * i / 11.
    assert rates == pytest.approx({f"expanded_conv_{i}_drop": 0.22 * i / 11 for i in (2, 4, 5, 7, 9, 10)})
    with pytest.raises(ValueError, match="drop_path_rate"):
        cnnzoo.create_model("mobilenet_v3_small", input_shape=(32, 32, 3), drop_path_rate=1.0)
    keras.backend.clear_session()


@pytest.mark.parametrize("name, option, value", [
    ("mobilenet_v3_small_075", "alpha", 1.0), ("mobilenet_v3_large_100", "alpha", 0.75),
    ("mobilenet_v3_small", "minimalistic", True), ("mobilenet_v3_large_minimal", "minimalistic", False),
    ("mobilenet_v3_small", "model_type", "large"),
])
def test_fixed_options_are_refused(name, option, value):
    with pytest.raises(ValueError, match=option):
        cnnzoo.create_model(name, input_shape=(32, 32, 3), **{option: value})


def test_minimal_takes_alpha_and_bad_options_are_named():
    model = cnnzoo.create_model("mobilenet_v3_small_minimal", alpha=0.75, include_top=False, input_shape=(32, 32, 3))
    assert model.output_shape[-1] == make_divisible(make_divisible(96 * 0.75) * 6)
    with pytest.raises(ValueError, match="alpha"):
        cnnzoo.create_model("mobilenet_v3_small", alpha=0, input_shape=(32, 32, 3))
    keras.backend.clear_session()


def test_hard_sigmoid_is_keras_bit_for_bit():
    x = np.random.default_rng(0).normal(0, 3, (4, 1001)).astype("float32")
    inputs = keras.Input((1001,))
    ours = np.asarray(keras.Model(inputs, hard_sigmoid(inputs, "gate"))(x))
    theirs = np.asarray(ka_v3.hard_sigmoid(keras.ops.convert_to_tensor(x)))
    np.testing.assert_array_equal(ours, theirs)


def test_blocks_validate_and_round_like_keras():
    inputs = keras.Input((8, 8, 16))
    y = InvertedResidualV3(16, expansion=72 / 16, se_ratio=0.25, activation="hard_swish")(inputs, prefix="b_")
    assert y.shape[-1] == 16
    with pytest.raises(ValueError, match="activation"):
        InvertedResidualV3(16, activation="swish")
    with pytest.raises(ValueError, match="strides"):
        InvertedResidualV3(16, strides=3)
    with pytest.raises(ValueError, match="reduced_filters"):
        SqueezeExciteV3(0)
    assert make_divisible(88 / 24 * 24) == ka_v3._depth(88 / 24 * 24)  # keras' _depth is make_divisible
    assert all(make_divisible(v * a) == ka_v3._depth(v * a) for v in range(1, 1300, 7) for a in (0.35, 0.75, 1.3))
