"""FRONTDOOR_CLASSIFIER_ENCODER=false: a council that needs speed more than the sentence
encoder's help runs the shipped model without it, with the thresholds the model has for
itself without it (fitted on the same held-out writing), not the blend's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from classifiers.encoder import DEFAULT_ENCODER
from classifiers.registry import SHIPPED_ROOT

TEXT = "The bin men skipped our street again"


def _shipped_card() -> dict[str, object]:
    version = (SHIPPED_ROOT / "current").read_text("utf-8").strip()
    card: dict[str, object] = json.loads((SHIPPED_ROOT / version / "model-card.json").read_text("utf-8"))
    return card


@pytest.mark.parametrize("setting", ["true", "false"])
def test_the_router_loads_the_model_with_or_without_its_encoder(
        setting: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from frontdoor import wiring
    from frontdoor.settings import load_settings

    for name in [k for k in os.environ if k.startswith("FRONTDOOR_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FRONTDOOR_CLASSIFIER_ENCODER", setting)
    source = wiring.model_source(load_settings())
    classifier = source.load(source.current())
    card = _shipped_card()
    fast = card["without_encoder"]
    assert isinstance(fast, dict)
    if setting == "true":
        assert classifier.encoder_name == DEFAULT_ENCODER  # type: ignore[attr-defined]
        assert classifier.card_thresholds == card["thresholds"]  # type: ignore[attr-defined]
    else:
        assert classifier.encoder_name is None  # type: ignore[attr-defined]
        assert classifier.card_thresholds == fast["thresholds"]  # type: ignore[attr-defined]
        assert classifier.temperature == fast["temperature"]  # type: ignore[attr-defined]


def test_classify_without_the_encoder_applies_the_threshold_it_has_without_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDOOR_")}
    answers = {}
    for setting in ("true", "false"):
        done = subprocess.run([sys.executable, "-m", "frontdoor", "classify", TEXT], cwd=tmp_path,
                              env={**env, "FRONTDOOR_CLASSIFIER_ENCODER": setting},
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        answers[setting] = json.loads(done.stdout)
    card = _shipped_card()
    fast = card["without_encoder"]
    assert isinstance(fast, dict) and isinstance(card["thresholds"], dict)
    assert answers["true"]["department"] == answers["false"]["department"] == "waste"
    assert answers["true"]["threshold"] == max(0.5, card["thresholds"]["waste"])
    assert answers["false"]["threshold"] == max(0.5, fast["thresholds"]["waste"])
    assert answers["true"]["confidence"] != answers["false"]["confidence"]  # not the same sum
