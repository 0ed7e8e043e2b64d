"""The toolbox inside zoo models: `create_model(..., pooling=<GLOBAL_POOLINGS key>)` and receptive fields."""
import keras
import numpy as np
import pytest

import cnnzoo
from cnnzoo.layers import GLOBAL_POOLINGS, GlobalMixedPooling2D, SpatialPyramidPooling2D, receptive_field


def test_resnet18_with_spp_head_trains_and_round_trips(rng, tmp_path):
    model = cnnzoo.create_model("resnet18", num_classes=3, input_shape=(32, 32, 3), include_top=True, pooling="spp")
    spp = model.get_layer("spp_pool")
    assert isinstance(spp, SpatialPyramidPooling2D) and spp.output.shape == (None, 21 * 512)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = rng.uniform(0, 255, size=(8, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 3, 8)
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before, model.trainable_weights))
    path = tmp_path / "resnet18_spp.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pooling", sorted(GLOBAL_POOLINGS))
def test_every_global_pooling_key_is_a_zoo_pooling(pooling, rng):
    features = cnnzoo.create_model("mobilenet_v2_035", input_shape=(32, 32, 3), include_top=False, pooling=pooling)
    channels = features.get_layer(f"{pooling}_pool").input.shape[-1]
    width = {"spp": 21 * channels}.get(pooling, channels)
    assert features.output_shape == (None, width)
    out = features(rng.uniform(0, 255, size=(2, 32, 32, 3)).astype("float32"), training=False)
    assert out.shape == (2, width) and np.isfinite(np.asarray(out)).all()


def test_learnable_mixed_head_alpha_is_a_trainable_weight():
    model = cnnzoo.create_model("mobilenet_v2_035", num_classes=2, input_shape=(32, 32, 3), pooling="mixed")
    head = model.get_layer("mixed_pool")
    assert isinstance(head, GlobalMixedPooling2D) and head.alpha is None
    assert any(w is head.alpha_logit for w in model.trainable_weights)


def test_receptive_field_of_zoo_resnet18():
    # The torchvision ResNet-18 layout: 7x7/2 stem, 3x3/2 max pool, four stages of two 3x3 basic blocks.
    model = cnnzoo.create_model("resnet18", input_shape=(32, 32, 3), include_top=False, pooling=None)
    assert receptive_field(model) == 435
