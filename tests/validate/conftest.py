"""Validation fixtures: real digits (scikit-learn) at 32 px, a zoo ResNet18 trained on them for a few steps, and a
small model exported to SavedModel, TFLite and ONNX. Session scope: training is most of this folder's run time.
"""
import os
import sys

import keras
import pytest

import cnnzoo

sys.path.insert(0, os.path.dirname(__file__))  # the tests import their helpers from validatetools.py

from cnnzoo.train import recalibrate_bn  # noqa: E402
from validatetools import (CLASS_NAMES, SIZE, digits_rgb,   # noqa: E402
                           small_model)


@pytest.fixture(scope="session")
def digits():
    x, y = digits_rgb()
    return {"x_train": x[:1400], "y_train": y[:1400], "x_test": x[1400:], "y_test": y[1400:]}


@pytest.fixture(scope="session")
def model(digits):
    """Zoo ResNet18, 10 steps of Adam on 640 digits: ~85-90 % held-out accuracy."""
    keras.utils.set_random_seed(0)
    net = cnnzoo.create_model("resnet18", num_classes=10, input_shape=(SIZE, SIZE, 3))
    net.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    net.fit(digits["x_train"][:640], digits["y_train"][:640], batch_size=64, epochs=1, verbose=0)
    recalibrate_bn(net, digits["x_train"][:512])
    return net


@pytest.fixture(scope="session")
def runner(model):
    return cnnzoo.export.load_runner(model, class_names=CLASS_NAMES)


@pytest.fixture(scope="session")
def exported(digits, tmp_path_factory):
    """The small model, trained 4 epochs (~95 % held-out), exported to SavedModel, TFLite fp32 and ONNX."""
    keras.utils.set_random_seed(2)
    net = small_model()
    net.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    net.fit(digits["x_train"], digits["y_train"], batch_size=64, epochs=4, verbose=0)
    out_dir = tmp_path_factory.mktemp("validate_export") / "digits"
    report = cnnzoo.export(net, out_dir, formats=("saved_model", "tflite_fp32", "onnx"), class_names=CLASS_NAMES,
                           parity=False, latency_repeats=1)
    return net, report
