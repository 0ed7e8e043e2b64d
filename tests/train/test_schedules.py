"""Each schedule against its formula in the design notes, at chosen steps."""
import math

import keras
import numpy as np
import pytest

from cnnzoo.train import schedules


def values(schedule, steps):
    return np.array([float(schedule(step)) for step in steps])


def test_step_decay_matches_notes_example():
    # Notes: eta0=0.01, gamma=0.1, S=30 -> 0.01 for 0-29, 0.001 for 30-59, 0.0001 for 60-89.
    sched = schedules.step_decay(0.01, step_size=30, gamma=0.1)
    np.testing.assert_allclose(values(sched, [0, 29, 30, 59, 60, 89]),
                               [0.01, 0.01, 0.001, 0.001, 1e-4, 1e-4], rtol=1e-5)


def test_exponential_decay_formula():
    sched = schedules.exponential_decay(0.1, gamma=0.9, decay_steps=10)
    steps = [0, 5, 10, 37]
    np.testing.assert_allclose(values(sched, steps), [0.1 * 0.9 ** (t / 10) for t in steps], rtol=1e-5)


def test_cosine_formula_and_floor():
    lr0, lo, total = 1e-2, 1e-4, 100
    sched = schedules.cosine(lr0, decay_steps=total, min_lr=lo)
    steps = [0, 25, 50, 99, 100]
    expected = [lo + 0.5 * (lr0 - lo) * (1 + math.cos(math.pi * t / total)) for t in steps]
    np.testing.assert_allclose(values(sched, steps), expected, rtol=1e-5)
    assert float(sched(250)) == pytest.approx(lo, rel=1e-5)  # held after T


def test_cosine_restarts_cycles_grow_by_t_mult():
    lr0, t0 = 1.0, 10
    sched = schedules.cosine_restarts(lr0, first_decay_steps=t0, t_mult=2.0)

    def expected(t):  # cycle i has length t0 * 2**i and starts at t0 * (2**i - 1)
        i = 0
        while t >= t0 * (2 ** (i + 1) - 1):
            i += 1
        start, length = t0 * (2 ** i - 1), t0 * 2 ** i
        return 0.5 * lr0 * (1 + math.cos(math.pi * (t - start) / length))

    steps = [0, 5, 9, 10, 20, 29, 30, 45, 69, 70]
    np.testing.assert_allclose(values(sched, steps), [expected(t) for t in steps], atol=1e-4)
    assert float(sched(10)) == pytest.approx(lr0, rel=1e-4)   # restart
    assert float(sched(30)) == pytest.approx(lr0, rel=1e-4)   # second cycle was 20 steps long


def test_one_cycle_phases():
    sched = schedules.one_cycle(1.0, total_steps=100, warmup_fraction=0.3, min_lr=0.1)
    # Phase 1: eta_min + t/(pT) (eta_max - eta_min); phase 2: eta_max - (t-pT)/((1-p)T) (eta_max - eta_min).
    steps = [0, 15, 30, 65, 100, 150]
    expected = [0.1, 0.1 + 0.5 * 0.9, 1.0, 1.0 - 0.5 * 0.9, 0.1, 0.1]
    np.testing.assert_allclose(values(sched, steps), expected, rtol=1e-5)
    cos = schedules.one_cycle(1.0, total_steps=100, warmup_fraction=0.3, min_lr=0.1, anneal="cos")
    assert float(cos(65)) == pytest.approx(0.1 + 0.5 * 0.9 * (1 + math.cos(math.pi * 0.5)), rel=1e-5)


def test_warmup_wrapper_ramps_then_follows_schedule():
    base = schedules.cosine(1.0, decay_steps=90)
    sched = schedules.warmup(base, warmup_steps=10, start_lr=0.0)
    np.testing.assert_allclose(values(sched, [0, 5, 10, 55, 100]),
                               [0.0, 0.5, float(base(0)), float(base(45)), float(base(90))], rtol=1e-5, atol=1e-7)
    const = schedules.warmup(0.2, warmup_steps=4)
    np.testing.assert_allclose(values(const, [0, 2, 4, 9]), [0.0, 0.1, 0.2, 0.2], rtol=1e-5)


def test_schedules_serialize_round_trip():
    for sched in (schedules.one_cycle(0.5, total_steps=50),
                  schedules.warmup(schedules.cosine(0.3, decay_steps=40), warmup_steps=5)):
        clone = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(sched))
        np.testing.assert_allclose(values(clone, [0, 3, 20, 44]), values(sched, [0, 3, 20, 44]), rtol=1e-6)


def test_reduce_on_plateau_formula():
    """lr <- gamma * lr after P epochs whose val_loss did not improve on the best by more than delta."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss="mse")
    callback = schedules.reduce_on_plateau(factor=0.5, patience=2, min_delta=0.01)
    callback.set_model(model)
    callback.on_train_begin()
    losses = [1.0, 0.9, 0.895, 0.899, 0.7, 0.7, 0.7, 0.7]
    rates = []
    for epoch, loss in enumerate(losses):
        callback.on_epoch_end(epoch, {"val_loss": loss})
        rates.append(float(model.optimizer.learning_rate))
    # 0.895 is not an improvement (< delta), epoch 3 is the 2nd epoch without one -> halve; 0.7 improves;
    # epochs 5 and 6 do not -> halve again at epoch 6.
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_schedule_arguments_are_checked():
    with pytest.raises(ValueError, match="step_size"):
        schedules.step_decay(0.1, step_size=0)
    with pytest.raises(ValueError, match="Received: schedule='warp'"):
        schedules.get("warp", learning_rate=0.1, total_steps=10, steps_per_epoch=2)
    with pytest.raises(ValueError, match="warmup_fraction"):
        schedules.one_cycle(0.1, total_steps=10, warmup_fraction=1.5)
    with pytest.raises(ValueError, match="learning_rate"):
        schedules.cosine(-1.0, decay_steps=10)


@pytest.mark.parametrize("make, name", [
    (lambda: schedules.cosine(math.inf, decay_steps=10), "learning_rate"),
    (lambda: schedules.step_decay(math.inf, step_size=3), "learning_rate"),
    (lambda: schedules.exponential_decay(math.nan, gamma=0.9), "learning_rate"),
    (lambda: schedules.one_cycle(math.inf, total_steps=10), "max_lr"),
    (lambda: schedules.cosine_restarts(1e-3, first_decay_steps=5, t_mult=math.inf), "t_mult"),
    (lambda: schedules.warmup(0.1, warmup_steps=5, start_lr=math.inf), "start_lr"),
    (lambda: schedules.warmup(math.inf, warmup_steps=5), "schedule"),
    (lambda: schedules.reduce_on_plateau(min_lr=math.inf), "min_lr"),
    (lambda: schedules.get("constant", learning_rate=math.inf, total_steps=10, steps_per_epoch=2), "learning_rate"),
    (lambda: schedules.get("plateau", learning_rate=0.0, total_steps=10, steps_per_epoch=2), "learning_rate"),
    (lambda: schedules.get("cosine_restarts", learning_rate=0.1, total_steps=10, steps_per_epoch=2,
                           cycle_epochs=0), "cycle_epochs")])
def test_schedules_reject_non_finite_and_non_positive_rates(make, name):
    with pytest.raises(ValueError, match=f"Received: {name}="):
        make()
