"""What every toolbox layer promises: serialization, unknown sizes, gradients, dtype policies, data formats,
training inside model.fit, and TFLite / ONNX conversion with matching outputs."""
import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnzoo.layers import (AdaptiveAveragePooling2D, AdaptiveMaxPooling2D, GlobalLpPooling2D, GlobalMixedPooling2D,
                           LpPooling2D, MixedPooling2D, Padding2D, SpatialPyramidPooling2D, StochasticPooling2D,
                           arithmetic, padding, pooling, receptive)

CASES = {
    "padding_zero": lambda **kw: Padding2D(((1, 2), (0, 3)), "zero", **kw),
    "padding_reflect": lambda **kw: Padding2D(((1, 2), (0, 3)), "reflect", **kw),
    "padding_replicate": lambda **kw: Padding2D(((1, 2), (0, 3)), "replicate", **kw),
    "padding_circular": lambda **kw: Padding2D(((1, 2), (0, 3)), "circular", **kw),
    "mixed_learnable": lambda **kw: MixedPooling2D(3, strides=2, padding="same", **kw),
    "mixed_fixed": lambda **kw: MixedPooling2D(2, alpha=0.3, **kw),
    "stochastic": lambda **kw: StochasticPooling2D(3, strides=2, padding="same", seed=0, **kw),
    "lp": lambda **kw: LpPooling2D(3, p=3, strides=2, padding="same", **kw),
    "adaptive_avg": lambda **kw: AdaptiveAveragePooling2D((3, 4), **kw),
    "adaptive_max": lambda **kw: AdaptiveMaxPooling2D((3, 4), **kw),
    "spp": lambda **kw: SpatialPyramidPooling2D(**kw),
    "spp_avg": lambda **kw: SpatialPyramidPooling2D((1, 3), mode="avg", **kw),
    "global_mixed": lambda **kw: GlobalMixedPooling2D(**kw),
    "global_lp": lambda **kw: GlobalLpPooling2D(p=3, **kw),
}
NAMES = sorted(CASES)
SHAPE = (2, 9, 7, 3)


def _x(rng, shape=SHAPE):
    return rng.normal(size=shape).astype("float32")


def _model(name, shape=SHAPE[1:], **kw):
    inputs = keras.Input(shape)
    layer = CASES[name](**kw)
    model = keras.Model(inputs, layer(inputs))
    if getattr(layer, "alpha_logit", None) is not None:
        layer.alpha_logit.assign(1.3)   # not the initial value, so a lost weight shows
    return model


@pytest.mark.parametrize("name", NAMES)
def test_config_and_keras_file_round_trip(name, rng, tmp_path):
    model = _model(name)
    layer = model.layers[-1]
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layers[-1]) is type(layer)
    assert loaded.layers[-1].get_config() == layer.get_config()
    x = _x(rng)
    np.testing.assert_array_equal(loaded(x, training=False), model(x, training=False))


@pytest.mark.parametrize("name", NAMES)
def test_unknown_spatial_size(name, rng):
    model = _model(name, shape=(None, None, 3))
    layer = model.layers[-1]
    assert model.output_shape == layer.compute_output_shape((None, None, None, 3))
    # Traced with unknown height and width, sizes are tensors: this must match the eager (static) result,
    # in training too (two layers with one seed draw the same stochastic samples).
    traced_layer, eager_layer = CASES[name](), CASES[name]()
    traced = {training: tf.function(lambda t, training=training: traced_layer(t, training=training),
                                    input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
              for training in (False, True)}
    for shape in [(2, 9, 7, 3), (1, 5, 12, 3), (1, 4, 4, 3)]:
        x = _x(rng, shape)
        for training in (False, True):
            expected = eager_layer(x, training=training)
            np.testing.assert_allclose(traced[training](x), expected, rtol=1e-6, atol=1e-6)
            assert expected.shape == layer.compute_output_shape(shape)
        np.testing.assert_allclose(model(x, training=False), layer(x, training=False), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_flow(name, rng):
    layer = CASES[name]()
    x = tf.constant(np.abs(_x(rng)) + 0.1)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        out = layer(x, training=True)
        loss = tf.reduce_sum(out * tf.constant(rng.uniform(0.5, 1.5, out.shape).astype("float32")))
    grad = tape.gradient(loss, x).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0
    for weight, g in zip(layer.trainable_weights, tape.gradient(loss, layer.trainable_weights)):
        assert g is not None and float(tf.reduce_sum(tf.abs(g))) > 0, weight.name


@pytest.mark.parametrize("policy, tolerance", [("mixed_float16", 1e-2), ("mixed_bfloat16", 5e-2)])
@pytest.mark.parametrize("name", NAMES)
def test_mixed_precision_policies(name, policy, tolerance, rng):
    x = _x(rng) * 4
    reference = CASES[name]()
    half = CASES[name](dtype=policy)
    out = half(x, training=False)
    compute = policy.split("_")[1]
    assert keras.backend.standardize_dtype(out.dtype) == compute
    assert all(w.dtype == "float32" for w in half.weights)
    expected = np.asarray(reference(x, training=False))
    np.testing.assert_allclose(np.asarray(tf.cast(out, "float32")), expected, rtol=tolerance,
                               atol=tolerance * np.abs(expected).max())
    assert keras.backend.standardize_dtype(half(x, training=True).dtype) == compute


@pytest.mark.parametrize("name", NAMES)
def test_channels_first_matches_channels_last(name, rng):
    x = _x(rng)
    last = np.asarray(CASES[name]()(x))
    first = np.asarray(CASES[name](data_format="channels_first")(x.transpose(0, 3, 1, 2)))
    if last.ndim == 4:
        first = first.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(first, last, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_layers_train_inside_model_fit(jit_compile, rng):
    # jit_compile="auto" means XLA on a GPU, so the layers must also compile with XLA.
    inputs = keras.Input((16, 16, 3))
    x = Padding2D(1, "reflect")(inputs)
    x = Padding2D(((0, 1), (1, 0)), "circular")(x)
    x = Padding2D(1, "replicate")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = StochasticPooling2D(2, seed=0)(x)
    x = MixedPooling2D(2, name="mixed")(x)
    x = LpPooling2D(2, p=2, strides=1, padding="same")(x)
    x = AdaptiveMaxPooling2D(3)(x)
    x = keras.layers.Concatenate()([SpatialPyramidPooling2D((1, 2))(x), GlobalMixedPooling2D()(x),
                                    GlobalLpPooling2D()(AdaptiveAveragePooling2D(2)(x))])
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit_compile)
    alpha_before = model.get_layer("mixed").alpha_value
    history = model.fit(rng.uniform(size=(32, 16, 16, 3)).astype("float32"), rng.integers(0, 3, 32), epochs=2,
                        batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.get_layer("mixed").alpha_value != alpha_before


def _tflite(model, x, resize=False):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tf.lite.TFLiteConverter.from_keras_model(model).convert())
    index = interpreter.get_input_details()[0]["index"]
    outputs = []
    for batch in x:
        if resize:
            interpreter.resize_tensor_input(index, batch.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, batch)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    return outputs


def _onnx(model, x, spec):
    import onnxruntime as ort
    import tf2onnx

    proto, _ = tf2onnx.convert.from_keras(model, input_signature=[tf.TensorSpec(spec, tf.float32, name="images")],
                                          opset=17)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return [session.run(None, {"images": batch})[0] for batch in x]


@pytest.mark.parametrize("name", NAMES)
def test_tflite_conversion_matches_keras(name, rng):
    static = keras.Model(*(lambda i: (i, CASES[name]()(i)))(keras.Input(SHAPE[1:], batch_size=SHAPE[0])))
    x = [_x(rng)]
    np.testing.assert_allclose(_tflite(static, x)[0], static(x[0], training=False), rtol=1e-5, atol=1e-5)
    dynamic = _model(name, shape=(None, None, 3))
    x = [_x(rng, (2, 9, 7, 3)), _x(rng, (1, 5, 12, 3))]
    for got, batch in zip(_tflite(dynamic, x, resize=True), x):
        np.testing.assert_allclose(got, dynamic(batch, training=False), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_onnx_conversion_matches_keras(name, rng):
    static = _model(name)
    x = [_x(rng)]
    np.testing.assert_allclose(_onnx(static, x, SHAPE)[0], static(x[0], training=False), rtol=1e-5, atol=1e-5)
    dynamic = _model(name, shape=(None, None, 3))
    x = [_x(rng, (2, 9, 7, 3)), _x(rng, (1, 5, 12, 3))]
    for got, batch in zip(_onnx(dynamic, x, (None, None, None, 3)), x):
        np.testing.assert_allclose(got, dynamic(batch, training=False), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("module", [arithmetic, padding, pooling, receptive], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, extraglobs={"keras": keras, "np": np, **vars(module)},
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
