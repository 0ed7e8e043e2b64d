"""The search space, the hypermodel's build, argument checks and tuner construction: no training here."""
import configparser
import importlib.util
import os

import keras
import keras_tuner as kt
import pytest

import cnnzoo
from cnnzoo.tune import CnnZooHyperModel, parse_space
from cnnzoo.tune.hypermodel import scaled_policy
from cnnzoo.tune.search import make_tuner
from cnnzoo.tune.space import resolve_space
from tunetools import color_data

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def declared(hypermodel):
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    return hp, {p.name: p for p in hp.space}


def test_space_entries_become_fixed_choice_and_range_hyperparameters():
    hm = CnnZooHyperModel(3, (32, 32, 3), models=("resnet18",), space={
        "learning_rate": (1e-5, 1e-2), "weight_decay": [1e-4, 1e-3], "dropout": (0.0, 0.5, 0.1),
        "label_smoothing": (0.0, 0.2, "linear"), "batch_size": 16, "augment": ["light", "heavy"]})
    hp, params = declared(hm)
    lr = params["learning_rate"]
    assert isinstance(lr, kt.engine.hyperparameters.Float) and lr.sampling == "log"
    assert (lr.min_value, lr.max_value) == (1e-5, 1e-2)
    assert isinstance(params["weight_decay"], kt.engine.hyperparameters.Choice)
    assert params["weight_decay"].values == [1e-4, 1e-3]
    assert params["dropout"].step == 0.1 and params["dropout"].sampling == "linear"
    assert params["label_smoothing"].sampling == "linear" and params["label_smoothing"].step is None
    assert isinstance(params["batch_size"], kt.engine.hyperparameters.Fixed) and hp.get("batch_size") == 16
    assert isinstance(params["model"], kt.engine.hyperparameters.Fixed) and hp.get("model") == "resnet18"
    assert params["augment"].values == ["light", "heavy"]
    # Fit-time hyperparameters are in the space before any trial, so every trial samples them.
    assert {"batch_size", "augment", "augment_strength"} <= set(params)


def test_the_real_data_recipe_is_fixed_until_the_space_opens_it():
    _, params = declared(CnnZooHyperModel(3, (32, 32, 3), models=("resnet18",)))
    for name, value in (("class_weight", "none"), ("loss", "auto"), ("ema", 0.0)):
        assert isinstance(params[name], kt.engine.hyperparameters.Fixed) and params[name].value == value
    _, params = declared(CnnZooHyperModel(3, (32, 32, 3), models=("resnet18",), space={
        "class_weight": ["none", "balanced"], "loss": ["auto", "focal"], "ema": [0.0, 0.99]}))
    assert params["class_weight"].values == ["none", "balanced"] and params["loss"].values == ["auto", "focal"]
    assert params["ema"].values == [0.0, 0.99]


def test_conditional_hyperparameters_follow_the_candidates():
    _, params = declared(CnnZooHyperModel(3, (32, 32, 3), models=("resnet18",)))
    assert "alpha" not in params and "phi" not in params and "unfreeze" not in params

    _, params = declared(CnnZooHyperModel(3, (32, 32, 3), models=("mobilenet_v2", "resnet18", "efficientnet")))
    alpha, phi = params["alpha"], params["phi"]
    assert [(c.name, c.values) for c in alpha.conditions] == [("model", ["mobilenet_v2"])]
    assert [(c.name, c.values) for c in phi.conditions] == [("model", ["efficientnet"])]
    assert [(c.name, c.values) for c in params["augment_strength"].conditions] == [
        ("augment", ["light", "standard", "heavy"])]

    _, params = declared(CnnZooHyperModel(3, (32, 32, 3), models=("resnet18",),
                                          space={"optimizer": "adam", "augment": "none"}))
    assert "weight_decay" not in params and "augment_strength" not in params

    _, params = declared(CnnZooHyperModel(3, (32, 32, 3), models=("resnet18",), weights="imagenet"))
    assert isinstance(params["unfreeze"], kt.engine.hyperparameters.Int)
    assert (params["unfreeze"].min_value, params["unfreeze"].max_value) == (1, 4)


@pytest.mark.parametrize("space, match", [
    ({"learnig_rate": 1e-3}, "Unknown hyperparameter 'learnig_rate'"),
    ({"learning_rate": -1e-3}, r"space\['learning_rate'\]"),
    ({"learning_rate": []}, "at least one value"),
    ({"dropout": (0.5, 0.1)}, "low < high"),
    ({"weight_decay": (0.0, 1e-2, "log")}, "log range"),
    ({"augment": "strong"}, r"space\['augment'\]"),
    ({"batch_size": 8.5}, r"space\['batch_size'\]"),
    ({"unfreeze": 2}, "pretrained"),
    ({"alpha": 0.5}, "alpha"),
    ({"model": "mobilenet_v2"}, r"`space` cannot set 'model': it is the `models=` argument"),
    ({"epochs": 3}, r"`space` cannot set 'epochs': it is the `epochs=` argument"),
    ({"class_weight": ["none", "inverse"]}, r"space\['class_weight'\]"),
    ({"loss": "dice"}, r"space\['loss'\]"),
    ({"ema": [0.0, 1.5]}, r"space\['ema'\]"),
])
def test_bad_space_entries_name_the_argument(space, match):
    with pytest.raises((ValueError, TypeError), match=match) as info:
        CnnZooHyperModel(3, (32, 32, 3), models=("resnet18",), space=space)
    assert "Received:" in str(info.value)


def test_parse_space_reads_command_line_values():
    assert parse_space(["learning_rate=[1e-4, 3e-3]", "dropout=(0.0, 0.5)", "augment=light", "batch_size=32"]) == {
        "learning_rate": [1e-4, 3e-3], "dropout": (0.0, 0.5), "augment": "light", "batch_size": 32}
    with pytest.raises(ValueError, match="name=value"):
        parse_space(["learning_rate"])
    # Bare words are strings, also in lists, and what parse_space returns is a valid space.
    space = parse_space(["learning_rate=(1e-5, 1e-2)", "augment=[none, light]", "optimizer=adam"])
    assert space == {"learning_rate": (1e-5, 1e-2), "augment": ["none", "light"], "optimizer": "adam"}
    specs = resolve_space(space, models=("resnet18",))
    assert specs["augment"].values == ("none", "light") and specs["learning_rate"].sampling == "log"
    assert specs["optimizer"].values == ("adam",)


def test_build_follows_the_hyperparameters():
    hm = CnnZooHyperModel(3, (32, 32, 3), models=("mobilenet_v2", "efficientnet"),
                          space={"optimizer": ["adamw", "sgd"]})
    hp, _ = declared(hm)
    hp.values.update(model="mobilenet_v2", alpha=0.35, dropout=0.3, optimizer="sgd", learning_rate=0.02,
                     weight_decay=1e-3)
    model = hm.build(hp)
    reference = cnnzoo.create_model("mobilenet_v2_035", num_classes=3, input_shape=(32, 32, 3))
    assert model.count_params() == reference.count_params()
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [0.3]
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)
    assert model.optimizer.weight_decay == pytest.approx(1e-3)

    hp.values.update(model="efficientnet", phi=0.5, optimizer="adamw")
    hp.values.pop("alpha")
    model = hm.build(hp)
    reference = cnnzoo.models.efficientnet(0.5, num_classes=3, input_shape=(32, 32, 3))
    assert model.count_params() == reference.count_params()
    assert isinstance(model.optimizer, keras.optimizers.AdamW)


def test_augment_strength_scales_the_policy_within_bounds():
    light = dict(scaled_policy("light", 1.0))
    double = dict(scaled_policy("light", 2.0))
    assert double["rotation"]["factor"] == pytest.approx(2 * light["rotation"]["factor"])
    assert double["flip"] == light["flip"]
    huge = dict(scaled_policy("standard", 4.0))
    assert huge["zoom"]["factor"] <= 0.9 and huge["erasing"]["probability"] <= 1.0
    assert huge["color_jitter"]["hue"] <= 0.5
    cnnzoo.data.augmentation(scaled_policy("heavy", 4.0))  # the capped steps are valid layers


def test_search_rejects_bad_arguments(tmp_path):
    data = color_data(24)
    common = dict(models=("resnet18",), directory=tmp_path)
    for kwargs, name in [({"tuner": "grid"}, "tuner"), ({"epochs": 0}, "epochs"), ({"max_trials": 0}, "max_trials"),
                         ({"verbose": 3}, "verbose"), ({"project_name": ""}, "project_name"),
                         ({"models": ("resnet_18",)}, "name")]:
        with pytest.raises((ValueError, TypeError), match=f"Received: {name}="):
            cnnzoo.tune.search(data, **{**common, **kwargs})
    with pytest.raises(TypeError, match="ImageData"):
        cnnzoo.tune(data.train, **common)  # the package is callable: cnnzoo.tune(...) is cnnzoo.tune.search(...)
    no_val = cnnzoo.data.from_arrays(*next(iter(data.train.unbatch().batch(24))), validation_split=0.0)
    with pytest.raises(ValueError, match="data.val"):
        cnnzoo.tune.search(no_val, **common)
    assert not any(tmp_path.iterdir())  # nothing started


def test_space_cannot_override_the_models_argument(tmp_path):
    # A "model" space entry used to replace `models=` silently: search(models=("resnet18",),
    # space={"model": "mobilenet_v2"}) tuned MobileNetV2 only.
    with pytest.raises(ValueError, match=r"`space` cannot set 'model'.*models=.*Received: space="):
        resolve_space({"model": "mobilenet_v2"}, models=("resnet18",))
    with pytest.raises(ValueError, match=r"`space` cannot set 'model'.*Received: space="):
        CnnZooHyperModel(3, (32, 32, 3), models=("resnet18",), space={"model": ["resnet18", "mobilenet_v2"]})
    with pytest.raises(ValueError, match=r"`space` cannot set 'model'.*Received: space="):
        cnnzoo.tune.search(color_data(24), models=("resnet18",), space={"model": "mobilenet_v2"},
                           directory=tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything started
    # The CLI's --space goes through the same check.
    with pytest.raises(ValueError, match="models="):
        resolve_space(parse_space(["model=resnet18"]), models=("resnet18",))


def first_values(tuner, n=3):
    return [tuner.oracle.create_trial(f"t{i}").hyperparameters.values for i in range(n)]


def test_tuner_kinds_and_seeded_sampling(tmp_path):
    hm = CnnZooHyperModel(3, (32, 32, 3), models=("mobilenet_v2", "resnet18"))
    hyperband = make_tuner("hyperband", hm, epochs=9, directory=tmp_path, project_name="h")
    assert isinstance(hyperband, kt.Hyperband) and hyperband.oracle.max_epochs == 9
    assert isinstance(make_tuner("bayesian", hm, max_trials=5, directory=tmp_path, project_name="b"),
                      kt.BayesianOptimization)
    runs = [first_values(make_tuner("random", hm, seed=seed, directory=tmp_path, project_name=f"r{i}"))
            for i, seed in enumerate((7, 7, 8))]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    # Every sampled value lies in the space, conditional ones only when active.
    for values in runs[0]:
        assert values["model"] in ("mobilenet_v2", "resnet18")
        assert ("alpha" in values) == (values["model"] == "mobilenet_v2")
        assert 1e-4 <= values["learning_rate"] <= 1e-2


def test_tensorboard_is_importable_and_declared():
    # keras-tuner imports tensorboard when a search starts without depending on it (ENVIRONMENT.md).
    assert importlib.util.find_spec("tensorboard") is not None
    config = configparser.ConfigParser()
    config.read(os.path.join(REPO, "setup.cfg"))
    requires = config["options"]["install_requires"].split()
    assert any(r.startswith("tensorboard") for r in requires)
    assert any(r.startswith("keras-tuner") for r in requires)
