"""Parameter counts and MACs against keras.applications, torchvision and the published figures."""
import math

import keras
import pytest

import cnnzoo

KA = keras.applications


def _ka_count(model):
    # keras.applications' EfficientNet carries a Normalization layer (mean, variance, count: 7 values) that
    # cnnzoo replaces by its weightless Preprocessing layer.
    norm = sum(math.prod(w.shape) for layer in model.layers if isinstance(layer, keras.layers.Normalization)
               for w in layer.weights)
    return model.count_params() - norm


SHARED = [
    ("vgg16", KA.VGG16, {}), ("vgg19", KA.VGG19, {}),
    ("resnet50", KA.ResNet50, {}), ("resnet101", KA.ResNet101, {}), ("resnet152", KA.ResNet152, {}),
    *[(f"mobilenet_v2_{int(a * 100):03d}", KA.MobileNetV2, {"alpha": a}) for a in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)],
    *[(f"efficientnet_b{i}", getattr(KA, f"EfficientNetB{i}"), {}) for i in range(8)],
]


@pytest.mark.parametrize("name,ka_builder,kwargs", SHARED, ids=[s[0] for s in SHARED])
def test_param_count_equals_keras_applications(name, ka_builder, kwargs):
    size = cnnzoo.registry.get_entry(name).default_input_size
    ka_model = ka_builder(weights=None, input_shape=(size, size, 3), classes=1000, **kwargs)
    ours = cnnzoo.create_model(name, input_shape=(size, size, 3), num_classes=1000, preprocessing=None)
    assert ours.count_params() == _ka_count(ka_model)
    keras.backend.clear_session()


@pytest.mark.parametrize("name,expected", [("resnet18", 11_689_512), ("resnet34", 21_797_672)])
def test_torchvision_trainable_params(name, expected):
    model = cnnzoo.create_model(name, preprocessing=None)
    assert cnnzoo.profile(model).trainable_params == expected
    assert cnnzoo.model_info(name).params == model.count_params()


@pytest.mark.parametrize("name,published_gmacs", [
    ("resnet50_v1_5", 4.09), ("resnet18", 1.81), ("vgg16", 15.47), ("mobilenet_v2", 0.30), ("efficientnet_b0", 0.39),
])
def test_macs_match_published_figures(name, published_gmacs):
    macs = cnnzoo.model_info(name).macs
    assert abs(macs / 1e9 - published_gmacs) / published_gmacs < 0.02


def _independent_macs(model):
    """A count written from the formulas, separate from cnnzoo.profile, over a keras.applications model."""
    total = 0
    for layer in model.layers:
        cls = type(layer).__name__
        if cls not in ("Conv2D", "DepthwiseConv2D", "Dense"):
            continue
        out = layer.output.shape
        if cls == "Dense":
            total += layer.input.shape[-1] * layer.units
        elif cls == "DepthwiseConv2D":
            total += out[1] * out[2] * out[3] * layer.kernel_size[0] * layer.kernel_size[1]
        else:
            total += out[1] * out[2] * out[3] * layer.kernel_size[0] * layer.kernel_size[1] * layer.input.shape[-1]
    return total


@pytest.mark.parametrize("name,ka_builder", [("resnet50", KA.ResNet50), ("vgg16", KA.VGG16),
                                             ("mobilenet_v2", KA.MobileNetV2), ("efficientnet_b0", KA.EfficientNetB0)])
def test_macs_exact_against_layer_by_layer_count(name, ka_builder):
    ka_model = ka_builder(weights=None)
    assert cnnzoo.model_info(name).macs == _independent_macs(ka_model)
    assert cnnzoo.profile(ka_model).macs == _independent_macs(ka_model)


def test_profile_counts_trainable_and_frozen():
    model = cnnzoo.create_model("resnet18", num_classes=10, input_shape=(64, 64, 3))
    for layer in model.layers[:10]:
        layer.trainable = False
    prof = cnnzoo.profile(model)
    assert prof.params == model.count_params()
    assert prof.trainable_params == sum(math.prod(w.shape) for w in model.trainable_weights)
    assert prof.trainable_params < prof.params
    assert prof.macs == sum(prof.per_layer.values()) > 0
    with pytest.raises(ValueError, match="known input size"):
        cnnzoo.profile(cnnzoo.create_model("resnet18", include_top=False, input_shape=(None, None, 3)))
