"""Shared test set-up: quiet TensorFlow, deterministic seeds, tiny inputs."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --- Running on every core (pytest-xdist, `-n auto --dist loadgroup` in pyproject.toml) -----------------------
# Building Keras models is single-threaded Python, so a worker per core (at most four: each holds a TensorFlow)
# roughly halves the suite on the 2-core CI machine. Tests that share a costly module, package or session
# fixture (a trained model, an export) are kept on one worker, so no fixture is computed twice.
MAX_WORKERS = 4


def pytest_xdist_auto_num_workers(config):
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def pytest_collection_modifyitems(config, items):
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        owners = [d.baseid for defs in (info.name2fixturedefs.values() if info else ()) for d in defs
                  if d.scope in ("module", "package", "session") and d.baseid]
        if owners:
            item.add_marker(pytest.mark.xdist_group(min(owners, key=len)))
