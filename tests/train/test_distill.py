"""Knowledge distillation on keras.distillation (issue 17 item 5)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnzoo
from cnnzoo.train.distill import logits_view


def dense_classifier(seed, hidden=8, classes=3):
    keras.utils.set_random_seed(seed)
    x = keras.Input((2, 2, 3))
    h = keras.layers.Rescaling(1 / 255.0)(keras.layers.Flatten()(x))
    h = keras.layers.Dense(hidden, activation="tanh")(h)
    return keras.Model(x, keras.layers.Dense(classes, activation="softmax", name="predictions")(h))


def toy_stream(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 2, 2, 3)).astype(np.uint8)
    y = (x[:, 0, 0, 0] // 86).astype(np.int32)
    return x, y, tf.data.Dataset.from_tensor_slices((x, y)).batch(n)


def test_the_loss_is_hinton_s_softened_kl_plus_cross_entropy():
    """One batch, a rate too small to move anything: the logged terms are the textbook ones (the teacher's and
    student's softmax at temperature T, KL scaled by T^2; cross-entropy with the labels), mixed by alpha."""
    x, y, stream = toy_stream()
    teacher, student = dense_classifier(1), dense_classifier(2)
    t_logits = logits_view(teacher, "teacher")(x.astype("float32")).numpy()
    s_logits = logits_view(student, "student")(x.astype("float32")).numpy()
    np.testing.assert_allclose(tf.nn.softmax(s_logits).numpy(), student(x.astype("float32")).numpy(), atol=1e-6)
    before = [w.copy() for w in teacher.get_weights()]
    result = cnnzoo.train.distill(teacher, student, stream, temperature=3.0, alpha=0.25, epochs=1,
                                  optimizer="sgd", learning_rate=1e-12, schedule="constant", weight_decay=None,
                                  verbose=0)
    p, q = tf.nn.softmax(t_logits / 3.0).numpy(), tf.nn.softmax(s_logits / 3.0).numpy()
    kl = np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)) * 9.0
    ce = np.mean(-np.log(tf.nn.softmax(s_logits).numpy()[np.arange(len(y)), y]))
    history = result.history
    np.testing.assert_allclose(history["distillation_loss"][0], kl, rtol=1e-4)
    np.testing.assert_allclose(history["student_loss"][0], ce, rtol=1e-4)
    np.testing.assert_allclose(history["loss"][0], 0.25 * ce + 0.75 * kl, rtol=1e-4)
    assert result.model is student
    for a, b in zip(before, teacher.get_weights()):          # the teacher is read, never trained or left frozen
        np.testing.assert_array_equal(a, b)
    assert teacher.trainable and all(layer.trainable for layer in teacher.layers)


def test_distill_arguments_are_checked():
    x, y, stream = toy_stream()
    teacher, student = dense_classifier(1), dense_classifier(2)
    for kwargs, name in (({"temperature": 0.0}, "temperature"), ({"alpha": 1.5}, "alpha"),
                         ({"epochs": 0}, "epochs")):
        with pytest.raises(ValueError, match=name):
            cnnzoo.train.distill(teacher, student, stream, **{"epochs": 1, **kwargs})
    with pytest.raises(ValueError, match="classes"):
        cnnzoo.train.distill(teacher, dense_classifier(3, classes=4), stream, epochs=1)
    with pytest.raises(TypeError, match="teacher"):
        cnnzoo.train.distill("resnet18", student, stream, epochs=1)
    small = cnnzoo.create_model("mobilenet_v2_035", num_classes=3, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="images"):
        cnnzoo.train.distill(small, cnnzoo.create_model("mobilenet_v2_035", num_classes=3,
                                                        input_shape=(48, 48, 3)), stream, epochs=1)
    segmenter = cnnzoo.create_segmenter("mobilenet_v2_035", num_classes=3, channels=16, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="single-label"):
        cnnzoo.train.distill(segmenter, segmenter, stream, epochs=1)



def test_a_distilled_zoo_student_learns_and_keeps_its_softmax_head():
    """End to end on zoo models (a ResNet18 teacher, a MobileNetV2 student, 32 px digits): the student trains
    through its logits view and comes back as the softmax classifier `evaluate` and `export` take. Whether the
    teacher lifts the student above training alone is measured by benchmarks/bench_recipes.py (3 seeds, goal
    `distill_lifts`; int8 export with parity), too slow for the suite."""
    from cnnzoo.data.bundled import digits_rgb

    x, y, _ = digits_rgb(32)
    data = cnnzoo.data.from_arrays(x[:256], y[:256], batch_size=32, validation_split=0.25, seed=0)
    keras.utils.set_random_seed(0)
    teacher = cnnzoo.create_model("resnet18", num_classes=10, input_shape=(32, 32, 3))
    student = cnnzoo.create_model("mobilenet_v2_035", num_classes=10, input_shape=(32, 32, 3))
    before = student.get_layer("predictions").get_weights()[0].copy()
    result = cnnzoo.train.distill(teacher, student, data, epochs=1, learning_rate=1e-2, verbose=0, seed=0)
    assert result.model is student and result.model.get_layer("predictions").activation.__name__ == "softmax"
    assert not np.allclose(before, student.get_layer("predictions").get_weights()[0])
    assert {"loss", "student_loss", "distillation_loss", "val_accuracy"} <= set(result.history)
    report = cnnzoo.evaluate(student, data)
    assert report.num_classes == 10 and np.allclose(report.probabilities.sum(1), 1.0)
