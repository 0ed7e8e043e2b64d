"""One test over every registered model: shapes, finite outputs, gradients, groups, poolings, stochastic depth,
`.keras` round trip; and one over a member of every family for what costs a second build."""
import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnzoo

SIZE = 32
NAMES = cnnzoo.list_models()
# Built and run forward, but not trained or saved in the fast suite (hundreds of MB of weights).
LARGE = {"vgg19", "vgg19_bn", "resnet101", "resnet101_v1_5", "resnet152", "resnet152_v1_5", "se_resnet101",
         "efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "vgg16", "vgg16_bn", "vgg13", "vgg13_bn",
         "resnet101_v2", "resnet152_v2", "resnext101_32x8d", "densenet201", "inception_resnet_v2", "nasnet_large",
         "convnext_base", "convnext_large", "convnext_xlarge", "efficientnet_v2_m", "efficientnet_v2_l"}
# Families whose blocks add a residual: each takes `drop_path_rate` (stochastic depth).
RESIDUAL = {"resnet", "se_resnet", "resnet_v2", "resnext", "se_resnext", "mobilenet_v2", "mobilenet_v3",
            "efficientnet", "efficientnet_v2", "convnext", "inception_resnet_v2", "xception"}
# One small member per family, for the checks that need a second model.
MEMBER = {"vgg": "vgg11_bn", "resnet": "resnet18", "se_resnet": "se_resnet18", "resnet_v2": "resnet50_v2",
          "resnext": "resnext50_32x4d", "se_resnext": "se_resnext50_32x4d", "mobilenet_v1": "mobilenet_v1_025",
          "mobilenet_v2": "mobilenet_v2_035", "mobilenet_v3": "mobilenet_v3_small", "efficientnet": "efficientnet_b0",
          "efficientnet_v2": "efficientnet_v2_b0", "densenet": "densenet121", "inception_v3": "inception_v3",
          "inception_resnet_v2": "inception_resnet_v2", "xception": "xception", "convnext": "convnext_tiny",
          "nasnet": "nasnet_mobile"}
POOLINGS = ("spp", "mixed", "lp")


def _size(name):
    return max(SIZE, cnnzoo.registry.get_entry(name).min_input_size)


def _family(name):
    return cnnzoo.registry.get_entry(name).family


def test_every_family_has_a_member_and_residual_families_take_drop_path_rate():
    families = {_family(n) for n in NAMES}
    assert families == set(MEMBER), families ^ set(MEMBER)
    for name in NAMES:
        options = inspect.signature(cnnzoo.registry.get_entry(name).builder).parameters
        assert ("drop_path_rate" in options) == (_family(name) in RESIDUAL), name


@pytest.mark.parametrize("name", NAMES)
def test_every_model(name, tmp_path):
    size = _size(name)
    # Each model gets one of the extra global poolings (every family below gets all three) and, where residual,
    # stochastic depth, so the gradient and round-trip checks cover them.
    pooling = POOLINGS[NAMES.index(name) % len(POOLINGS)]
    extra = {"drop_path_rate": 0.1} if _family(name) in RESIDUAL else {}
    model = cnnzoo.create_model(name, num_classes=7, input_shape=(size, size, 3), pooling=pooling, **extra)
    assert model.name == name
    assert model.layers[1].name == "preprocessing"
    assert model.get_layer(f"{pooling}_pool") is not None
    groups = cnnzoo.models.finetune_groups(model)
    assert list(groups)[0] in ("stem", "stage1") and list(groups)[-1] == "head", list(groups)   # VGG: no stem
    stages = [g for g in groups if g.startswith("stage")]
    assert stages == [f"stage{i}" for i in range(1, len(stages) + 1)] and len(stages) >= 3, list(groups)
    grouped = {id(layer) for layers in groups.values() for layer in layers}
    assert all(id(layer) in grouped for layer in model.layers if layer.weights), name
    if extra:
        assert any(isinstance(layer, keras.layers.Dropout) and layer.name.endswith("drop") for layer in model.layers)
    x = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    y = model(x, training=False)
    assert y.shape == (2, 7)
    assert y.dtype == "float32"
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(np.sum(y, axis=-1), 1.0, rtol=1e-5)

    head_input = model.get_layer(f"{pooling}_pool").input
    # Every zoo backbone has output stride 32 (valid-padding stems, at their larger minimum size, about that).
    assert tuple(head_input.shape[1:3]) == (1, 1) if size == SIZE else all(
        1 <= d <= size // 32 + 1 for d in head_input.shape[1:3])
    if name in LARGE:  # building a second large model and training it costs too much here
        return
    # (the no-top build is tests/models/test_features.py's, one any-size features model per name)

    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(x, training=True) * tf.range(7, dtype="float32"))
    grads = tape.gradient(loss, model.trainable_variables)
    no_grad = [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
    assert not no_grad, f"variables without gradient: {no_grad[:5]}"
    assert all(np.all(np.isfinite(g)) for g in grads)

    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(restored(x, training=False), model(x, training=False))


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2_035", "efficientnet_b0", "vgg11_bn"])
def test_any_size_and_one_channel_without_top(name):
    model = cnnzoo.create_model(name, include_top=False, pooling="avg", input_shape=(None, None, 1))
    for size in (32, 45, 64):
        out = model(np.zeros((1, size, size, 1), "float32"), training=False)
        assert out.shape == (1, model.output_shape[-1])
    features = cnnzoo.create_model(name, include_top=False, pooling=None, input_shape=(64, 96, 3))
    assert features.output_shape[1:3] == (2, 3)


@pytest.mark.parametrize("family", sorted(MEMBER))
def test_every_family_takes_every_pooling_and_mixed_precision(family):
    name = MEMBER[family]
    size = _size(name)
    x = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype("float32")
    for pooling in POOLINGS:   # the classifier on top of each is test_every_model's (one pooling per model)
        features = cnnzoo.create_model(name, include_top=False, pooling=pooling, input_shape=(size, size, 3))
        assert len(features.output_shape) == 2
        assert features(x, training=False).shape == (1, features.output_shape[-1])
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = cnnzoo.create_model(name, num_classes=3, input_shape=(size, size, 3))
        assert model.get_layer("predictions").compute_dtype == "float32"
        convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
        assert convs and all(l.compute_dtype == "float16" for l in convs)
        assert model(x).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    if family in RESIDUAL:  # stochastic depth: same weights, same inference outputs; noise only in training
        plain = cnnzoo.create_model(name, num_classes=3, input_shape=(size, size, 3), drop_path_rate=0.0)
        dropped = cnnzoo.create_model(name, num_classes=3, input_shape=(size, size, 3), drop_path_rate=0.5)
        for layer in plain.layers:
            if layer.weights:
                dropped.get_layer(layer.name).set_weights(layer.get_weights())
        np.testing.assert_allclose(dropped(x, training=False), plain(x, training=False), rtol=1e-5, atol=1e-6)
        batch = np.repeat(x, 8, 0)  # (ConvNeXt's 1e-6 layer scale makes the change tiny, but not zero)
        assert not np.array_equal(dropped(batch, training=True), plain(batch, training=True))


def test_classifier_is_float32_under_mixed_precision():
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = cnnzoo.create_model("mobilenet_v2_035", num_classes=3, input_shape=(32, 32, 3))
        assert model.get_layer("Conv1").compute_dtype == "float16"
        assert model.get_layer("predictions").compute_dtype == "float32"
        assert model(np.zeros((1, 32, 32, 3), "float32")).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
