"""Fixtures for the classifier tests: a tiny model trained here (seconds), the shipped one."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from classifiers.registry import SHIPPED_ROOT, ModelRegistry
from classifiers.spacy_classifier import SpacyClassifier
from classifiers.training import TrainConfig
from classifiers.workflows import train_model

TINY = {
    "waste": [
        "my bin was not emptied this week", "the recycling lorry missed our street again",
        "can I order a new green bin", "fly tipping dumped in the alley behind the shops",
        "bulky waste collection for an old sofa please", "the bin men left rubbish all over the road",
        "our black bin is broken and needs replacing", "garden waste collection missed on tuesday",
        "litter everywhere around the bus stop bins overflowing", "when is my recycling collected",
        "rubbish bags dumped outside the flats", "please collect my brown bin it was missed",
    ],
    "highways": [
        "there is a deep pothole on the high street", "the street light outside my house is out",
        "pavement slabs are cracked and sticking up", "the drain in the road is blocked and flooding",
        "pothole damaged my car tyre on station road", "street lamp flickering all night",
        "road surface is breaking up near the junction", "gully blocked water across the road",
        "uneven pavement my mum tripped over it", "the road needs gritting it is icy",
        "another pothole opened up by the school", "lamp post knocked over by a lorry",
    ],
    "parking": [
        "I want to appeal my parking ticket", "how do I get a resident parking permit",
        "car parked on the double yellow lines every day", "abandoned car with flat tyres for weeks",
        "penalty charge notice was wrong I had a valid ticket", "visitor permit for my carer",
        "someone keeps blocking my driveway with their car", "the pay and display machine took my money",
        "untaxed vehicle left in the car park for a month", "parking fine appeal the signs were unclear",
        "cars parking on the pavement outside the school", "renew my parking permit please",
    ],
}


def write_tiny_csv(path: Path, rows: dict[str, list[str]] | None = None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "message", "team"])
        n = 0
        for label, texts in (rows or TINY).items():
            for text in texts:
                n += 1
                writer.writerow([n, text, label])
    return path


FAST = TrainConfig(architecture="tfidf1c", max_epochs=8, patience=8)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-department model trained from a CSV with its own column names; its directory."""
    base = tmp_path_factory.mktemp("tiny")
    data = write_tiny_csv(base / "export.csv")
    registry = ModelRegistry(base / "registry", shipped=base / "none")
    card = train_model(data, "message", "team", out=base / "model", registry=registry, config=FAST)
    assert card["labels"] == ["highways", "parking", "waste"]
    return base / "model"


@pytest.fixture(scope="session")
def shipped() -> SpacyClassifier:
    registry = ModelRegistry(Path("/nonexistent-registry"), shipped=SHIPPED_ROOT)
    return SpacyClassifier(registry.path_for())


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for ``frontdoor`` subprocesses: a throw-away var dir (and model registry)."""
    env = {**os.environ, "FRONTDOOR_VAR_DIR": str(tmp_path / "var"),
           "FRONTDOOR_KAFKA_BOOTSTRAP": "127.0.0.1:1", "FRONTDOOR_CONNECT_RETRIES": "1"}
    env.pop("FRONTDOOR_TAXONOMY", None)
    return env
