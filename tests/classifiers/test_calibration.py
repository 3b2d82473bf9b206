"""Calibrated confidence: probabilities that sum to one and mean what they say."""

from __future__ import annotations

import numpy as np

from classifiers.metrics import expected_calibration_error, fit_temperature, softmax_with_temperature


def test_temperature_fixes_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    n, k = 2000, 4
    gold = rng.integers(0, k, n)
    # right 70% of the time but always ~97% sure
    predicted = np.where(rng.random(n) < 0.7, gold, (gold + 1) % k)
    probs = np.full((n, k), 0.01)
    probs[np.arange(n), predicted] = 0.97
    temperature = fit_temperature(probs, gold)
    calibrated = softmax_with_temperature(probs, temperature)
    assert temperature > 1.0
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    assert (calibrated.argmax(axis=1) == probs.argmax(axis=1)).all()  # ranking unchanged
    assert expected_calibration_error(calibrated, gold) < 0.05 < expected_calibration_error(probs, gold)


def test_temperature_without_data_is_neutral() -> None:
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int)) == 1.0
