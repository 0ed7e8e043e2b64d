"""create_segmenter: backbone features -> FPN -> semantic head -> per-pixel probabilities at the input size."""
import keras
import numpy as np
import pytest

import cnnzoo
from cnnzoo.train.losses import SegmentationLoss


@pytest.mark.parametrize("upsampling", ["bilinear", "transposed"])
def test_segmenter_takes_raw_pixels_of_any_size(upsampling):
    model = cnnzoo.create_segmenter("mobilenet_v2_035", num_classes=5, upsampling=upsampling)
    assert model.layers[1].name == "preprocessing"
    assert model.get_layer("neck_fpn").channels == 64      # small backbone: a small neck
    for size in ((64, 96), (65, 97), (33, 47)):
        x = np.random.default_rng(0).uniform(0, 255, (2, *size, 3)).astype("float32")
        y = np.asarray(model(x, training=False))
        assert y.shape == (2, *size, 5) and y.dtype == np.float32
        np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-5)
    groups = cnnzoo.models.finetune_groups(model)
    assert list(groups)[0] == "stem" and list(groups)[-2:] == ["neck", "head"]
    assert [layer.name for layer in groups["neck"]] == ["neck_fpn"]
    assert all(layer.name.startswith("head_") or layer.name == "probabilities" for layer in groups["head"])


def test_stride_two_head_merges_c1_to_c5_at_half_size():
    model = cnnzoo.create_segmenter("mobilenet_v2_035", num_classes=3, head_stride=2)
    assert model.get_layer("head_sum").output.shape[1:3] == (None, None)
    inner = keras.Model(model.inputs, model.get_layer("head_sum").output)
    assert inner(np.zeros((1, 65, 97, 3), "float32")).shape[1:3] == (33, 49)
    assert model(np.zeros((1, 65, 97, 3), "float32")).shape == (1, 65, 97, 3)


def test_segmenter_from_a_features_model_round_trips_and_loads_weights(tmp_path):
    features = cnnzoo.create_model("resnet18", features_only=True, input_shape=(None, None, 3))
    model = cnnzoo.create_segmenter(features, num_classes=3)
    assert model.get_layer("neck_fpn").channels == 128
    x = np.random.default_rng(1).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    path = tmp_path / "seg.keras"
    model.save(path)
    np.testing.assert_array_equal(keras.saving.load_model(path)(x), model(x))
    model.save_weights(tmp_path / "seg.weights.h5")
    again = cnnzoo.create_segmenter("resnet18", num_classes=3, weights=str(tmp_path / "seg.weights.h5"))
    np.testing.assert_allclose(again(x), model(x), atol=1e-6)


def test_finetune_head_stage_trains_neck_and_head_with_the_backbone_frozen():
    from cnnzoo.train.finetune import Stage, _selected_groups

    names = list(cnnzoo.models.finetune_groups(cnnzoo.create_segmenter("mobilenet_v2_035", num_classes=3)))
    assert _selected_groups(Stage("head"), names) == ["head", "neck"]


def test_segmenter_arguments_are_checked():
    with pytest.raises(ValueError, match="num_classes"):
        cnnzoo.create_segmenter("resnet18", num_classes=1)
    with pytest.raises(ValueError, match="neck"):
        cnnzoo.create_segmenter("resnet18", num_classes=3, neck="unet")
    with pytest.raises(ValueError, match="upsampling"):
        cnnzoo.create_segmenter("resnet18", num_classes=3, upsampling="cubic")
    with pytest.raises(TypeError, match="backbone"):
        cnnzoo.create_segmenter(3, num_classes=3)
    convnext_like = cnnzoo.create_model("resnet18", features_only=True, out_indices=(2, 3, 4),
                                        input_shape=(None, None, 3))
    with pytest.raises(ValueError, match="needs the backbone's levels C2, C3, C4, C5"):
        cnnzoo.create_segmenter(convnext_like, num_classes=3)
    with pytest.raises(ValueError, match="head_stride"):
        cnnzoo.create_segmenter("resnet18", num_classes=3, head_stride=8)
    with pytest.raises(ValueError, match=r"no level \[0\]"):    # ConvNeXt has no stride-2 level
        cnnzoo.create_segmenter("convnext_tiny", num_classes=3, head_stride=2)


def test_segmentation_loss_ignores_void_pixels_and_dice_rewards_overlap():
    probs = np.full((1, 2, 2, 3), 1 / 3, "float32")
    probs[0, 0, 0] = [0.98, 0.01, 0.01]
    masks = np.array([[[0, 255], [255, 255]]])
    ce = SegmentationLoss()(masks, probs)
    np.testing.assert_allclose(ce, -np.log(0.98), rtol=1e-5)       # only the one kept pixel counts
    assert float(SegmentationLoss(ignore_index=None)(np.zeros((1, 2, 2)), probs)) > float(ce)
    perfect = np.eye(3, dtype="float32")[np.array([[[0, 1], [2, 1]]])]
    assert float(SegmentationLoss("dice")(np.array([[[0, 1], [2, 1]]]), perfect)) < 1e-3
    assert float(SegmentationLoss("dice")(np.array([[[1, 2], [0, 0]]]), perfect)) > 0.5
    with pytest.raises(ValueError, match="kind"):
        SegmentationLoss("focal")
    restored = SegmentationLoss.from_config(SegmentationLoss("cross_entropy+dice", dice_weight=0.5).get_config())
    assert restored.kind == "cross_entropy+dice" and restored.dice_weight == 0.5
