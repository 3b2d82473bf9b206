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

from classifiers.architectures import feature_matrix, fit_idf, set_linear_weights
from classifiers.dataset import Example, Split
from classifiers.encoder import (
    DEFAULT_ENCODER,
    EncoderHead,
    Neighbours,
    SentenceEncoder,
    blended_probs,
    shared_encoder,
)
from classifiers.metrics import (
    best_threshold,
    choose_thresholds,
    classification_report,
    expected_calibration_error,
    fit_temperature,
    routed_report,
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
    # "fit": the TF-IDF architectures' linear layer fitted by logistic regression (two learners,
    # settings and blend chosen on dev, then refitted on train + dev); "sgd": spaCy's own loop
    solver: str = "fit"
    routed_accuracy: float = 0.95  # thresholds are chosen so that dev's routed share is this right
    refit: bool = True  # "fit": refit on train + dev once the settings are chosen
    # a sentence encoder blended with the TF-IDF model when it helps on dev (None: TF-IDF alone)
    encoder: str | None = DEFAULT_ENCODER
    encoder_cache: str | None = None  # a file for the encoder's vectors (not written into the card)
    # the encoder's part may include the nearest training messages' vote (classifiers.encoder.Neighbours)
    neighbours: bool = True


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
    encoder_head: EncoderHead | None = None  # blended with the department textcat (see classifiers.encoder)
    # the temperature and thresholds for classifying without the encoder (a model that has one,
    # run where speed matters more): fitted on the same dev part, on the TF-IDF model's own probabilities
    without_encoder: dict[str, Any] | None = None

    def department_probs(self, texts: Sequence[str]) -> np.ndarray:
        """Uncalibrated department probabilities (columns: ``labels``), the encoder blended in."""
        return department_probs(self.department, self.encoder_head, texts, self.labels)


def train(split_data: Split, config: TrainConfig, progress: Progress | None = None) -> TrainedPipelines:
    """Train on ``split_data.train``, stop early on dev, fit the temperature on dev, score test."""
    say = progress or (lambda _msg: None)
    if config.architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {config.architecture!r}: one of {', '.join(ARCHITECTURES)}")
    labels = sorted({e.label for e in split_data.train})
    head: EncoderHead | None = None
    started = time.perf_counter()
    train_rows = [(e.text, e.label) for e in split_data.train]
    dev_rows = [(e.text, e.label) for e in split_data.dev if e.label in labels]
    architecture = ARCHITECTURES[config.architecture]
    with threadpool_limits(1):
        if config.solver == "fit" and _is_tfidf(architecture):
            weights = np.array([e.weight for e in split_data.train] +
                               [e.weight for e in split_data.dev if e.label in labels], dtype=float)
            nlp, fitted, dev_probs = _fit_department(train_rows, dev_rows, labels, architecture, say, weights,
                                                     refit=config.refit)
            epochs = 0
            linear_dev_probs = dev_probs
            if config.encoder and dev_rows:
                head, dev_probs = _fit_encoder_head(train_rows, dev_rows, labels, dev_probs, weights, config,
                                                    fitted.get("class_weight"), say)
                fitted["encoder"] = head.card() if head is not None else None
        else:
            nlp, epochs = _train_textcat(train_rows, dev_rows, labels, architecture, config, say,
                                         "department")
            fitted, dev_probs = {}, predict_proba(nlp, [text for text, _ in dev_rows], labels)
            linear_dev_probs = dev_probs
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
    # dev_probs come from a model that never saw dev (for "fit", the one before the refit), so the
    # temperature and thresholds are set on writing the model had not learnt from
    dev_gold = np.array([labels.index(label) for _, label in dev_rows], dtype=int)
    # too few dev documents fit a temperature to noise: leave such a model uncalibrated
    enough = len(dev_gold) >= MIN_DEV_FOR_CALIBRATION
    temperature, thresholds, calibrated = _calibration(dev_probs, dev_gold, labels, config.routed_accuracy,
                                                       enough)
    report: dict[str, Any] = {"train_seconds": round(seconds, 2), "epochs": epochs,
                              "temperature": temperature, "fitted": fitted, "thresholds": thresholds}
    without_encoder = None
    if head is not None:
        fast_temperature, fast_thresholds, _ = _calibration(linear_dev_probs, dev_gold, labels,
                                                            config.routed_accuracy, enough)
        without_encoder = {"temperature": fast_temperature, "thresholds": fast_thresholds}
        say(f"without the encoder: temperature {fast_temperature}, thresholds for "
            f"{len(fast_thresholds)} departments (fitted on dev, for classifying where speed comes first)")
    if enough and not thresholds:
        best = best_threshold(calibrated, dev_gold)
        report["routed_accuracy_out_of_reach"] = {"target": config.routed_accuracy, "best": best}
        say(f"routed accuracy {config.routed_accuracy} is out of reach on dev (whole held-out sources): the "
            f"best threshold, {best['threshold']}, routes {best['routed_share']:.0%} of it at "
            f"{best['routed_accuracy']} accuracy; the taxonomy's thresholds are kept")

    if enough:
        report["dev"] = _dev_figures(dev_probs, dev_gold, labels, temperature, thresholds)
    if split_data.test:
        report["test"] = score(nlp, labels, split_data.test, temperature, head)
    say(f"trained in {seconds:.1f}s; temperature {temperature}; "
        + (f"test accuracy {report['test']['accuracy']}, macro-F1 {report['test']['macro_f1']}"
           if split_data.test else "no test split"))
    return TrainedPipelines(nlp, type_nlp, labels, type_labels, temperature, report, guard_nlp,
                            guard_threshold, thresholds, head, without_encoder)


def _calibration(dev_probs: np.ndarray, dev_gold: np.ndarray, labels: list[str], routed_accuracy: float,
                 enough: bool) -> tuple[float, dict[str, float], np.ndarray]:
    """The temperature fitted on dev, the thresholds that keep dev's routed share
    ``routed_accuracy`` right, and dev's calibrated probabilities (uncalibrated without ``enough``)."""
    temperature = fit_temperature(dev_probs, dev_gold) if enough else 1.0
    calibrated = softmax_with_temperature(dev_probs, temperature)
    thresholds = choose_thresholds(calibrated, dev_gold, labels, routed_accuracy) if enough else {}
    return temperature, thresholds, calibrated


def _dev_figures(dev_probs: np.ndarray, gold: np.ndarray, labels: list[str], temperature: float,
                 thresholds: dict[str, float]) -> dict[str, Any]:
    """How the model that had not seen dev did on it, routed as the thresholds would route."""
    probs = softmax_with_temperature(dev_probs, temperature)
    predicted = [labels[i] for i in probs.argmax(axis=1)]
    truth = [labels[i] for i in gold]
    report = classification_report(truth, predicted)
    routed = routed_report(truth, predicted, [float(x) for x in probs.max(axis=1)],
                           [thresholds.get(p, 0.0) for p in predicted])
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "n": report["n"],
            "routed_share": routed["routed_share"], "routed_accuracy": routed["routed_accuracy"]}


def _is_tfidf(architecture: dict[str, Any]) -> bool:
    return str(architecture["@architectures"]).startswith("frontdoor.TextCatTfidfBOW")


LINEAR_C = 10.0  # the baseline's C; C=3 and C=30 are tried on the feature set that wins at it
OTHER_C = (3.0, 30.0)
NB_C = 10.0
BLEND_STEPS = 11
BLEND_MARGIN = 0.005


@dataclass(frozen=True, slots=True)
class _Candidate:
    """One setting of the logistic regression and how it did on dev."""

    quality: float
    features: str
    c: float
    class_weight: str | None
    logits: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray


def _feature_sets(architecture: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The feature sets tried: the architecture's own and, when it has character n-grams, the
    same without them (word 1-2 grams, as the TF-IDF baseline reads): on long, edited prose
    (news, complaints) the character n-grams crowd the hashed layer and the words alone win."""
    sets = {"words+chars" if architecture.get("char_max", 0) else "words": architecture}
    if architecture.get("char_max", 0):
        sets["words"] = {**architecture, "char_max": 0}
    return sets


def _fit_department(train_rows: list[tuple[str, str]], dev_rows: list[tuple[str, str]], labels: list[str],
                    architecture: dict[str, Any], say: Progress,
                    weights: np.ndarray | None = None,
                    refit: bool = True) -> tuple[Language, dict[str, Any], np.ndarray]:
    """The department textcat's linear layer fitted, not trained by SGD, with its settings chosen
    on dev among candidates that include the TF-IDF + logistic regression baseline's (word
    1-2 grams, sublinear TF-IDF, C=10, no class weighting, no blend), so the choice is never
    worse than the baseline on dev: feature sets (``_feature_sets``), the logistic regression's
    C and class weighting (tried when classes are uneven), and a blend with a one-vs-rest
    logistic regression on naive-Bayes-scaled features (NB-LR, strong on short texts). All are
    linear in the same features, so the choice is one weight matrix in the same spaCy layer:
    classifying costs what it did. Then the choice is refitted on train + dev. ``weights``
    (train rows, then dev rows) make some examples count more: a council's own added to the
    shipped corpus. Returns the pipeline, the choices, and dev probabilities from before the
    refit (for calibration)."""
    if weights is None:
        weights = np.ones(len(train_rows) + len(dev_rows))
    w_train = weights[:len(train_rows)]
    y_train = np.array([labels.index(label) for _, label in train_rows], dtype=int)
    y_dev = np.array([labels.index(label) for _, label in dev_rows], dtype=int)
    sets = _feature_sets(architecture) if dev_rows else {"own": architecture}
    built: dict[str, tuple[Language, Any, list[Any], list[Any], Any, Any]] = {}
    for name, arch in sets.items():
        nlp, textcat = _blank_textcat(arch, labels)
        train_docs = [nlp.make_doc(model_text(text)) for text, _ in train_rows]
        dev_docs = [nlp.make_doc(model_text(text)) for text, _ in dev_rows]
        example = SpacyExample.from_dict(train_docs[0], {"cats": {lab: float(lab == train_rows[0][1])
                                                                   for lab in labels}})
        nlp.initialize(lambda example=example: [example])  # type: ignore[misc]
        fit_idf(textcat.model, train_docs)
        x_dev = feature_matrix(textcat.model, dev_docs) if dev_docs else None
        x_train = feature_matrix(textcat.model, train_docs)
        built[name] = (nlp, textcat.model, train_docs, dev_docs, x_train, x_dev)
    if not dev_rows:
        nlp, model, _, _, x_train, _ = built["own"]
        coef, intercept = _fit_logistic(x_train, y_train, len(labels), LINEAR_C, None, w_train)
        set_linear_weights(model, coef, intercept)
        return nlp, {"C": LINEAR_C, "class_weight": None, "blend": 1.0}, np.zeros((0, len(labels)))
    counts = np.bincount(y_train, minlength=len(labels))
    # class weighting is only worth a second fit when the classes are far from even
    uneven = counts.max() >= 2 * max(counts.min(), 1)
    weightings: tuple[str | None, ...] = (None, "balanced") if uneven else (None,)
    tried: list[_Candidate] = []

    def attempt(features: str, c: float, weighting: str | None) -> _Candidate:
        x_train, x_dev = built[features][4], built[features][5]
        coef, intercept = _fit_logistic(x_train, y_train, len(labels), c, weighting, w_train)
        logits = x_dev @ coef.T + intercept
        candidate = _Candidate(_dev_quality(logits, y_dev), features, c, weighting, logits, coef, intercept)
        say(f"department: {features}, logistic regression C={c:g} class_weight={weighting}: "
            f"dev {candidate.quality:.4f}")
        tried.append(candidate)
        return candidate

    nb_fits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def blended(lr: _Candidate) -> tuple[float, float]:
        """The best blend of ``lr`` with NB-LR on the same features: (dev quality, weight)."""
        if lr.features not in nb_fits:
            x_train, x_dev = built[lr.features][4], built[lr.features][5]
            nb_coef, nb_intercept = _fit_nb_logistic(x_train, y_train, len(labels), NB_C, w_train)
            nb_fits[lr.features] = (nb_coef, nb_intercept, x_dev @ nb_coef.T + nb_intercept)
        nb_logits = nb_fits[lr.features][2]
        weight, quality = 1.0, -1.0
        for w in np.linspace(0.0, 1.0, BLEND_STEPS):
            q = _dev_quality(w * lr.logits + (1 - w) * nb_logits, y_dev)
            if q > quality + 1e-9:
                weight, quality = float(w), q
        # a small dev part moves by a few thousandths from noise alone: leave the plain logistic
        # regression only for a clear gain (on SpamAssassin, NB-LR alone won dev by 0.003 and lost test)
        return (quality, weight) if quality - lr.quality >= BLEND_MARGIN else (lr.quality, 1.0)

    leaders = []
    for features in built:
        for weighting in weightings:
            attempt(features, LINEAR_C, weighting)
        lr = max((t for t in tried if t.features == features), key=lambda t: t.quality)
        leaders.append((blended(lr), lr))
    (blend_quality, blend), best = max(leaders, key=lambda pair: pair[0][0])
    for c in OTHER_C:
        other = attempt(best.features, c, best.class_weight)
        other_blend = blended(other)
        if other_blend[0] > blend_quality:
            (blend_quality, blend), best = other_blend, other
    nlp, model, train_docs, dev_docs, x_train, x_dev = built[best.features]
    nb_coef, nb_intercept, nb_logits = nb_fits[best.features]
    dev_logits = blend * best.logits + (1 - blend) * nb_logits
    baseline_like = next(t for t in tried if t.features == "words" or len(built) == 1)
    fitted: dict[str, Any] = {
        "features": best.features, "C": best.c, "class_weight": best.class_weight, "nb_C": NB_C,
        "blend": round(blend, 2), "dev_quality": round(blend_quality, 4),
        "baseline_dev_quality": round(baseline_like.quality, 4),
        "architecture_config": sets[best.features]}
    say(f"department: {best.features}, C={best.c:g}, class_weight={best.class_weight}, blend {blend:.1f} "
        f"logistic + {1 - blend:.1f} NB-LR: dev {blend_quality:.4f} (the baseline's settings: "
        f"{baseline_like.quality:.4f})" + ("; refitting on train + dev" if refit else ""))
    if not refit:
        coef = blend * best.coef + (1 - blend) * nb_coef
        intercept = blend * best.intercept + (1 - blend) * nb_intercept
        set_linear_weights(model, coef, intercept)
        return nlp, fitted, _softmax(dev_logits)
    all_docs = train_docs + dev_docs
    y_all = np.concatenate([y_train, y_dev])
    fit_idf(model, all_docs)
    x_all = feature_matrix(model, all_docs)
    coef, intercept = _fit_logistic(x_all, y_all, len(labels), best.c, best.class_weight, weights)
    if blend < 1.0:
        nb_coef, nb_intercept = _fit_nb_logistic(x_all, y_all, len(labels), NB_C, weights)
        coef, intercept = blend * coef + (1 - blend) * nb_coef, blend * intercept + (1 - blend) * nb_intercept
    set_linear_weights(model, coef, intercept)
    return nlp, fitted, _softmax(dev_logits)


def _dev_quality(logits: np.ndarray, gold: np.ndarray) -> float:
    """Accuracy and macro-F1 on dev, averaged: the choice must not trade a small class away."""
    predicted = logits.argmax(axis=1)
    f1s = []
    for k in np.unique(gold):
        tp = float(((predicted == k) & (gold == k)).sum())
        precision = tp / max(float((predicted == k).sum()), 1.0)
        recall = tp / max(float((gold == k).sum()), 1.0)
        f1s.append(2 * precision * recall / max(precision + recall, 1e-9))
    return (float((predicted == gold).mean()) + float(np.mean(f1s))) / 2


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _fit_logistic(x: Any, y: np.ndarray, n_labels: int, c: float, class_weight: str | None,
                  weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression as (labels × columns) weights and biases."""
    from sklearn.linear_model import LogisticRegression

    # tol 1e-3: the last digits of the optimum moved no prediction (measured) and cost half the time
    learner = LogisticRegression(C=c, max_iter=1000, tol=1e-3, class_weight=class_weight)
    fitted = learner.fit(x, y, sample_weight=weights)
    coef, intercept = np.asarray(fitted.coef_), np.asarray(fitted.intercept_)
    if n_labels == 2:  # one score for the second class: split it symmetrically over both
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    return coef, intercept


def _fit_nb_logistic(x: Any, y: np.ndarray, n_labels: int, c: float,
                     weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NB-LR (Wang and Manning, 2012), one label against the rest: each feature scaled by its
    log-count ratio before a logistic regression; folded back into plain weights."""
    from sklearn.linear_model import LogisticRegression

    present = x.copy()
    present.data[:] = 1.0
    present = present.multiply(weights[:, None]).tocsr()
    coefs, intercepts = [], []
    for k in range(n_labels):
        inside = np.asarray(present[y == k].sum(axis=0)).ravel() + 1.0
        outside = np.asarray(present[y != k].sum(axis=0)).ravel() + 1.0
        ratio = np.log((inside / inside.sum()) / (outside / outside.sum()))
        # liblinear: one sparse two-class problem per label is what it is fastest at
        learner = LogisticRegression(C=c, solver="liblinear", max_iter=1000)
        fitted = learner.fit(x.multiply(ratio).tocsr(), (y == k).astype(int), sample_weight=weights)
        coefs.append(fitted.coef_[0] * ratio)
        intercepts.append(fitted.intercept_[0])
    return np.array(coefs), np.array(intercepts)


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
          temperature: float, head: EncoderHead | None = None) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class figures and ECE before/after calibration on ``examples``."""
    known = [e for e in examples if e.label in labels]
    probs = department_probs(nlp, head, [e.text for e in known], labels)
    gold = np.array([labels.index(e.label) for e in known], dtype=int)
    result = classification_report([e.label for e in known], [labels[i] for i in probs.argmax(axis=1)])
    result["ece_raw"] = expected_calibration_error(probs, gold)
    result["ece_calibrated"] = expected_calibration_error(softmax_with_temperature(probs, temperature), gold)
    return result


def department_probs(nlp: Language, head: EncoderHead | None, texts: Sequence[str],
                     labels: Sequence[str]) -> np.ndarray:
    """The textcat's probabilities, blended with the encoder head's when the model has one."""
    probs = predict_proba(nlp, texts, labels)
    if head is None or not len(texts):
        return probs
    return blended_probs(head, probs, shared_encoder(head.encoder).encode([model_text(t) for t in texts]))


ENCODER_C = (3.0, 10.0, 30.0)
ENCODER_BLENDS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
# the nearest training messages' vote: how many, and its share of the encoder's part (0: the
# logistic regression alone, as before); chosen on dev with the rest
NEIGHBOURS_K = (10, 25)
NEIGHBOURS_SHARES = (0.0, 0.5, 1.0)


def _fit_encoder_head(train_rows: list[tuple[str, str]], dev_rows: list[tuple[str, str]], labels: list[str],
                      dev_probs: np.ndarray, weights: np.ndarray, config: TrainConfig,
                      class_weight: str | None, say: Progress) -> tuple[EncoderHead | None, np.ndarray]:
    """The encoder's reading of a message: a logistic regression on the sentence encoder's vectors
    of train, mixed with the vote of the nearest training messages (``Neighbours``), and blended
    with the TF-IDF model's dev log-probabilities (``dev_probs``, from the model that had not seen
    dev). The C, the number of neighbours, the vote's share and the blend are chosen on dev, then
    the head is refitted on train + dev (the neighbours are then every training message). None
    when no blend beats the TF-IDF model alone on dev by ``BLEND_MARGIN`` (the encoder would cost
    time for nothing), or when the messages it puts right on dev do not clearly outnumber those it
    puts wrong (``_clearly_more``). Returns the head and dev's probabilities through it (for the
    temperature and the thresholds)."""
    assert config.encoder is not None  # noqa: S101 - only called with one
    import os

    encoder = SentenceEncoder(config.encoder, threads=min(4, os.cpu_count() or 1),
                              cache=Path(config.encoder_cache) if config.encoder_cache else None)
    texts = [model_text(text) for text, _ in train_rows + dev_rows]
    started = time.perf_counter()
    tenths = [0]

    def report(done: int) -> None:
        if done * 10 // max(len(texts), 1) > tenths[0] or done == len(texts):
            tenths[0] = done * 10 // max(len(texts), 1)
            say(f"encoder: {done:,} of {len(texts):,} texts ({time.perf_counter() - started:.0f}s)")

    vectors = encoder.encode(texts, progress=report)
    n_train = len(train_rows)
    y = np.array([labels.index(label) for _, label in train_rows + dev_rows], dtype=int)
    y_train, y_dev = y[:n_train], y[n_train:]
    linear = np.log(np.clip(dev_probs, 1e-12, 1.0))
    alone = _dev_quality(linear, y_dev)
    train_vectors, dev_vectors, w_train = vectors[:n_train], vectors[n_train:], weights[:n_train]
    votes = {k: Neighbours(train_vectors, y_train, k).log_probs(dev_vectors, len(labels))
             for k in NEIGHBOURS_K}
    best: tuple[float, float, EncoderHead] | None = None  # dev quality, C, head on train
    for c in ENCODER_C:
        coef, intercept = _fit_logistic(train_vectors, y_train, len(labels), c, class_weight, w_train)
        head_logits = np.asarray(dev_vectors @ coef.T + intercept, dtype=np.float64)
        shares = NEIGHBOURS_SHARES if config.neighbours else (0.0,)
        for k, share in ((k, share) for k in NEIGHBOURS_K for share in shares):
            if share == 0.0 and k != NEIGHBOURS_K[0]:
                continue  # without the vote, k does not matter
            encoded = (1 - share) * head_logits + share * votes[k]
            for blend in ENCODER_BLENDS:
                quality = _dev_quality(blend * linear + (1 - blend) * encoded, y_dev)
                if best is None or quality > best[0] + 1e-9:
                    memory = Neighbours(train_vectors, y_train, k) if share else None
                    best = (quality, c, EncoderHead(config.encoder, coef, intercept, blend, memory, share))
    assert best is not None  # noqa: S101 - the loops ran
    quality, c, head = best
    voted = (f", the {head.neighbours.k} nearest training messages' vote {head.share:.1f} of it"
             if head.neighbours is not None else "")
    say(f"encoder {config.encoder}: best blend {head.blend:.1f} TF-IDF + {1 - head.blend:.1f} encoder "
        f"(C={c:g}{voted}): dev {quality:.4f} against {alone:.4f} for the TF-IDF model alone")
    dev_blended = blended_probs(head, dev_probs, dev_vectors)
    fixed, broken = _changed(dev_blended, dev_probs, y_dev)
    if quality - alone < BLEND_MARGIN or not _clearly_more(fixed, broken):
        say(f"encoder: no clear gain on dev (of its messages, {fixed} put right and {broken} put wrong), "
            "left out (classifying stays as fast as the TF-IDF model alone)")
        return None, dev_probs
    if config.refit:
        coef, intercept = _fit_logistic(vectors, y, len(labels), c, class_weight, weights)
        memory = Neighbours(vectors, y, head.neighbours.k) if head.neighbours is not None else None
        head = EncoderHead(config.encoder, coef, intercept, head.blend, memory, head.share)
    return head, dev_blended


def _changed(after: np.ndarray, before: np.ndarray, gold: np.ndarray) -> tuple[int, int]:
    """Of the rows, how many ``after`` puts right that ``before`` had wrong, and the reverse."""
    right_after, right_before = after.argmax(axis=1) == gold, before.argmax(axis=1) == gold
    return int((right_after & ~right_before).sum()), int((right_before & ~right_after).sum())


def _clearly_more(fixed: int, broken: int) -> bool:
    """McNemar's test, one-sided at 5%: the rows a change puts right outnumber those it puts wrong by
    more than chance would. On a small dev part a gain of two or three messages is noise (on BBC
    News, 212 dev messages, the encoder won dev by 2 and lost test by 1)."""
    return fixed - broken > 1.645 * float(np.sqrt(fixed + broken))


def predict_proba(nlp: Language, texts: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    rows = [[doc.cats.get(label, 0.0) for label in labels]
            for doc in nlp.pipe((model_text(t) for t in texts), batch_size=256)]
    return np.array(rows, dtype=float).reshape(len(rows), len(labels))


def _blank_textcat(architecture: dict[str, Any], labels: list[str]) -> tuple[Language, Any]:
    nlp = spacy.blank("en")
    textcat = nlp.add_pipe("textcat", config={"model": copy.deepcopy(architecture), "threshold": 0.0})
    for label in labels:
        textcat.add_label(label)  # type: ignore[attr-defined]
    return nlp, textcat


def _train_textcat(train_rows: list[tuple[str, str]], dev_rows: list[tuple[str, str]], labels: list[str],
                   architecture: dict[str, Any], config: TrainConfig, say: Progress,
                   what: str) -> tuple[Language, int]:
    fix_random_seed(config.seed)
    nlp, textcat = _blank_textcat(architecture, labels)

    def to_examples(rows: list[tuple[str, str]]) -> list[SpacyExample]:
        return [SpacyExample.from_dict(nlp.make_doc(model_text(text)),
                                       {"cats": {lab: float(lab == label) for lab in labels}})
                for text, label in rows]

    train_examples = to_examples(train_rows)
    optimizer = nlp.initialize(lambda: train_examples, sgd=_optimizer(config, architecture))
    fit_idf(textcat.model, (eg.predicted for eg in train_examples))
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
    if pipelines.encoder_head is not None:
        pipelines.encoder_head.save(out / str(pipelines.encoder_head.card()["file"]))
    (out / "model-card.json").write_text(json.dumps(card, indent=2, sort_keys=False) + "\n", "utf-8")
    return out


def recorded_config(config: TrainConfig) -> dict[str, Any]:
    """The settings that make a model what it is: the card's ``train_config`` and part of its
    version id (the vectors cache's path is where this machine keeps them, not a setting)."""
    return {k: v for k, v in asdict(config).items() if k != "encoder_cache"}


def model_card(*, version: str, pipelines: TrainedPipelines, config: TrainConfig, data_sha256: str,
               data_source: str, counts: dict[str, int], taxonomy_version: str,
               extra_metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "architecture": config.architecture,
        # what training chose among the feature sets it tried, else the architecture as named
        "architecture_config": pipelines.report.get("fitted", {}).get("architecture_config",
                                                                      ARCHITECTURES[config.architecture]),
        "train_config": recorded_config(config),
        "spacy_version": spacy.__version__,
        "training_data": {"source": data_source, "sha256": data_sha256, "n_docs": counts},
        "taxonomy_version": taxonomy_version,
        "labels": pipelines.labels,
        "type_labels": pipelines.type_labels,
        "temperature": pipelines.temperature,
        "safeguarding_threshold": pipelines.safeguarding_threshold if pipelines.safeguarding else None,
        "thresholds": pipelines.thresholds,
        "encoder": pipelines.encoder_head.card() if pipelines.encoder_head is not None else None,
        "without_encoder": pipelines.without_encoder,
        "metrics": {**pipelines.report, **(extra_metrics or {})},
    }
