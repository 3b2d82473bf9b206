"""FRONTDOOR_TAXONOMY reaches the classifier from wherever the settings read it, ``.env``
included: ``frontdoor/`` loads the taxonomy and passes it down; nothing in classifiers/
reads the environment (it used to, so ``.env`` changed the router's departments but not
the classifier's: one router with two taxonomies)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

OURS = ("waste", "parking", "housing")


def _council(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "ours.toml").write_text('version = "ours-1"\n' + "".join(
        f'[departments.{d}]\ndescription = "{d}"\n' for d in OURS), "utf-8")
    (tmp_path / ".env").write_text("FRONTDOOR_TAXONOMY=ours.toml\n", "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDOOR_")}
    return env


def test_classify_uses_the_taxonomy_named_in_dot_env(tmp_path: Path) -> None:
    env = _council(tmp_path)
    done = subprocess.run([sys.executable, "-m", "frontdoor", "classify", "The bin men skipped our street"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    prediction = json.loads(done.stdout)
    assert set(prediction["scores"]) == set(OURS)
    assert prediction["department"] in OURS


def test_the_router_loads_its_classifier_with_the_taxonomy_of_its_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from frontdoor import wiring
    from frontdoor.settings import load_settings

    env = _council(tmp_path)
    for name in [k for k in os.environ if k.startswith("FRONTDOOR_")]:
        monkeypatch.delenv(name)
    assert env  # the process environment names no taxonomy: only .env does
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    source = wiring.model_source(settings)
    classifier = source.load(source.current())
    assert tuple(classifier.taxonomy.ids) == OURS  # type: ignore[attr-defined]
