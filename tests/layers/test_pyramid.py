"""FeaturePyramid (FPN neck): shapes at odd and unknown sizes, the top-down sum, serialization, TFLite/ONNX export."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnzoo
from cnnzoo.layers import FeaturePyramid
from cnnzoo.layers.resize import crop_to, resize_bilinear_to, resize_nearest_to


def _fpn_model(channels=32, extra_levels=0):
    backbone = cnnzoo.create_model("mobilenet_v2_035", features_only=True, input_shape=(None, None, 3))
    outputs = FeaturePyramid(channels=channels, extra_levels=extra_levels, name="fpn")(backbone.outputs)
    return backbone, keras.Model(backbone.inputs, outputs)


@pytest.mark.parametrize("size", [(64, 96), (65, 97), (33, 47)])
def test_levels_keep_each_lateral_size_at_odd_and_unknown_sizes(size):
    backbone, model = _fpn_model(extra_levels=2)
    x = np.random.default_rng(0).uniform(0, 255, (1, *size, 3)).astype("float32")
    features = backbone(x)
    levels = model(x)
    assert len(levels) == 6
    for c, p in zip(features, levels[:4]):
        assert p.shape == c.shape[:3] + (32,)
    h, w = levels[3].shape[1:3]
    assert levels[4].shape[1:3] == ((h + 1) // 2, (w + 1) // 2)
    assert levels[5].shape[1:3] == ((h + 3) // 4, (w + 3) // 4)


def test_top_down_path_is_lateral_plus_nearest_upsampling():
    fpn = FeaturePyramid(channels=4)
    c = [tf.random.normal((1, 8, 8, 3), seed=1), tf.random.normal((1, 4, 4, 5), seed=2)]
    out = fpn(c)
    top = fpn.laterals[1](c[1])
    merged = fpn.laterals[0](c[0]) + keras.layers.UpSampling2D(2)(top)   # exact halving: UpSampling2D's
    np.testing.assert_allclose(out[0], fpn.smooths[0](merged), atol=1e-5)
    np.testing.assert_allclose(out[1], fpn.smooths[1](top), atol=1e-5)
    # odd sizes: the doubled coarse map loses its last row (crop), a short one repeats its edge (pad)
    x = tf.reshape(tf.range(9.0), (1, 3, 3, 1))
    assert resize_nearest_to(x, tf.zeros((1, 5, 6, 1)))[0, :, :, 0].numpy().tolist()[-1] == [6, 6, 7, 7, 8, 8]
    assert resize_nearest_to(x, tf.zeros((1, 7, 7, 1))).shape == (1, 7, 7, 1)


@pytest.mark.parametrize("source,target", [((4, 6), (16, 24)), ((5, 7), (17, 26)), ((9, 9), (4, 5))])
def test_bilinear_resize_equals_tensorflow(source, target):
    x = tf.random.normal((2, *source, 3), seed=3)
    got = resize_bilinear_to(x, tf.zeros((1, *target, 1)))
    np.testing.assert_allclose(got, tf.image.resize(x, target, method="bilinear"), atol=1e-5)


def test_crop_lines_a_stride_s_upsampled_map_up_with_the_input():
    # a 65-px input has 17 stride-4 cells (same padding) = 68 px upsampled: rows 0..64 are the input's
    x = tf.reshape(tf.range(68.0 * 3), (1, 68, 3, 1))
    got = crop_to(x, tf.zeros((1, 65, 2, 1)))
    np.testing.assert_array_equal(got, x[:, :65, :2])
    # a shorter map (valid-padding backbones) repeats its last row and column
    short = crop_to(tf.reshape(tf.range(4.0), (1, 2, 2, 1)), tf.zeros((1, 3, 3, 1)))[0, :, :, 0].numpy()
    assert short.tolist() == [[0, 1, 1], [2, 3, 3], [2, 3, 3]]


def test_round_trip_and_tflite_onnx_parity(tmp_path):
    _, model = _fpn_model()
    x = np.random.default_rng(1).uniform(0, 255, (1, 65, 97, 3)).astype("float32")
    expected = [np.asarray(p) for p in model(x)]
    path = tmp_path / "fpn.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    for a, b in zip(restored(x), expected):
        np.testing.assert_array_equal(a, b)

    from ai_edge_litert.interpreter import Interpreter

    from cnnzoo.export.saved_model import save_functions

    def levels(images):
        return {f"p{i}": p for i, p in enumerate(model(images, training=False))}

    save_functions(tmp_path / "sm", model, {"serve": (levels, tf.TensorSpec((1, 65, 97, 3), tf.float32))})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"), signature_keys=["serve"])
    runner = Interpreter(model_content=converter.convert()).get_signature_runner("serve")
    got = runner(images=x)
    for i, b in enumerate(expected):
        np.testing.assert_allclose(got[f"p{i}"], b, atol=1e-4, rtol=1e-4)

    fn = tf.function(lambda t: model(t, training=False))
    import onnxruntime as ort
    import tf2onnx

    proto, _ = tf2onnx.convert.from_function(fn, input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)],
                                             opset=17)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for a, b in zip(session.run(None, {session.get_inputs()[0].name: x}), expected):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="channels"):
        FeaturePyramid(channels=0)
    with pytest.raises(ValueError, match="extra_levels"):
        FeaturePyramid(extra_levels=-1)
    with pytest.raises(ValueError, match="list of 4D feature maps"):
        FeaturePyramid()(keras.Input((8, 8, 3)))
