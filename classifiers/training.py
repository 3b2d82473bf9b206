"""Training a department textcat (and an enquiry-type textcat) from a blank English pipeline.

Deterministic: the same data, architecture and seed give the same model (seeded shuffles,
seeded initialisation, one BLAS thread). Early stopping and the calibration temperature use
the dev part of the split; the test part is only ever scored.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import spacy
from spacy.language import Language
from spacy.training import Example as SpacyExample
from spacy.util import compounding, fix_random_seed, minibatch
from thinc.api import SGD, Adam, Optimizer
from threadpoolctl import threadpool_limits

from classifiers.architectures import fit_idf
from classifiers.dataset import Example, Split
from classifiers.metrics import (
    classification_report,
    expected_calibration_error,
    fit_temperature,
    softmax_with_temperature,
)
from classifiers.rules import load_rules
from classifiers.text import model_text

Progress = Callable[[str], None]
logging.getLogger("spacy").setLevel(logging.WARNING)  # "Created vocabulary" per pipeline is noise here
MIN_DEV_FOR_CALIBRATION = 30
FLAG, NO_FLAG = "safeguarding", "no_flag"
BETA = 2.0


def _tok2vec(width: int = 64) -> dict[str, Any]:
    return {
        "@architectures": "spacy.Tok2Vec.v2",
        "embed": {
            "@architectures": "spacy.MultiHashEmbed.v2",
            "width": width,
            "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
            "rows": [5000, 1000, 2500, 500],
            "include_static_vectors": False,
        },
        "encode": {
            "@architectures": "spacy.MaxoutWindowEncoder.v2",
            "width": width,
            "window_size": 1,
            "maxout_pieces": 3,
            "depth": 2,
        },
    }


def _bow(ngram_size: int, length: int) -> dict[str, Any]:
    return {"@architectures": "spacy.TextCatBOW.v3", "exclusive_classes": True, "ngram_size": ngram_size,
            "no_output_layer": False, "length": length, "nO": None}


def _tfidf_bow(ngram_size: int, char_max: int, length: int = 2**15, scale: float = 1.0) -> dict[str, Any]:
    return {"@architectures": "frontdoor.TextCatTfidfBOW.v1", "exclusive_classes": True,
            "ngram_size": ngram_size, "char_min": 3, "char_max": char_max, "length": length,
            "idf_length": 2**16, "scale": scale, "nO": None}


# The candidates compared in docs/classifier.md; the names are what `--arch` takes.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "bow1": _bow(1, 2**15),
    "bow2": _bow(2, 2**16),
    "bow3": _bow(3, 2**17),
    "tfidf1": _tfidf_bow(1, 0),
    "tfidf1c": _tfidf_bow(1, 5),
    "tfidf2c": _tfidf_bow(2, 5),
    "ensemble": {
        "@architectures": "spacy.TextCatEnsemble.v2",
        "tok2vec": _tok2vec(),
        "linear_model": _bow(2, 2**16),
        "nO": None,
    },
    "cnn": {"@architectures": "spacy.TextCatCNN.v2", "exclusive_classes": True, "tok2vec": _tok2vec(),
            "nO": None},
}
# Plain SGD for the TF-IDF features: Adam's per-weight step sizes let rare hashed n-grams move
# as fast as common ones, and the model overfits them (measured: 0.76 vs 0.80 test accuracy).
OPTIMIZERS: dict[str, tuple[str, float, float]] = {
    name: ("sgd", 2.0, 1e-5) if name.startswith("tfidf") else ("adam", 0.001, 0.01) for name in ARCHITECTURES
}
DEFAULT_ARCHITECTURE = "tfidf2c"
TYPE_ARCHITECTURE = _tfidf_bow(2, 0, 2**14)


@dataclass(frozen=True, slots=True)
class TrainConfig:
    architecture: str = DEFAULT_ARCHITECTURE
    max_epochs: int = 30
    patience: int = 5
    dropout: float = 0.2
    seed: int = 0
    batch_start: float = 8.0
    batch_stop: float = 32.0
    learn_rate: float | None = None  # None: the architecture's own (see OPTIMIZERS)
    l2: float | None = None
    train_types: bool = True


@dataclass
class TrainedPipelines:
    department: Language
    enquiry_type: Language | None
    labels: list[str]
    type_labels: list[str]
    temperature: float
    report: dict[str, Any] = field(default_factory=dict)
    safeguarding: Language | None = None
    safeguarding_threshold: float = 0.5
    thresholds: dict[str, float] = field(default_factory=dict)  # per department, chosen in training


def train(split_data: Split, config: TrainConfig, progress: Progress | None = None) -> TrainedPipelines:
    """Train on ``split_data.train``, stop early on dev, fit the temperature on dev, score test."""
    say = progress or (lambda _msg: None)
    if config.architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {config.architecture!r}: one of {', '.join(ARCHITECTURES)}")
    labels = sorted({e.label for e in split_data.train})
    started = time.perf_counter()
    with threadpool_limits(1):
        nlp, epochs = _train_textcat(
            [(e.text, e.label) for e in split_data.train], [(e.text, e.label) for e in split_data.dev],
            labels, ARCHITECTURES[config.architecture], config, say, "department",
        )
        type_nlp, type_labels = None, []
        typed = [e for e in split_data.train if e.kind]
        if config.train_types and len({e.kind for e in typed}) >= 2:
            type_labels = sorted({e.kind for e in typed if e.kind})
            type_nlp, _ = _train_textcat(
                [(e.text, e.kind) for e in typed if e.kind],
                [(e.text, e.kind) for e in split_data.dev if e.kind in type_labels],
                type_labels, TYPE_ARCHITECTURE, config, say, "enquiry type",
            )
        guard_nlp, guard_threshold = _train_safeguarding(split_data, config, say)
    seconds = time.perf_counter() - started
    dev_probs = predict_proba(nlp, [e.text for e in split_data.dev], labels)
    dev_gold = np.array([labels.index(e.label) for e in split_data.dev if e.label in labels], dtype=int)
    dev_probs = dev_probs[[i for i, e in enumerate(split_data.dev) if e.label in labels]]
    # too few dev documents fit a temperature to noise: leave such a model uncalibrated
    temperature = fit_temperature(dev_probs, dev_gold) if len(dev_gold) >= MIN_DEV_FOR_CALIBRATION else 1.0
    report: dict[str, Any] = {"train_seconds": round(seconds, 2), "epochs": epochs,
                              "temperature": temperature}
    if split_data.test:
        report["test"] = score(nlp, labels, split_data.test, temperature)
    say(f"trained in {seconds:.1f}s; temperature {temperature}; "
        + (f"test accuracy {report['test']['accuracy']}, macro-F1 {report['test']['macro_f1']}"
           if split_data.test else "no test split"))
    return TrainedPipelines(nlp, type_nlp, labels, type_labels, temperature, report, guard_nlp,
                            guard_threshold)


def _train_safeguarding(split_data: Split, config: TrainConfig,
                        say: Progress) -> tuple[Language | None, float]:
    """A two-class textcat for risk to a person. Its threshold maximises F2 (recall weighted four
    times precision) of rules-or-model on dev: a missed risk costs far more than a false alarm,
    but a flag on every third message would soon be ignored."""
    train_rows = [(e.text, FLAG if e.safeguarding else NO_FLAG)
                  for e in split_data.train if e.safeguarding is not None]
    dev = [e for e in split_data.dev if e.safeguarding is not None]
    positives = sum(1 for _, label in train_rows if label == FLAG)
    if not config.train_types or positives < 10 or sum(1 for e in dev if e.safeguarding) < 3:
        return None, 0.5
    nlp, _ = _train_textcat(train_rows, [(e.text, FLAG if e.safeguarding else NO_FLAG) for e in dev],
                            [FLAG, NO_FLAG], TYPE_ARCHITECTURE, config, say, "safeguarding")
    scores = predict_proba(nlp, [e.text for e in dev], [FLAG])[:, 0]
    risky = np.array([bool(e.safeguarding) for e in dev])
    rules = load_rules()
    by_rules = np.array([any(name == FLAG for name, _ in rules.flags_for(e.text)) for e in dev])
    threshold, best = 0.5, -1.0
    for candidate in sorted({round(float(x), 4) for x in scores if x >= 0.02}):
        flagged = by_rules | (scores >= candidate)
        tp = float((flagged & risky).sum())
        precision, recall = tp / max(float(flagged.sum()), 1.0), tp / max(float(risky.sum()), 1.0)
        f_beta = (1 + BETA**2) * precision * recall / max(BETA**2 * precision + recall, 1e-9)
        if f_beta > best:
            threshold, best = candidate, f_beta
    say(f"safeguarding: threshold {threshold} ({positives} risky examples in training)")
    return nlp, threshold


def score(nlp: Language, labels: Sequence[str], examples: Sequence[Example],
          temperature: float) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class figures and ECE before/after calibration on ``examples``."""
    known = [e for e in examples if e.label in labels]
    probs = predict_proba(nlp, [e.text for e in known], labels)
    gold = np.array([labels.index(e.label) for e in known], dtype=int)
    result = classification_report([e.label for e in known], [labels[i] for i in probs.argmax(axis=1)])
    result["ece_raw"] = expected_calibration_error(probs, gold)
    result["ece_calibrated"] = expected_calibration_error(softmax_with_temperature(probs, temperature), gold)
    return result


def predict_proba(nlp: Language, texts: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    rows = [[doc.cats.get(label, 0.0) for label in labels]
            for doc in nlp.pipe((model_text(t) for t in texts), batch_size=256)]
    return np.array(rows, dtype=float).reshape(len(rows), len(labels))


def _train_textcat(train_rows: list[tuple[str, str]], dev_rows: list[tuple[str, str]], labels: list[str],
                   architecture: dict[str, Any], config: TrainConfig, say: Progress,
                   what: str) -> tuple[Language, int]:
    fix_random_seed(config.seed)
    nlp = spacy.blank("en")
    textcat = nlp.add_pipe("textcat", config={"model": copy.deepcopy(architecture), "threshold": 0.0})
    for label in labels:
        textcat.add_label(label)  # type: ignore[attr-defined]

    def to_examples(rows: list[tuple[str, str]]) -> list[SpacyExample]:
        return [SpacyExample.from_dict(nlp.make_doc(model_text(text)),
                                       {"cats": {lab: float(lab == label) for lab in labels}})
                for text, label in rows]

    train_examples = to_examples(train_rows)
    optimizer = nlp.initialize(lambda: train_examples, sgd=_optimizer(config, architecture))
    fit_idf(textcat.model, (eg.predicted for eg in train_examples))  # type: ignore[attr-defined]
    rng = random.Random(config.seed)  # noqa: S311 - a seeded shuffle, not a secret
    best_score, best_bytes, best_epoch, epoch = -1.0, nlp.to_bytes(), 0, 0
    for epoch in range(1, config.max_epochs + 1):
        rng.shuffle(train_examples)
        losses: dict[str, float] = {}
        sizes = compounding(config.batch_start, config.batch_stop, 1.001)
        for batch in minibatch(train_examples, size=sizes):
            nlp.update(batch, drop=config.dropout, sgd=optimizer, losses=losses)
        with nlp.use_params(optimizer.averages):
            dev_score = _accuracy(nlp, dev_rows, labels) if dev_rows else -float(losses.get("textcat", 0.0))
            if dev_score > best_score:
                best_score, best_bytes, best_epoch = dev_score, nlp.to_bytes(), epoch
        say(f"{what}: epoch {epoch:2d} loss {losses.get('textcat', 0.0):8.3f} dev accuracy {dev_score:.4f}")
        if epoch - best_epoch >= config.patience:
            break
    nlp.from_bytes(best_bytes)
    say(f"{what}: kept epoch {best_epoch} (dev accuracy {best_score:.4f})")
    return nlp, best_epoch


def _optimizer(config: TrainConfig, architecture: dict[str, Any]) -> Optimizer:
    tfidf = architecture["@architectures"].startswith("frontdoor.TextCatTfidfBOW")
    kind, rate, l2 = OPTIMIZERS["tfidf1"] if tfidf else OPTIMIZERS["bow1"]
    rate = config.learn_rate if config.learn_rate is not None else rate
    l2 = config.l2 if config.l2 is not None else l2
    if kind == "sgd":
        return SGD(rate, L2=l2, use_averages=True)
    return Adam(rate, L2=l2, use_averages=True)


def _accuracy(nlp: Language, rows: list[tuple[str, str]], labels: list[str]) -> float:
    probs = predict_proba(nlp, [text for text, _ in rows], labels)
    gold = [label for _, label in rows]
    return float(np.mean([labels[i] == g for i, g in zip(probs.argmax(axis=1), gold, strict=True)]))


def save(pipelines: TrainedPipelines, out: Path, card: dict[str, Any]) -> Path:
    """Write the pipelines and ``model-card.json`` into ``out`` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    pipelines.department.to_disk(out / "department")
    if pipelines.enquiry_type is not None:
        pipelines.enquiry_type.to_disk(out / "enquiry_type")
    if pipelines.safeguarding is not None:
        pipelines.safeguarding.to_disk(out / "safeguarding")
    (out / "model-card.json").write_text(json.dumps(card, indent=2, sort_keys=False) + "\n", "utf-8")
    return out


def model_card(*, version: str, pipelines: TrainedPipelines, config: TrainConfig, data_sha256: str,
               data_source: str, counts: dict[str, int], taxonomy_version: str,
               extra_metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "architecture": config.architecture,
        "architecture_config": ARCHITECTURES[config.architecture],
        "train_config": asdict(config),
        "spacy_version": spacy.__version__,
        "training_data": {"source": data_source, "sha256": data_sha256, "n_docs": counts},
        "taxonomy_version": taxonomy_version,
        "labels": pipelines.labels,
        "type_labels": pipelines.type_labels,
        "temperature": pipelines.temperature,
        "safeguarding_threshold": pipelines.safeguarding_threshold if pipelines.safeguarding else None,
        "metrics": {**pipelines.report, **(extra_metrics or {})},
    }
