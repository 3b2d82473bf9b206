"""`frontdoor models calibrate`: thresholds chosen again on writing the model never saw."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from classifiers.workflows import calibrate_model, evaluate_model
from tests.classifiers.conftest import TINY, write_tiny_csv

HELD_OUT = {
    "waste": ["bins not emptied on our road", "overflowing litter bin by the park gates",
              "someone dumped a mattress in the lane", "need a new recycling box", "car parked by the bins"],
    "highways": ["big hole in the road by the church", "street light out on the corner",
                 "broken kerb outside number 12", "water pouring across the road from a blocked drain",
                 "rubbish collection missed again"],
    "parking": ["appeal against a parking fine", "van parked across my drive all day",
                "permit for my visitors", "abandoned car left on the verge", "pothole at the car park"],
}


def copy_of(model: Path, tmp_path: Path) -> Path:
    out = tmp_path / "model"
    shutil.copytree(model, out)
    return out


def test_calibrated_thresholds_are_written_and_evaluate_applies_them(tiny_model: Path,
                                                                     tmp_path: Path) -> None:
    model = copy_of(tiny_model, tmp_path)
    # a council's history: what the model learnt from and new writing (15 rows at least count)
    history = {label: [*TINY[label], *HELD_OUT[label]] for label in TINY}
    data = write_tiny_csv(tmp_path / "history.csv", history)
    result = calibrate_model([data], "message", "team", target=0.75, model=model)
    assert result["written"] is True, result
    assert result["n"] == 51
    card = json.loads((model / "model-card.json").read_text("utf-8"))
    assert card["thresholds"] == result["thresholds"]
    assert card["thresholds_calibration"]["n"] == 51 and card["thresholds_calibration"]["target"] == 0.75
    # what evaluate (and so the router) routes is what calibration promised
    evaluated = evaluate_model(data, "message", "team", model=model)
    assert evaluated["routed_share"] == result["routed_share"]
    assert evaluated["routed_accuracy"] == result["routed_accuracy"] >= 0.75


def test_an_unreachable_target_leaves_the_card_and_says_what_is_possible(tiny_model: Path,
                                                                         tmp_path: Path) -> None:
    model = copy_of(tiny_model, tmp_path)
    before = (model / "model-card.json").read_bytes()
    rotated = {"waste": HELD_OUT["highways"], "highways": HELD_OUT["parking"], "parking": HELD_OUT["waste"]}
    data = write_tiny_csv(tmp_path / "mislabelled.csv", rotated)
    done = subprocess.run([sys.executable, "-m", "frontdoor", "models", "calibrate", "--model", str(model),
                           "--data", str(data), "--text-col", "message", "--label-col", "team"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no threshold makes what is routed 0.95 right" in done.stdout
    assert "its thresholds are unchanged" in done.stdout
    assert (model / "model-card.json").read_bytes() == before
