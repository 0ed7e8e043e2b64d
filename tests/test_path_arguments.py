"""Path arguments the OS would reject name themselves (issue 14, B.10): a file where a directory goes
(`checkpoint_dir`, `cache`; `out_dir` is in tests/export/test_staging.py), a directory where a file goes
(`weights`)."""
import numpy as np
import pytest
from PIL import Image

import cnnzoo


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("not a folder")
    return path


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(3):
            image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(image).save(tmp_path / "data" / name / f"{i}.png")
    return tmp_path / "data"


def test_checkpoint_dir_that_is_a_file(a_file, folder):
    data = cnnzoo.data.from_directory(folder, image_size=(32, 32), batch_size=4, validation_split=0.0)
    model = cnnzoo.create_model("mobilenet_v2_035", num_classes=2, input_shape=(32, 32, 3))
    for path in (a_file, a_file / "below"):
        with pytest.raises(ValueError, match="Received: checkpoint_dir="):
            cnnzoo.train.fit(model, data, epochs=1, checkpoint_dir=path, verbose=0)


def test_cache_that_is_a_file(a_file, folder):
    for path in (a_file, a_file / "below"):
        with pytest.raises(ValueError, match="Received: cache="):
            cnnzoo.data.from_directory(folder, image_size=(32, 32), cache=path)


def test_weights_that_is_a_directory(tmp_path):
    with pytest.raises(ValueError, match="not a directory.*Received: weights="):
        cnnzoo.create_model("mobilenet_v2_035", num_classes=2, input_shape=(32, 32, 3), weights=str(tmp_path))
