"""Mixed precision: the policy choice, float32 classifier, scoped policy, float32 model out (reload + export)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnzoo.train import fit
from cnnzoo.train.precision import cpu_supports_bf16, gpu_visible, resolve_policy

from traintools import digits_arrays, make_data, tiny_cnn


def test_resolve_policy():
    assert resolve_policy("auto", gpu=True) == "mixed_float16"
    assert resolve_policy("auto", gpu=False) == "float32"
    assert resolve_policy("auto") == ("mixed_float16" if gpu_visible() else "float32")
    assert resolve_policy(None) == resolve_policy("float32") == "float32"
    assert resolve_policy("fp16", gpu=False) == "mixed_float16"
    assert resolve_policy("bf16", gpu=False, cpu_bf16=True) == "mixed_bfloat16"
    assert resolve_policy("bf16", gpu=True, cpu_bf16=False) == "mixed_bfloat16"
    with pytest.raises(ValueError, match="AVX512_BF16"):
        resolve_policy("bf16", gpu=False, cpu_bf16=False)
    with pytest.raises(ValueError, match="Received: mixed_precision='half'"):
        resolve_policy("half")


class _Spy(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.conv = self.model.get_layer("stage1_conv").dtype_policy.name
        self.head = self.model.get_layer("predictions").dtype_policy.name
        self.output_dtype = self.model.outputs[0].dtype
        self.loss_scaled = isinstance(self.model.optimizer, keras.optimizers.LossScaleOptimizer)
        self.global_policy = keras.config.dtype_policy().name


@pytest.mark.parametrize("choice,policy", [("float16", "mixed_float16"), ("bf16", "mixed_bfloat16")])
def test_mixed_precision_run_is_scoped_and_returns_a_float32_model(choice, policy, tmp_path):
    if policy == "mixed_bfloat16" and not (cpu_supports_bf16() or gpu_visible()):
        pytest.skip("no bfloat16 hardware")
    x, y = digits_arrays(32)
    data = make_data(x[:256], y[:256], batch_size=64)
    spy = _Spy()
    result = fit(tiny_cnn(), data, epochs=1, learning_rate=1e-2, mixed_precision=choice, callbacks=[spy],
                 verbose=0)
    assert (spy.conv, spy.head, spy.output_dtype) == (policy, "float32", "float32")
    assert spy.loss_scaled == (policy == "mixed_float16")   # loss scaling is automatic for float16 only
    assert spy.global_policy == "float32"                   # never set globally
    assert keras.config.dtype_policy().name == "float32"
    assert np.isfinite(result.history["loss"]).all()
    model = result.model
    assert {layer.dtype_policy.name for layer in model.layers[1:]} == {"float32"}
    assert all(w.dtype == "float32" for w in model.weights)
    images = x[256:264].astype("float32")
    expected = model.predict(images, verbose=0)
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert {layer.dtype_policy.name for layer in reloaded.layers[1:]} == {"float32"}
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), expected, atol=1e-6)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda t: model(t, training=False),
                         input_signature=[tf.TensorSpec((None, 32, 32, 3), tf.float32)])
    archive.write_out(str(tmp_path / "saved"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "saved"))  # keep a reference: its variables live on it
    served = loaded.serve(tf.constant(images))
    assert served.dtype == tf.float32
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-6)
