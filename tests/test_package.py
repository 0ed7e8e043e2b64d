"""The package surface: plain `import cnnzoo` is enough to load saved models, and API.md's names exist."""
import subprocess
import sys


def test_saved_model_loads_after_plain_import(tmp_path):
    import cnnzoo

    model = cnnzoo.create_model("mobilenet_v2_035", num_classes=3, input_shape=(32, 32, 3), pooling="spp")
    model.save(tmp_path / "m.keras")
    code = ("import cnnzoo, keras, sys; m = keras.saving.load_model(sys.argv[1]); "
            "print(type(m.layers[1]).__name__)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.keras")], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "Preprocessing"


def test_api_names_exist():
    import cnnzoo

    for name in ("create_model", "list_models", "model_info", "profile", "finetune", "Stage", "evaluate",
                 "export", "validate", "train", "tune", "serving", "explain", "layers", "models", "data"):
        assert hasattr(cnnzoo, name), name
    assert callable(cnnzoo.export) and callable(cnnzoo.validate) and callable(cnnzoo.evaluate)
    assert callable(cnnzoo.models.efficientnet)
    assert hasattr(cnnzoo.validate, "reference_stats")
    assert hasattr(cnnzoo.train, "lr_find") and hasattr(cnnzoo.explain, "grad_cam")
    for name in ("fit", "lr_find", "recalibrate_bn"):
        assert callable(getattr(cnnzoo.train, name))
    for name in ("step_decay", "exponential_decay", "cosine", "cosine_restarts", "one_cycle"):
        assert hasattr(cnnzoo.train.schedules, name), name
    assert hasattr(cnnzoo.serving, "Client") and hasattr(cnnzoo.tune, "CnnZooHyperModel")


def test_zoo_builds_and_runs_on_the_jax_backend_without_tensorflow(tmp_path):
    """The zoo uses keras.ops only: with TensorFlow unimportable and Keras on JAX (how the GPU benchmark ran on a
    machine without TensorFlow), `import cnnzoo` and `create_model` work and compute what the TensorFlow build
    computes; the TensorFlow-only parts say what they need."""
    import os

    import numpy as np
    import pytest

    import cnnzoo

    pytest.importorskip("jax")
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None\n"      # `import tensorflow` fails from here on
        "import keras, numpy as np, cnnzoo\n"
        "assert keras.backend.backend() == 'jax'\n"
        "m = cnnzoo.create_model('mobilenet_v2_035', num_classes=3, input_shape=(32, 32, 3))\n"
        "m.load_weights(sys.argv[1])\n"
        "np.save(sys.argv[2], np.asarray(m(np.load(sys.argv[3]))))\n"
        "try:\n    cnnzoo.data\nexcept ModuleNotFoundError as e:\n    print('needs', e.name)\n")
    model = cnnzoo.create_model("mobilenet_v2_035", num_classes=3, input_shape=(32, 32, 3))
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    weights, out, inputs = (str(tmp_path / n) for n in ("m.weights.h5", "out.npy", "x.npy"))
    model.save_weights(weights)
    np.save(inputs, x)
    result = subprocess.run([sys.executable, "-c", code, weights, out, inputs], capture_output=True, text=True,
                            env=dict(os.environ, KERAS_BACKEND="jax"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "needs tensorflow" in result.stdout
    np.testing.assert_allclose(np.load(out), model(x).numpy(), atol=1e-5)
