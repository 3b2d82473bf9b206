"""Versioned models: a registry root holds one directory per version (each with its
``model-card.json``), a ``current`` pointer and a ``history`` of what was current, so a bad
model is one ``rollback`` away. The model shipped with the package is the fallback when a
deployment has not registered any of its own.

The router needs only :func:`load_classifier`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifiers.base import Classifier
from classifiers.taxonomy import Taxonomy
from schemas.errors import OperatorError

SHIPPED_ROOT = Path(__file__).with_name("models")
CARD = "model-card.json"
DEPARTMENT = "department"
CURRENT = "current"
HISTORY = "history"


@dataclass(frozen=True, slots=True)
class ModelEntry:
    version: str
    path: Path
    shipped: bool
    current: bool
    card: dict[str, Any]


class ModelRegistry:
    """Model directories under ``root``; the package's shipped models are read-only extras."""

    def __init__(self, root: Path, shipped: Path = SHIPPED_ROOT) -> None:
        self.root = root
        self.shipped = shipped

    def entries(self) -> list[ModelEntry]:
        try:
            current: str | None = self.current_version()
        except OperatorError:
            current = None
        found: dict[str, ModelEntry] = {}
        for base, shipped in ((self.shipped, True), (self.root, False)):
            if not base.is_dir():
                continue
            for card_path in sorted(base.glob(f"*/{CARD}")):
                card = _read_card(card_path)
                version = str(card.get("version", card_path.parent.name))
                found[version] = ModelEntry(version, card_path.parent, shipped, version == current, card)
        return sorted(found.values(), key=lambda e: (str(e.card.get("created", "")), e.version))

    def current_version(self) -> str:
        for base in (self.root, self.shipped):
            pointer = base / CURRENT
            if pointer.is_file():
                value = pointer.read_text("utf-8").strip()
                if value:
                    return value
        raise OperatorError(f"no model registered in {self.root} and none shipped in {self.shipped}: "
                            "run 'frontdoor train'")

    def path_for(self, version: str | None = None) -> Path:
        wanted = _plain_version(version) if version is not None else self.current_version()
        for base in (self.root, self.shipped):
            candidate = base / wanted
            if (candidate / CARD).is_file():
                return candidate
        known = ", ".join(e.version for e in self.entries()) or "none"
        raise OperatorError(f"no model version {wanted!r} (known: {known}); see 'frontdoor models list'")

    def register(self, model_dir: Path, activate: bool = True) -> str:
        """Add a trained model directory (copied in unless it already lives here); make it current."""
        version = str(_read_card(model_dir / CARD)["version"])
        target = self.root / version
        if model_dir.resolve() != target.resolve():
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(model_dir, target)
        if activate:
            self.use(version)
        return version

    def use(self, version: str) -> None:
        """Make ``version`` current: a name the registry knows whose directory holds a whole model."""
        check_model_dir(self.path_for(version))
        self.root.mkdir(parents=True, exist_ok=True)
        history = self._history()
        if not history or history[-1] != version:
            history.append(version)
        _write_atomic(self.root / HISTORY, "\n".join(history) + "\n")
        _write_atomic(self.root / CURRENT, version + "\n")

    def rollback(self) -> str:
        """Make the previously current version current again; the shipped default when none is left."""
        history = self._history()
        if len(history) < 2:
            if (self.root / CURRENT).exists():
                (self.root / CURRENT).unlink()
                _write_atomic(self.root / HISTORY, "")
                return self.current_version()
            raise OperatorError("nothing to roll back to: no earlier model was current")
        history.pop()
        _write_atomic(self.root / HISTORY, "\n".join(history) + "\n")
        _write_atomic(self.root / CURRENT, history[-1] + "\n")
        return history[-1]

    def _history(self) -> list[str]:
        path = self.root / HISTORY
        if not path.exists():
            return []
        return [line.strip() for line in path.read_text("utf-8").splitlines() if line.strip()]


def load_classifier(version: str | None = None, model_dir: Path | None = None, *, explain: bool = True,
                    taxonomy: Taxonomy | None = None, encoder: bool = True) -> Classifier:
    """The classifier the router uses.

    ``model_dir`` is either one model's directory (it holds ``model-card.json``) or a registry
    root (``frontdoor/`` passes ``<var_dir>/models``); unset, only the models shipped with the
    package. ``version`` None means that registry's current model, or the shipped default when
    none was registered. ``taxonomy`` is the deployment's (``settings.taxonomy``); unset, the
    shipped one. ``encoder`` False leaves a model's sentence encoder out (faster; the model's
    calibration without it). Nothing here reads settings or the environment: the caller passes them.
    """
    from classifiers.spacy_classifier import SpacyClassifier

    if model_dir is not None and (model_dir / CARD).is_file():
        return SpacyClassifier(model_dir, explain=explain, taxonomy=taxonomy, encoder=encoder)
    registry = ModelRegistry(model_dir if model_dir is not None else SHIPPED_ROOT)
    return SpacyClassifier(registry.path_for(version), explain=explain, taxonomy=taxonomy, encoder=encoder)


def check_model_path(path: Path) -> Path:
    """A ``--model`` the operator typed: a model directory or a registry root, never a typo that
    would silently fall back to the shipped model."""
    if not ((path / CARD).is_file() or (path / CURRENT).is_file() or any(path.glob(f"*/{CARD}"))):
        raise OperatorError(f"{path} is neither a model (no {CARD}) nor a model registry: "
                            "give the directory 'frontdoor train --out' wrote")
    return path


def check_model_dir(path: Path) -> dict[str, Any]:
    """The model card of ``path``, once it is known to hold a loadable model's parts: a
    readable card with a version and labels, and the department pipeline."""
    card = _read_card(path / CARD)
    labels = card.get("labels")
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise OperatorError(f"model card {path / CARD} has no list of labels: retrain with 'frontdoor train'")
    if not (path / DEPARTMENT / "config.cfg").is_file():
        raise OperatorError(f"{path} is not a whole model (no {DEPARTMENT}/ pipeline): retrain with "
                            "'frontdoor train' or pick another version from 'frontdoor models list'")
    return card


def _plain_version(version: str) -> str:
    """A version as ``models list`` shows it: a plain name, never a path."""
    if not version.strip() or version in {".", ".."} or any(sep in version for sep in ("/", "\\", "\0")):
        raise OperatorError(f"{version!r} is not a model version: give a name from 'frontdoor models list' "
                            "(not a path)")
    return version


def write_card(path: Path, card: dict[str, Any]) -> None:
    """Replace a model card in one step (a router reading it never sees half a file)."""
    _write_atomic(path, json.dumps(card, indent=2, sort_keys=False) + "\n")


def _read_card(path: Path) -> dict[str, Any]:
    try:
        card = json.loads(path.read_text("utf-8"))
    except UnicodeDecodeError:
        raise OperatorError(f"model card {path} is not UTF-8: retrain that model or remove its directory") \
            from None
    except (OSError, ValueError) as exc:
        raise OperatorError(f"cannot read model card {path}: {exc}") from None
    if not isinstance(card, dict) or "version" not in card:
        raise OperatorError(f"model card {path} has no version")
    return card


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)
