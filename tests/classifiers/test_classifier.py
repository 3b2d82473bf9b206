"""The classifier as the router sees it: trained on a council's own CSV, then asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifiers.dataset import Example, split
from classifiers.registry import load_classifier
from classifiers.spacy_classifier import SpacyClassifier
from classifiers.taxonomy import load_taxonomy
from classifiers.training import predict_proba, train
from schemas.inbound import Channel, InboundMessage, Party

from .conftest import FAST, TINY


def test_routes_clear_enquiries_it_has_not_seen(tiny_model: Path) -> None:
    classifier = load_classifier(model_dir=tiny_model)
    assert classifier.classify_text("the bin lorry did not empty my recycling bin").department == "waste"
    assert classifier.classify_text("huge pothole in the road by the church").department == "highways"
    assert classifier.classify_text("appeal against a parking ticket").department == "parking"


def test_prediction_carries_scores_type_entities_and_reasons(tiny_model: Path) -> None:
    prediction = load_classifier(model_dir=tiny_model).classify_text(
        "Pothole on Mill Lane, LN4 2QT, burst my tyre. Call 07700 900431")
    assert prediction.department == "highways"
    assert abs(sum(prediction.scores.values()) - 1.0) < 1e-3
    assert set(load_taxonomy().ids) <= set(prediction.scores)  # every department, zero if untrained
    assert prediction.confidence == max(prediction.scores.values())
    assert prediction.model_version
    found = {(e.label, e.text) for e in prediction.entities}
    assert found >= {("POSTCODE", "LN4 2QT"), ("PHONE", "07700 900431")}
    assert prediction.explanation[0].startswith("highways")
    assert any("pothole" in reason for reason in prediction.explanation)


def test_message_is_read_without_its_quoted_reply(tiny_model: Path) -> None:
    message = InboundMessage(
        channel=Channel.EMAIL, sender=Party(email="jo@example.com"), dedupe_key="email:<1@x>",
        subject="Re: missed bin collection",
        body_text=("It still has not been emptied, the bin is overflowing.\n\n"
                   "On Tue, 3 Jun 2025 at 10:02, Roads Team <roads@council.example.gov.uk> wrote:\n"
                   "> pothole pothole street light pavement road gully\n"),
    )
    assert load_classifier(model_dir=tiny_model).classify(message).department == "waste"


def test_below_the_departments_threshold_goes_to_triage(tiny_model: Path, tmp_path: Path) -> None:
    strict = tmp_path / "strict.toml"
    strict.write_text('version = "strict"\n' + "".join(
        f"[departments.{d}]\ndescription = \"{d}\"\nthreshold = 0.999\n" for d in TINY), "utf-8")
    lenient = tmp_path / "lenient.toml"
    lenient.write_text('version = "lenient"\n' + "".join(
        f"[departments.{d}]\ndescription = \"{d}\"\nthreshold = 0.01\n" for d in TINY), "utf-8")
    text = "something about the street"
    triaged = SpacyClassifier(tiny_model, taxonomy=load_taxonomy(strict)).classify_text(text)
    routed = SpacyClassifier(tiny_model, taxonomy=load_taxonomy(lenient)).classify_text(text)
    assert triaged.needs_triage and triaged.threshold == 0.999
    assert not routed.needs_triage and routed.threshold == 0.01
    assert "triage" in triaged.explanation[0]


def test_safeguarding_flag_and_type_reach_the_prediction(tiny_model: Path) -> None:
    prediction = load_classifier(model_dir=tiny_model).classify_text(
        "I want to complain: the street light has wires hanging out and kids play there, "
        "someone will get hurt")
    assert "safeguarding" in prediction.flags
    assert prediction.enquiry_type == "complaint"


def test_training_is_deterministic() -> None:
    examples = [Example(text, label) for label, texts in TINY.items() for text in texts]
    parts = split(examples)
    first, second = train(parts, FAST), train(parts, FAST)
    probe = ["my bin was missed", "pothole", "parking permit", "hello"]
    assert first.temperature == second.temperature > 0
    assert np.array_equal(predict_proba(first.department, probe, first.labels),
                          predict_proba(second.department, probe, second.labels))


def test_unknown_version_is_an_operator_error(tmp_path: Path) -> None:
    from schemas.errors import OperatorError

    with pytest.raises(OperatorError, match="no model version"):
        load_classifier("does-not-exist", tmp_path)


def _taxonomy_without_highways(path: Path) -> Path:
    path.write_text('version = "no-roads"\n' + "".join(
        f'[departments.{d}]\ndescription = "{d}"\n' for d in ("waste", "parking", "housing")), "utf-8")
    return path


def test_a_department_the_taxonomy_lacks_is_never_named(tiny_model: Path, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    taxonomy = load_taxonomy(_taxonomy_without_highways(tmp_path / "no-roads.toml"))
    with caplog.at_level("WARNING", logger="classifiers.spacy_classifier"):
        classifier = SpacyClassifier(tiny_model, taxonomy=taxonomy)
        full = SpacyClassifier(tiny_model)
        prediction = classifier.classify_text("huge pothole in the road by the church")
        classifier.classify_text("another pothole on the high street")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1  # once, when the model is loaded
    assert "(highways)" in warnings[0] and "frontdoor train" in warnings[0]

    assert prediction.department in taxonomy and set(prediction.scores) == set(taxonomy.ids)
    assert "highways" not in prediction.also
    # the missing department's share is left out, not spread over the others
    expected = full.classify_text("huge pothole in the road by the church").scores[prediction.department]
    assert prediction.confidence == expected == max(prediction.scores.values())
    assert sum(prediction.scores.values()) < 0.5 and prediction.needs_triage
    # evaluate scores the same way: the missing department's column is zero
    column = classifier.labels.index("highways")
    assert classifier.department_scores(["huge pothole in the road"])[0, column] == 0.0


def test_the_router_sees_only_taxonomy_departments(tiny_model: Path, tmp_path: Path) -> None:
    from router.policy import RoutingPolicy, decide

    taxonomy = load_taxonomy(_taxonomy_without_highways(tmp_path / "no-roads.toml"))
    message = InboundMessage(channel=Channel.EMAIL, sender=Party(email="jo@example.com"),
                             dedupe_key="email:<2@x>", subject="pothole",
                             body_text="huge pothole in the road by the church")
    routing = decide(message, SpacyClassifier(tiny_model, taxonomy=taxonomy).classify(message),
                     RoutingPolicy(thresholds={d.id: d.threshold for d in taxonomy.departments}))
    assert routing.department in taxonomy and routing.triage
    assert set(routing.departments) <= set(taxonomy.ids) and set(routing.scores) <= set(taxonomy.ids)


def test_scoring_without_the_pipeline_gives_the_pipelines_scores(shipped: SpacyClassifier) -> None:
    """The router scores the fitted model in NumPy on one tokenisation (for speed); what it
    routes must be exactly what the spaCy pipeline written to disk would route."""
    texts = ["bin not emptied again on elm close", "POTHOLE!! outside no 12", "",
             "my mum needs a carer after hospital, she can't manage the stairs",
             "Council tax bill wrong, I moved out in May 2025. Ref 12345678"]
    fast = shipped.department_scores(texts)
    labels = shipped.labels
    # as training scores it: the spaCy pipeline, the sentence encoder blended in where the card says
    from classifiers.encoder import EncoderHead
    from classifiers.metrics import softmax_with_temperature
    from classifiers.training import department_probs

    card = shipped.card.get("encoder")
    head = EncoderHead.load(shipped.model_dir, card) if card else None
    raw = department_probs(shipped.nlp, head, texts, labels)
    assert np.abs(fast - softmax_with_temperature(raw, shipped.temperature)).max() < 1e-5
    assert shipped.classify_text(texts[3]).department == labels[int(raw[3].argmax())]
    prediction = shipped.classify_text(texts[0])
    assert shipped.guard_nlp is not None and shipped.type_nlp is not None
    assert prediction.enquiry_type in shipped.type_labels + ["general", "service_request"]
    assert "word 'bin'" in prediction.explanation  # occlusion on the features names the word
