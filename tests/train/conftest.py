"""Fixtures for the training tests (helpers in traintools.py)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # the tests import their helpers from traintools.py

from traintools import digits_arrays  # noqa: E402, make_data, split


@pytest.fixture(scope="session")
def digits():
    return digits_arrays(32)


@pytest.fixture
def digits_data(digits):
    """All ten digits, 75 % train / 25 % val, 32 px."""
    x, y = digits
    train, val = split(x, y)
    return make_data(*train, validation=val, batch_size=64)
