"""Grad-CAM: equal to CAM for a GAP + linear head, localizes a trained model's evidence, overlay, zoo models."""
import keras
import numpy as np
import pytest

import cnnzoo
from cnnzoo.explain import grad_cam, last_conv_layer, overlay


def gap_linear_model(size=8, channels=4, classes=3, seed=0):
    inputs = keras.Input((size, size, 3))
    maps = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name="features",
                               kernel_initializer=keras.initializers.GlorotUniform(seed))(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(maps)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions",
                                 kernel_initializer=keras.initializers.GlorotUniform(seed + 1))(pooled)
    return keras.Model(inputs, outputs)


def test_grad_cam_equals_cam_for_a_gap_linear_head():
    """With GAP then a linear score, d y_c / d A_k = W[k, c] / HW everywhere: Grad-CAM is CAM."""
    model = gap_linear_model()
    image = np.random.default_rng(0).uniform(0, 1, (8, 8, 3)).astype("float32")
    maps = keras.Model(model.inputs, model.get_layer("features").output)(image[None]).numpy()[0]
    kernel = model.get_layer("predictions").kernel.numpy()
    for class_index in range(3):
        cam = np.maximum((maps * kernel[:, class_index] / 64.0).sum(-1), 0)
        expected = cam / cam.max() if cam.max() > 0 else cam
        np.testing.assert_allclose(grad_cam(model, image, class_index), expected, atol=1e-5)
    predicted = int(np.argmax(model(image[None]).numpy()))
    np.testing.assert_array_equal(grad_cam(model, image), grad_cam(model, image[None], predicted))
    with pytest.raises(ValueError, match="Received: class_index=3"):
        grad_cam(model, image, class_index=3)
    with pytest.raises(ValueError, match="layer_name"):
        grad_cam(model, image, layer_name="avg_pool")


def _scene(rng, label, size=32):
    """Noise background with one object at a random place: a filled square (0) or a hollow ring (1)."""
    image = rng.uniform(0, 40, (size, size, 3))
    top, left = rng.integers(0, size - 8, 2)
    patch = np.full((8, 8), 220.0)
    if label == 1:
        patch[2:6, 2:6] = 20.0
    image[top:top + 8, left:left + 8] += patch[..., None]
    return np.clip(image, 0, 255).astype("uint8"), (top, left)


def test_grad_cam_points_at_the_object_a_trained_model_uses():
    rng = np.random.default_rng(0)
    labels = np.arange(600) % 2
    scenes = [_scene(rng, int(label)) for label in labels]
    images = np.stack([s[0] for s in scenes])
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="predictions")(x))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(images[:500], labels[:500], epochs=6, batch_size=32, verbose=0)
    assert model.evaluate(images[500:], labels[500:], verbose=0)[1] > 0.9
    assert last_conv_layer(model).name == "last_conv"
    hits = 0
    for (image, (top, left)), label in zip(scenes[500:], labels[500:]):
        heat = grad_cam(model, image, int(label))
        assert heat.shape == (32, 32) and heat.min() >= 0 and heat.max() <= 1
        row, col = np.unravel_index(np.argmax(heat), heat.shape)
        hits += (top - 2 <= row < top + 10) and (left - 2 <= col < left + 10)
    assert hits >= 80  # the peak lies on the object (which covers 6 % of the image) for >= 80 % of images


def test_overlay_blends_and_checks_arguments():
    image = np.full((10, 12, 3), 100, "uint8")
    heat = np.zeros((5, 6), "float32")
    np.testing.assert_array_equal(overlay(image, heat, alpha=0.0), image)
    out = overlay(image, heat, alpha=1.0, colormap="gray")
    assert out.shape == (10, 12, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, 0)  # gray colormap at 0 is black
    half = overlay(image, np.ones((10, 12)), alpha=0.5, colormap="gray")
    np.testing.assert_array_equal(half, 177)  # 0.5 * 100 + 0.5 * 255 = 177.5, truncated to uint8
    with pytest.raises(ValueError, match="Received: colormap='no_such_map'"):
        overlay(image, heat, colormap="no_such_map")
    with pytest.raises(ValueError, match="alpha"):
        overlay(image, heat, alpha=2.0)


def test_grad_cam_on_a_zoo_model_uses_the_last_stage():
    model = cnnzoo.create_model("resnet18", num_classes=4, input_shape=(32, 32, 3))
    layer = last_conv_layer(model)
    names = [l.name for l in model.layers]
    assert names[names.index(layer.name) + 1] == "avg_pool"
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3)).astype("uint8")
    heat = cnnzoo.explain.grad_cam(model, image)
    assert heat.shape == (32, 32) and np.isfinite(heat).all() and heat.max() <= 1.0


def test_grad_cam_skips_a_1x1_last_stage_and_says_which_layer():
    # resnet18 at 32 px ends in a 1x1 map: Grad-CAM there is one number spread over the image (constant).
    model = cnnzoo.create_model("resnet18", num_classes=4, input_shape=(32, 32, 3))
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3)).astype("uint8")
    heats = [cnnzoo.explain.grad_cam(model, image, c) for c in range(4)]
    for heat in heats:
        assert heat.layer_name == "conv4_block2_out" and heat.cells == (2, 2)
        assert model.get_layer(heat.layer_name).output.shape[1:3] == (2, 2)
    assert any(np.ptp(heat) > 0.1 for heat in heats), "every heatmap is constant"
    assert [heat.class_index for heat in heats] == [0, 1, 2, 3]
    forced = cnnzoo.explain.grad_cam(model, image, 0, layer="conv5_block2_out")
    assert forced.layer_name == "conv5_block2_out" and forced.cells == (1, 1) and np.ptp(forced) == 0
    assert cnnzoo.explain.grad_cam(model, image, 0, min_cells=16).layer_name == "conv3_block2_out"
    with pytest.raises(ValueError, match="layer"):
        cnnzoo.explain.grad_cam(model, image, layer="no_such_layer")


def test_grad_cam_of_a_wrapped_zoo_model_uses_the_inner_layers():
    inner = cnnzoo.create_model("resnet18", num_classes=3, input_shape=(32, 32, 3))
    inputs = keras.Input((32, 32, 3))
    outer = keras.Model(inputs, inner(keras.layers.RandomFlip(seed=0)(inputs)))
    image = np.random.default_rng(2).integers(0, 256, (32, 32, 3)).astype("uint8")
    heat = cnnzoo.explain.grad_cam(outer, image, 1)
    assert heat.layer_name == "conv4_block2_out"
    np.testing.assert_allclose(heat, cnnzoo.explain.grad_cam(inner, image, 1), atol=1e-6)
