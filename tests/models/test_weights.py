"""keras.applications weight files (both layouts) load into the shared architectures and give the same logits."""
import keras
import numpy as np
import pytest

import _kparity as kp
import cnnzoo
from cnnzoo.layers import Preprocessing

KA = keras.applications


# The shared checks' helpers: randomize every variable, save in either layout, relative difference.
_randomize, _save, _rel_diff = kp.randomize, kp.save, kp.rel_diff


CASES = [  # (cnnzoo name, keras.applications builder, kwargs, input size, include_top)
    ("resnet50", KA.ResNet50, {}, 64, True),
    ("vgg16", KA.VGG16, {}, 64, False),
    ("mobilenet_v2_035", KA.MobileNetV2, {"alpha": 0.35}, 96, True),
    ("efficientnet_b0", KA.EfficientNetB0, {}, 64, True),
]


@pytest.mark.parametrize("layout", ["keras3", "legacy"])
@pytest.mark.parametrize("name,builder,kwargs,size,top", CASES, ids=[c[0] for c in CASES])
def test_keras_applications_weights_give_same_logits(name, builder, kwargs, size, top, layout, tmp_path):
    ka_model = builder(weights=None, include_top=top, input_shape=(size, size, 3), classifier_activation=None,
                       pooling=None if top else "avg", **kwargs)
    _randomize(ka_model)
    suffix = ".weights.h5" if layout == "keras3" else ".h5"
    path = _save(ka_model, tmp_path / f"{name}{suffix}", layout)
    ours = cnnzoo.create_model(name, include_top=top, input_shape=(size, size, 3), weights=path,
                               preprocessing=None, classifier_activation=None, pooling="avg")
    x = np.random.default_rng(1).uniform(-1, 1, (2, size, size, 3)).astype("float32")
    if name.startswith("efficientnet"):
        # keras.applications' EfficientNet normalizes inside; feed cnnzoo what those layers output.
        stem = ka_model.get_layer("stem_conv_pad")
        expected_input = keras.Model(ka_model.input, stem.input)(x * 127.5 + 127.5)
        expected = ka_model(x * 127.5 + 127.5, training=False)
        x = np.asarray(expected_input)
    else:
        expected = ka_model(x, training=False)
    assert _rel_diff(ours(x, training=False), expected) < 1e-5


def test_new_head_is_skipped_with_warning(tmp_path):
    ka_model = KA.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3))
    _randomize(ka_model)
    path = _save(ka_model, tmp_path / "m.h5", "legacy")
    fresh = cnnzoo.create_model("mobilenet_v2_035", num_classes=5, input_shape=(96, 96, 3), preprocessing=None)
    with pytest.warns(UserWarning, match="predictions"):
        model = cnnzoo.create_model("mobilenet_v2_035", num_classes=5, input_shape=(96, 96, 3), weights=path,
                                    preprocessing=None)
    np.testing.assert_array_equal(model.get_layer("Conv1").kernel, ka_model.get_layer("Conv1").kernel)
    np.testing.assert_array_equal(model.get_layer("block_16_project_BN").moving_variance,
                                  ka_model.get_layer("block_16_project_BN").moving_variance)
    # The head keeps its fresh initialization (same seed -> same init as a model built without weights).
    assert model.get_layer("predictions").kernel.shape == (1280, 5)
    assert not np.allclose(model.get_layer("predictions").kernel[:, :5],
                           ka_model.get_layer("predictions").kernel[:, :5])
    assert fresh.get_layer("predictions").kernel.shape == (1280, 5)


def test_other_shape_mismatch_names_the_layer(tmp_path):
    ka_model = KA.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3))
    path = _save(ka_model, tmp_path / "m.h5", "legacy")
    with pytest.raises(ValueError, match="Layer 'block_1_project' does not fit"):
        cnnzoo.create_model("mobilenet_v2_050", input_shape=(96, 96, 3), weights=path)


def test_file_of_another_architecture_is_rejected(tmp_path):
    ka_model = KA.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))
    for layout, suffix in (("keras3", ".weights.h5"), ("legacy", ".h5")):
        path = _save(ka_model, tmp_path / f"r50{suffix}", layout)
        with pytest.raises(ValueError, match="conv4_block7"):  # ResNet101's first block that ResNet50 lacks
            cnnzoo.create_model("resnet101", include_top=False, input_shape=(64, 64, 3), weights=path)
    with pytest.raises(FileNotFoundError, match="weights="):
        cnnzoo.create_model("resnet18", weights=str(tmp_path / "missing.h5"))
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="Not an HDF5"):
        cnnzoo.create_model("resnet18", weights=str(tmp_path / "junk.h5"))


def test_imagenet_offline_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CNNZOO_WEIGHTS_URL", "http://127.0.0.1:9")  # nothing listens: fails at once, offline-like
    with pytest.raises(RuntimeError, match="pass its local path.*resnet50_weights_tf_dim_ordering_tf_kernels.h5"):
        cnnzoo.create_model("resnet50", weights="imagenet")
    with pytest.raises(ValueError, match="no ImageNet weights"):
        cnnzoo.create_model("resnet18", weights="imagenet")


def test_imagenet_uses_cached_file_and_its_preprocessing(tmp_path, monkeypatch):
    # keras.applications publishes MobileNetV2 files without a hash, so a cached file is used as is: put a
    # (randomized) keras.applications file where the download would land, with no network at all.
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CNNZOO_WEIGHTS_URL", "http://127.0.0.1:9")
    ka_model = KA.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3))
    _randomize(ka_model)
    (tmp_path / "models").mkdir()
    _save(ka_model, tmp_path / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5", "legacy")
    model = cnnzoo.create_model("mobilenet_v2_035", input_shape=(96, 96, 3), weights="imagenet")
    raw = np.random.default_rng(2).uniform(0, 255, (2, 96, 96, 3)).astype("float32")
    expected = ka_model(KA.mobilenet_v2.preprocess_input(raw.copy()), training=False)
    assert _rel_diff(model(raw, training=False), expected) < 1e-5


def test_imagenet_no_top_file_loads_into_a_features_model(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CNNZOO_WEIGHTS_URL", "http://127.0.0.1:9")
    ka_model = KA.MobileNetV2(weights=None, alpha=0.35, include_top=False, input_shape=(96, 96, 3))
    _randomize(ka_model)
    (tmp_path / "models").mkdir()
    _save(ka_model, tmp_path / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5",
          "legacy")
    features = cnnzoo.create_model("mobilenet_v2_035", features_only=True, input_shape=(96, 96, 3),
                                   weights="imagenet")
    raw = np.random.default_rng(4).uniform(0, 255, (2, 96, 96, 3)).astype("float32")
    taps = keras.Model(ka_model.inputs, [ka_model.get_layer(f.layer).output for f in features.feature_info])
    expected = taps(KA.mobilenet_v2.preprocess_input(raw.copy()), training=False)
    for got, want in zip(features(raw, training=False), expected):
        assert _rel_diff(got, want) < 1e-5


@pytest.mark.parametrize("name,preprocess", [
    ("resnet50", KA.resnet50.preprocess_input), ("vgg16", KA.vgg16.preprocess_input),
    ("mobilenet_v2", KA.mobilenet_v2.preprocess_input),
])
def test_default_preprocessing_matches_keras_preprocess_input(name, preprocess):
    raw = np.random.default_rng(3).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    layer = Preprocessing(**cnnzoo.registry.get_entry(name).preprocessing)
    np.testing.assert_allclose(layer(raw), preprocess(raw.copy()), atol=1e-4)


def test_efficientnet_preprocessing_reproduces_imagenet_pipeline_with_variance_quirk():
    # What keras.applications builds for weights="imagenet": Rescaling(1/255) -> Normalization whose "variance"
    # holds the std (TF #49930) -> Rescaling(1/sqrt(std)) to compensate.
    std = [0.229, 0.224, 0.225]
    pipeline = keras.Sequential([
        keras.layers.Rescaling(1 / 255.0),
        keras.layers.Normalization(mean=[0.485, 0.456, 0.406], variance=std),
        keras.layers.Rescaling([1 / np.sqrt(s) for s in std]),
    ])
    raw = np.random.default_rng(4).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    ours = Preprocessing(**cnnzoo.registry.get_entry("efficientnet_b3").preprocessing)
    np.testing.assert_allclose(ours(raw), pipeline(raw), atol=1e-5)
