"""Fixtures for the tuning tests (helpers in tunetools.py)."""
import os
import sys

import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(__file__))  # the tests import their helpers from tunetools.py


@pytest.fixture
def eager():
    """Run Keras steps eagerly: a trial of a few steps then skips the ~20 s graph trace of a zoo model.

    Only the bookkeeping tests (resume, distribution, groups) use it; the search-quality test runs traced.
    """
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)
