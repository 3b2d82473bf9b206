"""Registered models: the newest is current, an older one is one command away."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from classifiers.registry import SHIPPED_ROOT, ModelRegistry, load_classifier
from classifiers.training import TrainConfig
from classifiers.workflows import train_model
from schemas.errors import OperatorError

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


@pytest.mark.parametrize("typed", ["", " ", "../models/{v}", "./{v}", "{v}/", "models/{v}", ".", ".."])
def test_use_takes_only_a_plain_version_name(tiny_model: Path, tmp_path: Path, typed: str) -> None:
    registry = ModelRegistry(tmp_path / "models", shipped=tmp_path / "no-shipped")
    version = registry.register(tiny_model, activate=False)
    with pytest.raises(OperatorError, match="is not a model version"):
        registry.use(typed.format(v=version))
    assert not (registry.root / "current").exists()
    registry.use(version)
    assert registry.current_version() == version


def test_use_refuses_a_directory_without_a_whole_model(tiny_model: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models", shipped=tmp_path / "no-shipped")
    version = registry.register(tiny_model)
    broken = registry.root / "broken"
    broken.mkdir()
    (broken / "model-card.json").write_text(json.dumps({"version": "broken", "labels": ["waste"]}))
    with pytest.raises(OperatorError, match="not a whole model"):
        registry.use("broken")
    assert registry.current_version() == version


def test_a_card_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models", shipped=tmp_path / "no-shipped")
    (registry.root / "odd").mkdir(parents=True)
    (registry.root / "odd" / "model-card.json").write_bytes(b'{"version": "\xff"}')
    with pytest.raises(OperatorError, match="is not UTF-8"):
        registry.entries()
