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
