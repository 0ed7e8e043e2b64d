"""LR range test: the suggestion rule, divergence stop, weights restored, plot."""
import numpy as np
import pytest

from cnnzoo.train import lr_find
from cnnzoo.train.lr_find import suggest

from traintools import digits_arrays, make_data, tiny_cnn


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = np.logspace(-7, 1, 81)
    x = np.log10(lrs)
    # Falls fastest at 1e-3 (tanh centre), bottoms out near 1e-1, then blows up.
    losses = 2.0 - np.tanh(1.5 * (x + 3)) + np.where(x > -1, 10 * (x + 1) ** 2, 0.0)
    assert suggest(lrs, losses) == pytest.approx(1e-3, rel=0.05)
    # The first 10 % of the sweep is skipped: a steep early drop (start-up noise) is not suggested.
    noisy = losses + np.where(np.arange(81) < 3, 3.0 - np.arange(81), 0.0)
    assert suggest(lrs, noisy) == pytest.approx(1e-3, rel=0.05)


def test_lr_find_sweeps_stops_on_divergence_and_restores_weights():
    x, y = digits_arrays(32)
    data = make_data(x[:640], y[:640], batch_size=32)
    model = tiny_cnn()
    before = [w.copy() for w in model.get_weights()]
    result = lr_find(model, data, min_lr=1e-5, max_lr=1e4, steps=60, optimizer="sgd")
    for old, new in zip(before, model.get_weights()):  # BN moving statistics included
        np.testing.assert_array_equal(old, new)
    assert result.diverged and len(result.losses) < 60
    n = len(result.losses)
    np.testing.assert_allclose(result.learning_rates, 1e-5 * 1e9 ** (np.arange(n) / 59), rtol=1e-6)
    assert 1e-5 <= result.suggestion < result.learning_rates[-1]
    assert result.suggestion <= result.min_loss_lr
    assert result.smoothed_losses.min() < result.smoothed_losses[0]  # the loss fell before diverging
    fig = result.plot()
    assert fig.axes[0].get_xscale() == "log"
    assert any(np.allclose(line.get_xdata(), result.suggestion) for line in fig.axes[0].lines)


def test_lr_find_rejects_bad_ranges():
    model = tiny_cnn()
    x, y = digits_arrays(32)
    data = make_data(x[:64], y[:64], batch_size=32)
    with pytest.raises(ValueError, match="Received: max_lr=1e-08"):
        lr_find(model, data, min_lr=1e-7, max_lr=1e-8)
    with pytest.raises(ValueError, match="Received: steps=2"):
        lr_find(model, data, steps=2)
    with pytest.raises(ValueError, match="Received: max_lr=inf"):   # swept to inf: NaN losses
        lr_find(model, data, max_lr=float("inf"))
    with pytest.raises(ValueError, match="Received: diverge=inf"):
        lr_find(model, data, diverge=float("inf"))
    with pytest.raises(TypeError, match="data"):
        lr_find(model, [1, 2, 3])
