"""Figures for a set of predictions: what ``frontdoor evaluate --json`` prints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.metrics import accuracy_score, precision_recall_fscore_support


def classification_report(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """``{"accuracy", "macro_f1", "per_class": {label: {precision, recall, f1, support}},
    "confusion": {true: {pred: n}}, "n"}``; macro-F1 averages over the labels present in the truth."""
    labels = sorted(set(truth))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    confusion: dict[str, dict[str, int]] = {label: {} for label in labels}
    for t, p in zip(truth, predicted, strict=True):
        confusion[t][p] = confusion[t].get(p, 0) + 1
    return {
        "accuracy": round(float(accuracy_score(truth, predicted)), 4) if truth else 0.0,
        "macro_f1": round(float(np.mean(f1)), 4) if labels else 0.0,
        "per_class": {
            label: {
                "precision": round(float(precision[i]), 4),
                "recall": round(float(recall[i]), 4),
                "f1": round(float(f1[i]), 4),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion": {t: dict(sorted(row.items())) for t, row in confusion.items()},
        "n": len(truth),
    }


def binary_report(truth: Sequence[bool], predicted: Sequence[bool]) -> dict[str, float | int]:
    tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t and p)
    fp = sum(1 for t, p in zip(truth, predicted, strict=True) if p and not t)
    fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t and not p)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "positives": tp + fn, "flagged": tp + fp, "n": len(truth)}


def softmax_with_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Rescale probability rows as if their logits were divided by ``temperature``."""
    logits = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def nll(probs: np.ndarray, gold: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(gold)), gold], 1e-12, 1.0))))


def fit_temperature(probs: np.ndarray, gold: np.ndarray) -> float:
    """Temperature scaling: the T > 0 that minimises negative log-likelihood on held-out data."""
    if len(gold) == 0:
        return 1.0
    result = minimize_scalar(lambda t: nll(softmax_with_temperature(probs, t), gold),
                             bounds=(0.05, 20.0), method="bounded")
    return round(float(result.x), 4)


def expected_calibration_error(probs: np.ndarray, gold: np.ndarray, bins: int = 10) -> float:
    """ECE over equal-width confidence bins: how far confidence is from accuracy, weighted."""
    if len(gold) == 0:
        return 0.0
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == gold
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return round(float(total), 4)


def routed_report(truth: Sequence[str], predicted: Sequence[str], confidence: Sequence[float],
                  thresholds: Sequence[float]) -> dict[str, Any]:
    """What is routed without a human: ``routed_share`` (the share at or above the predicted
    department's threshold, so not sent to triage) and ``routed_accuracy`` (how much of that
    share went to the right department), overall and per true class.

    The second figure is the one a council feels: a wrong enquiry routed with confidence waits
    in the wrong queue, while one sent to triage is only slower."""
    routed = [c >= t for c, t in zip(confidence, thresholds, strict=True)]
    right = [t == p for t, p in zip(truth, predicted, strict=True)]

    def figures(rows: list[int]) -> dict[str, float]:
        sent = [i for i in rows if routed[i]]
        return {"routed_share": round(len(sent) / len(rows), 4) if rows else 0.0,
                "routed_accuracy": round(sum(right[i] for i in sent) / len(sent), 4) if sent else 0.0}

    overall = figures(list(range(len(truth))))
    per_class = {label: figures([i for i, t in enumerate(truth) if t == label])
                 for label in sorted(set(truth))}
    return {**overall, "per_class": per_class}


MIN_ROWS_FOR_OWN_THRESHOLD = 15
MIN_SHARE_FOR_BEST = 0.2  # ``best_threshold`` looks at thresholds that route at least this share


def choose_thresholds(probs: np.ndarray, gold: np.ndarray, labels: Sequence[str],
                      target: float, floors: Mapping[str, float] | None = None) -> dict[str, float]:
    """Per-label confidence thresholds under which an enquiry goes to a person, chosen on held-out
    predictions so that what is routed is right ``target`` of the time: the lowest common
    threshold that reaches it, raised for a label whose own routed predictions (at least 15 of
    them) fall short. Lower thresholds route more; these are the lowest that keep the promise.

    Empty when no threshold reaches the target: the taxonomy's thresholds then decide, and
    ``best_threshold`` says what the best one would give (a ceiling of 0.99 that routes almost
    nothing is no promise kept either). A label that no threshold makes right enough on its own
    keeps the common one (not the taxonomy's lower floor, which routed its doubtful predictions).

    ``floors``: per label, a threshold the router applies anyway (the taxonomy's); predictions
    under it are never routed, so they neither help nor hurt what is promised."""
    confidence = probs.max(axis=1)
    predicted = probs.argmax(axis=1)
    right = predicted == gold
    routable = confidence >= np.array([(floors or {}).get(labels[k], 0.0) for k in predicted])

    def lowest(mask: np.ndarray) -> float | None:
        """The lowest threshold at which the rows in ``mask`` above it are ``target`` right."""
        order = np.argsort(-confidence[mask])
        conf, ok = confidence[mask][order], right[mask][order]
        if len(conf) == 0:
            return 0.0
        running = np.cumsum(ok) / np.arange(1, len(ok) + 1)
        # the longest prefix (most confident first) that is still right enough, at a confidence
        # boundary so that ties are not split
        # (a prefix of a handful of rows reaches any target by luck: it needs 15 of them)
        good = [i for i in range(min(MIN_ROWS_FOR_OWN_THRESHOLD, len(conf)) - 1, len(conf))
                if running[i] >= target and (i + 1 == len(conf) or conf[i + 1] < conf[i])]
        return float(conf[max(good)]) if good else None

    common = lowest(routable)
    if common is None:
        return {}
    thresholds = {}
    for k, label in enumerate(labels):
        own = (predicted == k) & (confidence >= common) & routable
        value = common
        if own.sum() >= MIN_ROWS_FOR_OWN_THRESHOLD and right[own].mean() < target:
            raised = lowest((predicted == k) & routable)
            # no threshold reaches it for this label: the common one is the best promise there is
            value = common if raised is None else max(common, raised)
        thresholds[label] = round(value, 4)
    return thresholds


def best_threshold(probs: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """The common threshold whose routed share is the most accurate among those that route at
    least ``MIN_SHARE_FOR_BEST`` of the rows: ``{"threshold", "routed_share", "routed_accuracy"}``.
    What to say when a target is out of reach."""
    confidence = probs.max(axis=1)
    right = probs.argmax(axis=1) == gold
    order = np.argsort(-confidence)
    conf, ok = confidence[order], right[order]
    if len(conf) == 0:
        return {"threshold": 0.0, "routed_share": 0.0, "routed_accuracy": 0.0}
    running = np.cumsum(ok) / np.arange(1, len(ok) + 1)
    first = max(int(np.ceil(MIN_SHARE_FOR_BEST * len(conf))) - 1, 0)
    boundaries = [i for i in range(first, len(conf)) if i + 1 == len(conf) or conf[i + 1] < conf[i]]
    i = max(boundaries, key=lambda j: (running[j], j))
    return {"threshold": round(float(conf[i]), 4), "routed_share": round((i + 1) / len(conf), 4),
            "routed_accuracy": round(float(running[i]), 4)}
