"""Drift: the statistics against their definitions, and the verdict on real shifted and unshifted digits."""
import json

import keras
import numpy as np
import pytest
from scipy.stats import ks_2samp

import cnnzoo
from cnnzoo.validate import drift
from validatetools import CLASS_NAMES, brightened


def test_psi_matches_the_formula():
    expected = 0.1 * np.log(0.6 / 0.5) - 0.1 * np.log(0.4 / 0.5)
    assert drift.psi([50, 50], [60, 40]) == pytest.approx(expected, rel=1e-12)
    assert drift.psi([1, 2, 3], [10, 20, 30]) == pytest.approx(0.0, abs=1e-12)
    # An empty bin is floored at 1e-4 instead of giving an infinite term.
    assert drift.psi([0, 10], [5, 5]) == pytest.approx((0.5 - 1e-4) * np.log(0.5 / 1e-4) + (0.5 - 1) * np.log(0.5))
    with pytest.raises(ValueError, match="Received: reference.shape"):
        drift.psi([1, 2], [1, 2, 3])


def test_pixel_ks_and_deciles_from_histograms_are_exact(rng):
    a = rng.normal(100, 30, size=(40, 16, 16, 3)).clip(0, 255).astype(np.uint8)
    b = rng.normal(110, 30, size=(30, 16, 16, 3)).clip(0, 255).astype(np.uint8)
    ha, hb = drift.channel_histograms(a), drift.channel_histograms(b)
    assert ha.shape == (3, 256) and ha.sum() == a.size
    for c in range(3):
        ours = drift.ks_from_histograms(ha[c], hb[c], n_reference=40, n_new=30)
        assert ours["statistic"] == pytest.approx(ks_2samp(a[..., c].ravel(), b[..., c].ravel()).statistic, abs=1e-12)
        assert 0.0 <= ours["p_value"] <= 1.0
        # Decile bins of the reference hold about a tenth of it each (integer ties make them uneven).
        edges = drift.histogram_deciles(ha[c])
        shares = drift.histogram_bin_counts(ha[c], edges) / ha[c].sum()
        assert len(shares) == 10 and np.all(np.abs(shares - 0.1) < 0.03)
        direct = drift.bin_counts(a[..., c].ravel(), edges)
        np.testing.assert_array_equal(direct, drift.histogram_bin_counts(ha[c], edges))


def test_brightness_shift_is_drift_and_heldout_split_is_not(runner, digits):
    """Acceptance: a brightness-shifted copy is flagged; the unshifted held-out split is not."""
    stats = cnnzoo.validate.reference_stats(runner, (digits["x_train"], digits["y_train"]))
    assert stats.path is None and stats.n_images == 1400 and len(stats.embedding_edges) == 512
    heldout = (digits["x_test"], digits["y_test"])
    shifted = (brightened(digits["x_test"]), digits["y_test"])

    calm_report = cnnzoo.validate(runner, heldout, reference=stats, checks=("drift",))
    calm = calm_report.drift
    moved_report = cnnzoo.validate(runner, shifted, reference=stats, checks=("drift",))
    moved = moved_report.drift

    assert calm["significant"] is False and calm["level"] == "none" and calm["reasons"] == []
    assert all(value < 0.1 for value in calm["psi"].values()), calm["psi"]
    assert calm["embedding"]["available"] and calm["embedding"]["dim"] == 512

    assert moved["significant"] is True and moved["level"] == "significant"
    for channel in "RGB":
        assert moved["psi"][channel] > 0.2
        assert moved["ks"][channel]["statistic"] > 0.3 and moved["ks"][channel]["p_value"] < 1e-6
        assert moved["channels"][channel]["new_mean"] == pytest.approx(
            moved["channels"][channel]["reference_mean"] + 40, abs=3)
    assert any(reason.startswith("PSI R") for reason in moved["reasons"])
    # The model's inner view moves too, more than for the unshifted split.
    assert moved["psi"]["embedding"] > 2 * calm["psi"]["embedding"]
    assert moved["psi"]["entropy"] > calm["psi"]["entropy"]
    assert not moved_report.passed and "drift.psi.R" in [c["name"] for c in moved_report.failures]
    assert calm_report.passed and len(calm_report.checks) == 6


def test_reference_from_data_and_ks_threshold(runner, digits):
    report = cnnzoo.validate(runner, (digits["x_test"][:200], digits["y_test"][:200]),
                             reference=(digits["x_train"][:600], digits["y_train"][:600]), checks=("drift",),
                             embeddings=False, thresholds={"max_ks": 0.001, "max_psi": None})
    assert report.drift["embedding"]["available"] is False
    assert [c["name"] for c in report.checks] == ["drift.ks.R", "drift.ks.G", "drift.ks.B"]
    assert not report.passed   # sampling noise alone exceeds a KS limit of 0.001
    assert report.drift["significant"] and report.drift["reasons"][0].startswith("KS R")


def test_reference_stats_round_trip(runner, digits, tmp_path):
    stats = cnnzoo.validate.reference_stats(runner, digits["x_train"][:300], path=tmp_path)
    assert stats.path == tmp_path / drift.STATS_FILE
    loaded = cnnzoo.validate.ReferenceStats.load(tmp_path)
    np.testing.assert_array_equal(loaded.histograms, stats.histograms)
    np.testing.assert_array_equal(loaded.class_counts, stats.class_counts)
    assert loaded.class_names == CLASS_NAMES and loaded.model["format"] == "keras"
    for a, b in zip(loaded.embedding_edges, stats.embedding_edges):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # Comparing the reference with itself finds nothing.
    same = drift.compare(loaded, drift.observe(digits["x_train"][:300], runner))
    assert all(v == pytest.approx(0.0, abs=1e-6) for v in same["psi"].values())

    (tmp_path / "other.json").write_text(json.dumps({"name": "not stats"}))
    with pytest.raises(ValueError, match="Not cnnzoo reference statistics"):
        cnnzoo.validate.ReferenceStats.load(tmp_path / "other.json")
    with pytest.raises(FileNotFoundError, match="Received: reference="):
        cnnzoo.validate.ReferenceStats.load(tmp_path / "missing.json")


def test_penultimate_features_of_a_nested_model(model, digits):
    """Input -> augmentation -> zoo model: the embeddings are the zoo model's avg_pool output."""
    inputs = keras.Input((32, 32, 3))
    augment = keras.Sequential([keras.layers.RandomFlip()], name="augment")
    outer = keras.Model(inputs, model(augment(inputs)))
    images = digits["x_test"][:8]
    runner = cnnzoo.export.load_runner(outer)
    embed, reason = drift.embedding_function(runner)
    assert reason is None
    expected = keras.Model(model.input, model.get_layer("avg_pool").output)(images.astype("float32"), training=False)
    np.testing.assert_allclose(embed(images), np.asarray(expected), rtol=1e-4, atol=1e-5)
