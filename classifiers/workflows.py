"""What the ``frontdoor train | evaluate | bench classify`` commands do, without the CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from classifiers.baseline import predict_baseline, train_baseline
from classifiers.dataset import (
    Example,
    Split,
    data_files,
    data_sha256,
    load_examples,
    read_rows,
    split,
    stable_key,
)
from classifiers.metrics import (
    best_threshold,
    binary_report,
    choose_thresholds,
    classification_report,
    routed_report,
    softmax_with_temperature,
)
from classifiers.registry import CARD, ModelRegistry, load_classifier, write_card
from classifiers.rules import RuleSet, load_rules
from classifiers.spacy_classifier import SpacyClassifier
from classifiers.taxonomy import Taxonomy, load_taxonomy
from classifiers.text import model_text, prepare
from classifiers.training import (
    ARCHITECTURES,
    FLAG,
    Progress,
    TrainConfig,
    TrainedPipelines,
    model_card,
    predict_proba,
    recorded_config,
    save,
    score,
    train,
)
from schemas.errors import OperatorError, file_in_the_way

# a label of another domain's data has no threshold in the taxonomy: the taxonomy's usual default
OTHER_DOMAIN_THRESHOLD = 0.5
SHIPPED_CORPUS = Path(__file__).parent / "data" / "corpus"
SHIPPED_HOLDOUT = Path(__file__).parent / "data" / "holdout"
# Written blind: its writer saw only the department descriptions, never the corpus.
SHIPPED_HOLDOUT2 = Path(__file__).parent / "data" / "holdout2"
# Hand-written in voices no generator uses (voicemail transcripts, social posts), six departments.
SHIPPED_HOLDOUT3 = Path(__file__).parent / "data" / "holdout3"


def train_model(data: Path | None, text_col: str, label_col: str, *, out: Path | None,
                registry: ModelRegistry, config: TrainConfig, taxonomy: Taxonomy | None = None,
                holdout: Path | None = None, subject_col: str | None = None, activate: bool | None = True,
                progress: Progress | None = None, base: Path | None = None,
                corrections: Path | None = None) -> dict[str, Any]:
    """Train on ``data``, write the model to ``out`` (or the registry), register it; the card.

    ``base`` (the shipped corpus, for ``--base shipped``) is trained on too, with ``data`` and
    ``corrections`` (agents' moves of tickets: ``text``, ``from_department``, ``to_department``)
    weighted up against it (``with_weight``), so a council's few hundred examples move the model.

    ``activate=None`` makes it current only when it is safe to route with: it knows every
    department of the taxonomy and the data left a test part to score it on. Running routers
    load the current model within seconds, so a partial export must not become it silently."""
    say = progress or (lambda _msg: None)
    if out is not None:
        check_out(out)
    taxonomy = taxonomy or load_taxonomy()
    if data is None and corrections is None:
        raise OperatorError("nothing to train on: give --data, --from-corrections, or both")
    examples = load_examples(data, text_col, label_col, subject_col=subject_col) if data is not None else []
    if corrections is not None:
        examples += load_corrections(corrections)
    sources = [p for p in (base, data, corrections) if p is not None]
    if base is not None:
        base_rows = load_examples(base, "text", "department")
        say(f"base corpus {base}: {len(base_rows)} examples; the {len(examples)} given count "
            f"{with_weight(examples, len(base_rows))[0].weight if examples else 1:.1f} times each")
        examples = [*base_rows, *with_weight(examples, len(base_rows))]
    held_all = (load_examples(holdout, text_col, label_col, subject_col=subject_col)
                if holdout is not None else [])
    unknown = sorted({e.label for e in examples} - set(taxonomy.ids))
    if unknown:
        raise OperatorError(f"labels not in the taxonomy ({taxonomy.source}): {', '.join(unknown[:5])}; "
                            "add them to the taxonomy or fix the label column")
    if len({e.label for e in examples}) < 2:
        raise OperatorError(f"{sources[-1]}: needs at least two different labels in {label_col!r} to train")
    parts = split(examples, by_source=True)
    say(f"{len(examples)} examples, {len({e.label for e in examples})} departments: "
        f"train {len(parts.train)}, dev {len(parts.dev)}, test {len(parts.test)}")
    pipelines = train(parts, config, say)
    extra: dict[str, Any] = {}
    rules = load_rules()
    if parts.test:
        extra["test_rules"] = rule_figures(pipelines, parts.test, rules)
    if holdout is not None:
        held = [e for e in held_all if e.label in pipelines.labels]
        if held:
            extra["holdout"] = score(pipelines.department, pipelines.labels, held, pipelines.temperature,
                                     pipelines.encoder_head)
            extra["holdout_rules"] = rule_figures(pipelines, held, rules)
            say(f"holdout accuracy {extra['holdout']['accuracy']}, macro-F1 {extra['holdout']['macro_f1']}")
    digest = data_sha256(f for p in sources for f in data_files(p))
    fingerprint = hashlib.sha256(
        json.dumps([digest, ARCHITECTURES[config.architecture], recorded_config(config), taxonomy.sha256,
                    text_col, label_col], sort_keys=True).encode()
    ).hexdigest()[:8]
    version = f"{datetime.now(UTC):%Y%m%d}-{fingerprint}"
    card = model_card(version=version, pipelines=pipelines, config=config, data_sha256=digest,
                      data_source=" + ".join(p.name for p in sources),
                      counts={"train": len(parts.train), "dev": len(parts.dev), "test": len(parts.test)},
                      taxonomy_version=taxonomy.version, extra_metrics=extra)
    card["rules_version"] = rules.version
    target = save(pipelines, out if out is not None else registry.root / version, card)
    if activate is None:
        missing = [d for d in taxonomy.ids if d not in pipelines.labels]
        activate = not missing and bool(parts.test)
        if missing:
            say(f"warning: the data has no examples for {len(missing)} of the taxonomy's departments "
                f"({', '.join(missing[:6])}{', …' if len(missing) > 6 else ''}); this model could never "
                f"route to them, so it is not made current ('frontdoor models use {version}' to force it)")
        elif not parts.test:
            say("warning: too little data to keep a test part, so the model is unmeasured and not made "
                f"current ('frontdoor models use {version}' to force it)")
    registry.register(target, activate=activate)
    say(f"model {version} written to {target}" + (" and made current" if activate else ""))
    return card


CORRECTION_COLUMNS = ("text", "from_department", "to_department")


def load_corrections(path: Path) -> list[Example]:
    """Agents' corrections (a CSV with ``text``, ``from_department``, ``to_department``, as the
    tickets stage exports them) as labelled examples: the text belongs where the agent moved it.
    A row whose department did not change teaches nothing and is skipped."""
    rows = read_rows(path)
    missing = [c for c in CORRECTION_COLUMNS if not any(c in row for row in rows)]
    if missing:
        raise OperatorError(f"{path} is not a corrections export: no column {', '.join(map(repr, missing))} "
                            f"(needs {', '.join(CORRECTION_COLUMNS)})")
    examples = []
    for row in rows:
        text, moved_to = row.get("text"), str(row.get("to_department") or "").strip()
        moved = moved_to and moved_to != str(row.get("from_department") or "").strip()
        if isinstance(text, str) and text.strip() and moved:
            examples.append(Example(text=prepare(None, text), label=moved_to, source="corrections"))
    if not examples:
        raise OperatorError(f"{path}: no correction moves a text to another department")
    return examples


def check_out(out: Path) -> Path:
    """``--out`` must be (or be able to become) a directory: checked before any slow work."""
    blocker = file_in_the_way(out)
    if blocker is not None:
        where = "is a file" if blocker == out.expanduser() else f"is inside {blocker}, which is a file"
        raise OperatorError(f"--out {out} {where}: give a directory for the model")
    return out


def rule_figures(pipelines: TrainedPipelines, examples: Sequence[Example], rules: RuleSet) -> dict[str, Any]:
    """Enquiry type (rules alone, type model alone, rules then model) and the safeguarding flag
    against the data's own ``type`` / ``safeguarding`` labels, where it has them."""
    figures: dict[str, Any] = {}
    typed = [e for e in examples if e.kind]
    if typed:
        rule_only, model_only, hybrid = [], [], []
        type_cats = ([d.cats for d in pipelines.enquiry_type.pipe(model_text(e.text) for e in typed)]
                     if pipelines.enquiry_type is not None else [{} for _ in typed])
        for e, cats in zip(typed, type_cats, strict=True):
            kind, _ = rules.enquiry_type(e.text)
            question = rules.question_type if rules.is_question(e.text) else rules.fallback_type
            rule_only.append(kind or question)
            model_kind = max(cats, key=lambda k: cats[k]) if cats else question
            model_only.append(model_kind)
            hybrid.append(kind or model_kind)
        truth = [str(e.kind) for e in typed]
        for name, predicted in (("rules", rule_only), ("model", model_only), ("rules_then_model", hybrid)):
            report = classification_report(truth, predicted)
            figures[f"type_{name}"] = {k: report[k] for k in ("accuracy", "macro_f1", "n")}
            if name == "rules_then_model":
                figures["type_per_class"] = report["per_class"]
    flagged = [e for e in examples if e.safeguarding is not None]
    if flagged:
        risky = [bool(e.safeguarding) for e in flagged]
        by_rules = [any(name == FLAG for name, _ in rules.flags_for(e.text)) for e in flagged]
        figures["safeguarding_rules"] = binary_report(risky, by_rules)
        if pipelines.safeguarding is not None:
            scores = predict_proba(pipelines.safeguarding, [e.text for e in flagged], [FLAG])[:, 0]
            by_model = [bool(s >= pipelines.safeguarding_threshold) for s in scores]
            figures["safeguarding_model"] = binary_report(risky, by_model)
            either = [a or b for a, b in zip(by_rules, by_model, strict=True)]
            figures["safeguarding"] = binary_report(risky, either)
        else:
            figures["safeguarding"] = figures["safeguarding_rules"]
    return figures


def evaluate_model(data: Path, text_col: str, label_col: str, model: Path | None = None,
                   version: str | None = None, *, encoder: bool = True) -> dict[str, Any]:
    """``{"accuracy", "macro_f1", "routed_share", "routed_accuracy", "per_class", "confusion", "n"}``
    of a model on labelled data; routed means at or above the predicted department's threshold.
    ``encoder`` False: as a router classifies that leaves the model's sentence encoder out."""
    classifier = load_classifier(version, model, explain=False, encoder=encoder)
    assert isinstance(classifier, SpacyClassifier)  # noqa: S101 - load_classifier builds only these
    examples = load_examples(data, text_col, label_col, type_col=None, safeguarding_col=None)
    unknown = sorted({e.label for e in examples} - set(classifier.labels))
    if unknown:
        raise OperatorError(f"labels the model {classifier.version} does not know: {', '.join(unknown[:5])} "
                            f"(it knows {', '.join(classifier.labels)})")
    probs = classifier.department_scores([e.text for e in examples])
    predicted = [classifier.labels[i] for i in probs.argmax(axis=1)]
    truth = [e.label for e in examples]
    result = classification_report(truth, predicted)
    routed = routed_report(truth, predicted, [float(p) for p in probs.max(axis=1)],
                           [classifier.threshold(p) for p in predicted])
    result["routed_share"], result["routed_accuracy"] = routed["routed_share"], routed["routed_accuracy"]
    for label, figures in routed["per_class"].items():
        result["per_class"][label].update(figures)
    result["model_version"] = classifier.version
    return result


def calibrate_model(data: Sequence[Path], text_col: str, label_col: str, *, target: float = 0.95,
                    model: Path | None = None, version: str | None = None,
                    registry: ModelRegistry | None = None) -> dict[str, Any]:
    """Choose a model's routing thresholds again, on labelled writing it never saw, and write
    them into its card (nothing is retrained).

    Training chooses thresholds on its own dev part, whole sources held out; a council's own
    history (or any held-out set in the voices residents use) is the better judge of how sure the
    model must be before it routes without a person. The thresholds are the lowest that keep what
    is routed ``target`` right on ``data`` (``metrics.choose_thresholds``); when none does, the
    card is left as it was and the answer says what the best threshold gives. A model with a
    sentence encoder is calibrated twice: as it classifies with the encoder, and without it (its
    ``without_encoder`` thresholds, for routers run where speed comes first; the answer's
    ``without_encoder``). Routers pick the new thresholds up when they next load the model (a
    restart, or ``frontdoor models use``).
    """
    root = model if model is not None else (registry.root if registry is not None else None)
    classifier = load_classifier(version, root, explain=False)
    assert isinstance(classifier, SpacyClassifier)  # noqa: S101 - load_classifier builds only these
    examples = [e for path in data for e in load_examples(path, text_col, label_col, type_col=None,
                                                             safeguarding_col=None)]
    unknown = sorted({e.label for e in examples} - set(classifier.labels))
    if unknown:
        raise OperatorError(f"labels the model {classifier.version} does not know: {', '.join(unknown[:5])} "
                            f"(it knows {', '.join(classifier.labels)})")
    card_path = classifier.model_dir / CARD
    card = json.loads(card_path.read_text("utf-8"))
    result = _calibrate_on(classifier, examples, target, data)
    if result["written"]:
        card["thresholds"] = result["thresholds"]
        card["thresholds_calibration"] = result["calibration"]
    if card.get("encoder") and isinstance(card.get("without_encoder"), dict):
        fast = load_classifier(version, root, explain=False, encoder=False)
        assert isinstance(fast, SpacyClassifier)  # noqa: S101 - load_classifier builds only these
        result["without_encoder"] = _calibrate_on(fast, examples, target, data)
        if result["without_encoder"]["written"]:
            card["without_encoder"]["thresholds"] = result["without_encoder"]["thresholds"]
            card["without_encoder"]["thresholds_calibration"] = result["without_encoder"]["calibration"]
    if result["written"] or result.get("without_encoder", {}).get("written"):
        write_card(card_path, card)
    return result


def _calibrate_on(classifier: SpacyClassifier, examples: Sequence[Example], target: float,
                  data: Sequence[Path]) -> dict[str, Any]:
    """The thresholds that keep what ``classifier`` routes of ``examples`` ``target`` right, what
    they route, and the record the card keeps of where they came from."""
    probs = classifier.department_scores([e.text for e in examples])
    gold = np.array([classifier.labels.index(e.label) for e in examples])
    # the taxonomy's threshold stays a floor (the council's), as the router applies it
    taxonomy = classifier.taxonomy
    floors = {label: taxonomy.threshold(label) if label in taxonomy else 0.0 for label in classifier.labels}
    thresholds = choose_thresholds(probs, gold, classifier.labels, target, floors)
    confidence, right = probs.max(axis=1), probs.argmax(axis=1) == gold
    before = dict(classifier.card_thresholds)
    result: dict[str, Any] = {"model_version": classifier.version, "n": len(examples), "target": target,
                              "data": [str(p) for p in data], "thresholds_before": before}
    if not thresholds:
        result["written"] = False
        result["best"] = best_threshold(probs, gold)
        return result
    effective = {label: max(value, floors[label]) for label, value in thresholds.items()}
    routed = np.array([c >= effective[classifier.labels[k]]
                       for c, k in zip(confidence, probs.argmax(axis=1), strict=True)])
    result.update({"written": True, "thresholds": thresholds, "routed_share": round(float(routed.mean()), 4),
                   "routed_accuracy": round(float(right[routed].mean()), 4) if routed.any() else 0.0})
    result["calibration"] = {
        "data": [Path(p).name for p in data], "n": len(examples), "target": target,
        "routed_share": result["routed_share"], "routed_accuracy": result["routed_accuracy"],
        "at": datetime.now(UTC).isoformat(timespec="seconds"), "previous": before}
    return result


CURVE_SIZES = (0, 100, 300, 1000)
# the learning curve's stand-in for a council's history: corpus wave 7 (street problems in
# residents' registers), its held-back part whole problems the added part never shows
CURVE_DATA = tuple(sorted(SHIPPED_CORPUS.glob("*-wave7.jsonl")))


def bench_classify(data: Path = SHIPPED_CORPUS, holdouts: dict[str, Path] | None = None,
                   config: TrainConfig | None = None, progress: Progress | None = None, *,
                   public: Path | str | None = None, public2: Path | str | None = None,
                   curve: tuple[Path, Sequence[Path]] | None = None) -> dict[str, Any]:
    """spaCy model vs TF-IDF + logistic regression trained on the same rows, same run, one thread
    each, scored on the test part and on every never-trained set in ``holdouts`` (name → path).
    Speeds are documents per second of the thread's CPU time: what one core does, whatever
    else the machine is running (wall-clock figures on a shared machine measured the load).

    ``public``, ``public2``: labelled sets of other domains (their own labels) compared the same
    way, or a string saying why one was skipped. ``curve``: (base corpus, a labelled set in another
    register) for the learning curve: accuracy on a held-back part of the second after adding
    0, 100, 300 and 1,000 of its other examples to the first."""
    config = dataclasses.replace(config or TrainConfig(), train_types=False)  # departments only
    parts = _bench_split(data)
    held = {name: load_examples(path, "text", "department")
            for name, path in (holdouts or {}).items() if path.exists()}
    say = progress or (lambda _msg: None)
    with threadpool_limits(1):
        result: dict[str, Any] = {
            "n_train": len(parts.train), "n_dev": len(parts.dev), "n_test": len(parts.test),
            **{f"n_{name}": len(rows) for name, rows in held.items()},
            **_compare(parts, held, config, progress, speed=True),
        }
        for key, labelled in (("public", public), ("public2", public2)):
            if isinstance(labelled, str):
                result[key] = {"skipped": labelled}
            elif labelled is not None:
                say(f"public set: {labelled}")
                public_parts = _bench_split(labelled)
                result[key] = {"name": labelled.stem, "n_train": len(public_parts.train),
                               "n_dev": len(public_parts.dev), "n_test": len(public_parts.test),
                               **_compare(public_parts, {}, config, progress, speed=False)}
        if curve is not None:
            result["learning_curve"] = learning_curve(*curve, config=config, progress=progress)
    return result


def _bench_split(data: Path) -> Split:
    examples = load_examples(data, "text", "department")
    parts = split(examples, by_source=True)
    departments = {e.label for e in parts.train}
    if len(departments) < 2 or not (parts.dev and parts.test):
        raise OperatorError(
            f"{data}: too little to bench ({len(departments)} department(s), {len(examples)} rows): needs "
            "at least two departments and one with 6 or more different texts, so train, dev and test all "
            "get some")
    return parts


def _compare(parts: Split, held: dict[str, list[Example]], config: TrainConfig, progress: Progress | None,
             speed: bool) -> dict[str, Any]:
    spacy_side = _bench_spacy(parts, held, config, progress, speed)
    base_side = _bench_baseline(parts, held)
    return {"spacy": spacy_side, "baseline": base_side,
            "accuracy_gain": round(spacy_side["accuracy"] - base_side["accuracy"], 4),
            "macro_f1_gain": round(spacy_side["macro_f1"] - base_side["macro_f1"], 4)}


def learning_curve(base: Path, council: Sequence[Path], *, config: TrainConfig | None = None,
                   sizes: Sequence[int] = CURVE_SIZES, held_back: float = 0.25,
                   progress: Progress | None = None) -> dict[str, Any]:
    """How fast a council's own examples move the model: ``held_back`` of ``council`` (whole
    sources when it has several, so the held-back part is not near-copies of what was added) is
    kept for scoring; the base corpus (less anything from ``council``) is trained alone, then
    with the first 100, 300, 1,000 of the rest added, weighted as ``frontdoor train --base``
    weighs them. The curve's models are not refitted on train + dev (half the time for four
    trainings), so their figures sit a little below a full training's."""
    config = dataclasses.replace(config or TrainConfig(), train_types=False, refit=False)
    say = progress or (lambda _msg: None)
    own = [e for path in council for e in load_examples(path, "text", "department")]
    own_texts = {e.text for e in own}
    base_rows = [e for e in load_examples(base, "text", "department") if e.text not in own_texts]
    ordered = sorted(own, key=lambda e: stable_key(e.text))
    sources = sorted({e.source for e in ordered}, key=stable_key)
    if len(sources) >= 4:
        back_sources = set(sources[:max(1, round(len(sources) * held_back))])
        back = [e for e in ordered if e.source in back_sources]
        pool = [e for e in ordered if e.source not in back_sources]
    else:
        cut = round(len(ordered) * held_back)
        back, pool = ordered[:cut], ordered[cut:]
    points = []
    for size in sizes:
        if size > len(pool):
            break
        added = with_weight(pool[:size], len(base_rows))
        parts = split([*base_rows, *added], by_source=True)
        say(f"learning curve: {size} of the council's examples added")
        pipelines = train(parts, config, progress)
        known = [e for e in back if e.label in pipelines.labels]
        report = score(pipelines.department, pipelines.labels, known, pipelines.temperature,
                       pipelines.encoder_head)
        points.append({"added": size, "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
                       **_routed(pipelines, known, "")})
    return {"base": base.name, "data": [path.name for path in council], "n_held_back": len(back),
            "points": points}


def with_weight(own: Sequence[Example], n_base: int) -> list[Example]:
    """A council's own examples weighted against a base corpus of ``n_base``: each counts as up to
    ten base examples (never less than one), so a few hundred already move the model while
    thousands do not drown the base."""
    if not own:
        return []
    weight = float(min(MAX_OWN_WEIGHT, max(1.0, n_base / (3.0 * len(own)))))
    return [dataclasses.replace(e, weight=weight) for e in own]


MAX_OWN_WEIGHT = 10.0


def _bench_spacy(parts: Split, held: dict[str, list[Example]], config: TrainConfig,
                 progress: Progress | None, speed: bool = True) -> dict[str, Any]:
    import tempfile

    started = time.perf_counter()
    pipelines = train(parts, config, progress)
    train_seconds = time.perf_counter() - started
    texts = [e.text for e in parts.test]
    labels = pipelines.labels
    started = time.thread_time()
    probs = pipelines.department_probs(texts)
    textcat_rate = len(texts) / max(time.thread_time() - started, 1e-9)
    predicted = [labels[i] for i in probs.argmax(axis=1)]
    result = classification_report([e.label for e in parts.test], predicted)
    side: dict[str, Any] = {
        "architecture": config.architecture,
        "accuracy": result["accuracy"], "macro_f1": result["macro_f1"],
        **_routed(pipelines, parts.test, ""),
        "docs_per_s": round(textcat_rate, 1), "train_seconds": round(train_seconds, 2),
    }
    with tempfile.TemporaryDirectory() as tmp:
        card = model_card(version="bench", pipelines=pipelines, config=config, data_sha256="", data_source="",
                          counts={}, taxonomy_version="")
        model_dir = save(pipelines, Path(tmp) / "bench", card)
        runs = [("classify_docs_per_s", False, True), ("classify_docs_per_s_explained", True, True)]
        if pipelines.encoder_head is not None:  # the same model without its encoder, for comparison
            runs.append(("classify_docs_per_s_without_encoder", False, False))
        for key, explain, encoder in runs if speed else ():
            classifier = SpacyClassifier(model_dir, explain=explain, encoder=encoder)
            started = time.thread_time()
            for text in texts:
                classifier.classify_text(text)
            side[key] = round(len(texts) / max(time.thread_time() - started, 1e-9), 1)
    for name, rows in held.items():
        known = [e for e in rows if e.label in labels]
        probs = pipelines.department_probs([e.text for e in known])
        held_report = classification_report([e.label for e in known],
                                            [labels[i] for i in probs.argmax(axis=1)])
        side[f"{name}_accuracy"], side[f"{name}_macro_f1"] = held_report["accuracy"], held_report["macro_f1"]
        side.update(_routed(pipelines, known, f"{name}_"))
    return side


def _routed(pipelines: TrainedPipelines, examples: Sequence[Example], prefix: str) -> dict[str, float]:
    """Routed share and routed accuracy as the classifier would route: calibrated probabilities
    against each department's threshold (the taxonomy's, or its default for labels it lacks,
    raised to the model's own where training chose one)."""
    if not examples:
        return {}
    taxonomy = load_taxonomy()
    labels = pipelines.labels
    probs = softmax_with_temperature(
        pipelines.department_probs([e.text for e in examples]), pipelines.temperature)
    predicted = [labels[i] for i in probs.argmax(axis=1)]
    thresholds = [max(taxonomy.threshold(p) if p in taxonomy else OTHER_DOMAIN_THRESHOLD,
                      pipelines.thresholds.get(p, 0.0)) for p in predicted]
    report = routed_report([e.label for e in examples], predicted, [float(x) for x in probs.max(axis=1)],
                           thresholds)
    return {f"{prefix}{key}": report[key] for key in ("routed_share", "routed_accuracy")}


def _bench_baseline(parts: Split, held: dict[str, list[Example]]) -> dict[str, Any]:
    # the same rows the spaCy model learnt from: it chose its settings on dev, then refitted on
    # train + dev, so the baseline gets train + dev too
    started = time.perf_counter()
    rows = [*parts.train, *parts.dev]
    model = train_baseline([e.text for e in rows], [e.label for e in rows])
    train_seconds = time.perf_counter() - started
    texts = [e.text for e in parts.test]
    started = time.thread_time()
    predicted = predict_baseline(model, texts)
    rate = len(texts) / max(time.thread_time() - started, 1e-9)
    result = classification_report([e.label for e in parts.test], predicted)
    side: dict[str, Any] = {"model": "tfidf-1,2gram+logistic-regression", "accuracy": result["accuracy"],
                            "macro_f1": result["macro_f1"], "docs_per_s": round(rate, 1),
                            "train_seconds": round(train_seconds, 2)}
    for name, rows in held.items():
        held_report = classification_report([e.label for e in rows],
                                            predict_baseline(model, [e.text for e in rows]))
        side[f"{name}_accuracy"], side[f"{name}_macro_f1"] = held_report["accuracy"], held_report["macro_f1"]
    return side
