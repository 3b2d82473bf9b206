"""Registered models: the newest is current, an older one is one command away."""

from __future__ import annotations

import shutil
from pathlib import Path

from classifiers.registry import SHIPPED_ROOT, ModelRegistry, load_classifier
from classifiers.training import TrainConfig
from classifiers.workflows import train_model

from .conftest import TINY, write_tiny_csv


def test_register_use_and_roll_back(tiny_model: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models", shipped=SHIPPED_ROOT)
    shipped = registry.current_version()  # nothing registered yet: the shipped default
    first = registry.register(tiny_model)
    assert registry.current_version() == first
    assert load_classifier(model_dir=registry.root).version == first

    rows = {label: texts + [f"another {label} enquiry"] for label, texts in TINY.items()}
    data = write_tiny_csv(tmp_path / "more.csv", rows)
    card = train_model(data, "message", "team", out=None, registry=registry,
                       config=TrainConfig(max_epochs=3, patience=3))
    second = card["version"]
    assert second != first
    assert registry.current_version() == second
    assert [e.version for e in registry.entries() if e.current] == [second]

    assert registry.rollback() == first
    assert load_classifier(model_dir=registry.root).version == first
    assert registry.rollback() == shipped  # back to the package's default
    registry.use(second)
    assert load_classifier(second, registry.root).version == second


def test_a_registered_copy_survives_its_source(tiny_model: Path, tmp_path: Path) -> None:
    source = tmp_path / "exported"
    shutil.copytree(tiny_model, source)
    registry = ModelRegistry(tmp_path / "models", shipped=tmp_path / "no-shipped")
    version = registry.register(source)
    shutil.rmtree(source)
    assert load_classifier(version, registry.root).version == version
