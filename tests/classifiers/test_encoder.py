"""The sentence encoder beside the TF-IDF model: residents who describe a problem in words the
corpus never used still reach the right department.

The encoder is the real shipped one (all-MiniLM-L6-v2, quantised, run by ONNX Runtime)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from classifiers import encoder as encoder_module
from classifiers.dataset import Example, Split
from classifiers.encoder import DEFAULT_ENCODER, SentenceEncoder
from classifiers.metrics import softmax_with_temperature
from classifiers.registry import ModelRegistry
from classifiers.spacy_classifier import SpacyClassifier
from classifiers.training import TrainConfig, TrainedPipelines, model_card, save, train
from schemas.errors import OperatorError

# Training names the service; dev and test describe the problem in other words, as residents do.
TRAIN = {
    "waste": ["bin not collected", "my bin was not emptied", "missed bin collection", "recycling bin missed",
              "need a new wheelie bin", "fly tipping in the lane", "bulky waste collection please",
              "garden waste bin not emptied", "bin collection missed again", "recycling not collected",
              "broken bin lid", "order a recycling box", "food waste caddy missing",
              "bins missed on our road",
              "extra bin for a large family"],
    "highways": ["pothole in the road", "street light not working", "broken pavement",
                 "blocked drain on road",
                 "road surface damaged", "pothole damaged my tyre", "street lamp out", "cracked paving slab",
                 "road needs gritting", "traffic light not working", "pothole by the school",
                 "loose kerb stone", "street light flickering", "sinking road surface", "damaged road sign"],
    "parking": ["parking ticket appeal", "resident parking permit", "parked on double yellow lines",
                "penalty charge notice wrong", "visitor parking permit", "car blocking my driveway",
                "pay and display machine broken", "parking fine unfair", "renew my parking permit",
                "disabled parking bay request", "car park charges", "parking on the pavement",
                "permit holders only bay", "parking suspension for a removal", "clamped in the car park"],
}
DEV = {
    "waste": ["the dustmen skipped our street", "nobody came for the rubbish this week",
              "refuse lorry drove straight past", "trash was left on the kerb for days",
              "they never took our rubbish", "the binmen forgot us again", "the refuse crew missed us",
              "our rubbish is still sitting outside", "the rubbish men did not turn up",
              "household refuse uncollected since monday"],
    "highways": ["a huge crater in the tarmac", "it is pitch black at night, the lamp is dead",
                 "the footway is uneven and people trip", "water pools across the carriageway",
                 "a hole in the tarmac wrecked my wheel", "the junction is dark after sunset",
                 "the walkway slabs are lifting", "the carriageway is crumbling",
                 "the tarmac has broken up outside the shops", "huge hole appeared in the tarmac"],
    "parking": ["a warden fined me while I was loading", "I keep getting tickets outside my own house",
                "someone leaves their van across my drive", "the meter swallowed my coins",
                "I was fined even though I had paid", "cars left on the yellow lines all day",
                "my visitors keep getting fined", "a motorist blocks my garage every night",
                "the warden was wrong to fine me", "a vehicle is dumped in my bay"],
}
TEST = {  # none of training's words
    "waste": ["the dustmen never came", "nobody took away our rubbish this week",
              "our trash has sat outside for a fortnight", "the refuse crew forgot us",
              "rubbish sacks piling up on the pavement outside"],
    "highways": ["a crater opened up in the tarmac", "tree roots lifted the footway",
                 "the carriageway is full of holes", "the junction is pitch dark at night",
                 "a deep hole in the tarmac by the bus stop"],
    "parking": ["a warden put a penalty on my windscreen", "a van keeps obstructing my garage",
                "the meter swallowed my coins", "I was fined despite paying",
                "my visitors' cars keep getting fined"],
}


def _examples(rows: dict[str, list[str]], source: str) -> list[Example]:
    return [Example(text, label, source=f"{source}-{label}")
            for label, texts in rows.items() for text in texts]


def _split() -> Split:
    return Split(_examples(TRAIN, "train"), _examples(DEV, "dev"), _examples(TEST, "test"))


def _accuracy(probs: np.ndarray, labels: list[str], examples: list[Example]) -> float:
    return float(np.mean([labels[i] == e.label for i, e in zip(probs.argmax(axis=1), examples, strict=True)]))


# no refit on train + dev: the test part then shares no words with anything the model learnt from
@dataclasses.dataclass
class Trained:
    parts: Split
    blended: TrainedPipelines  # with the encoder
    alone: TrainedPipelines  # --encoder none


CONFIG = TrainConfig(architecture="tfidf1c", train_types=False, refit=False)


@pytest.fixture(scope="module")
def trained() -> Trained:
    parts = _split()
    return Trained(parts, train(parts, CONFIG), train(parts, dataclasses.replace(CONFIG, encoder=None)))


def test_vectors_put_the_same_problem_in_other_words_closer_than_another_service() -> None:
    bin_, rubbish, pothole, hole = SentenceEncoder().encode([
        "my bin was not emptied", "nobody collected our rubbish",
        "there is a pothole in the road", "a huge hole in the tarmac"])
    assert np.allclose(np.linalg.norm(np.stack([bin_, rubbish, pothole, hole]), axis=1), 1.0, atol=1e-4)
    assert bin_ @ rubbish > bin_ @ pothole + 0.15
    assert pothole @ hole > pothole @ rubbish + 0.15


def test_the_encoder_routes_messages_that_share_no_words_with_training(trained: Trained) -> None:
    with_encoder, alone, test = trained.blended, trained.alone, list(trained.parts.test)
    assert with_encoder.encoder_head is not None
    assert alone.encoder_head is None
    blended = _accuracy(with_encoder.department_probs([e.text for e in test]),
                        with_encoder.labels, test)
    words_only = _accuracy(alone.department_probs([e.text for e in test]),
                           alone.labels, test)
    assert blended >= 0.8
    assert blended > words_only
    assert with_encoder.report["test"]["accuracy"] == pytest.approx(blended, abs=1e-3)


def test_a_saved_model_blends_the_encoder_when_classifying(trained: Trained, tmp_path: Path) -> None:
    pipelines = trained.blended
    card = model_card(version="20261207-encoder", pipelines=pipelines, config=CONFIG,
                      data_sha256="", data_source="test", counts={}, taxonomy_version="")
    model_dir = save(pipelines, tmp_path / "model", card)
    assert card["encoder"]["name"] == DEFAULT_ENCODER
    assert (model_dir / "encoder-head.npz").is_file()
    classifier = SpacyClassifier(model_dir, explain=False)
    texts = [e.text for e in _examples(TEST, "t")]
    expected = pipelines.department_probs(texts)
    for text, row in zip(texts, expected, strict=True):
        prediction = classifier.classify_text(text)
        assert prediction.department == pipelines.labels[int(row.argmax())]
    assert classifier.department_scores(texts).argmax(axis=1).tolist() == expected.argmax(axis=1).tolist()
    # the model names an encoder it cannot find: one line saying what to do, not a traceback
    card["encoder"]["name"] = "no-such-encoder"
    (model_dir / "model-card.json").write_text(json.dumps(card), "utf-8")
    encoder_module.shared_encoder.cache_clear()
    with pytest.raises(OperatorError, match="no sentence encoder 'no-such-encoder'"):
        SpacyClassifier(model_dir)


def test_odd_text_gets_a_vector_not_an_error() -> None:
    """Lone surrogates (bytes that were not UTF-8), control characters, emoji only, nothing at
    all and a megabyte body: each gets a unit vector, and the huge one costs no more than a page."""
    texts = ["bins \ud800 not emptied", "\x00\x01", "🙂" * 50, "", "pothole " * 150_000]
    vectors = SentenceEncoder().encode(texts)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_vectors_are_cached_by_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "vectors.sqlite"
    first = SentenceEncoder(cache=cache).encode(["bins missed", "pothole", "bins missed"])
    assert np.allclose(first[0], first[2])
    again = SentenceEncoder(cache=cache)
    monkeypatch.setattr(again, "_run", lambda text: pytest.fail(f"encoded {text!r} again"))
    assert np.allclose(again.encode(["pothole", "bins missed"]), first[[1, 0]])


def test_train_with_encoder_none_writes_a_model_without_one(tmp_path: Path) -> None:
    from classifiers.workflows import train_model
    from tests.classifiers.conftest import write_tiny_csv

    card = train_model(write_tiny_csv(tmp_path / "export.csv"), "message", "team", out=tmp_path / "model",
                       registry=ModelRegistry(tmp_path / "registry", shipped=tmp_path / "none"),
                       config=dataclasses.replace(CONFIG, encoder=None))
    assert card["encoder"] is None
    assert not (tmp_path / "model" / "encoder-head.npz").exists()


def test_without_its_encoder_a_model_routes_on_its_own_calibration(trained: Trained, tmp_path: Path) -> None:
    """A council that turns the encoder off for speed (FRONTDOOR_CLASSIFIER_ENCODER=false) gets the
    temperature and thresholds fitted for the TF-IDF model alone, the ones a model trained with
    '--encoder none' on the same rows has, not the blend's (which would route too much)."""
    pipelines = trained.blended
    assert pipelines.encoder_head is not None and pipelines.without_encoder is not None
    card = model_card(version="20261207-fast", pipelines=pipelines, config=CONFIG,
                      data_sha256="", data_source="test", counts={}, taxonomy_version="")
    model_dir = save(pipelines, tmp_path / "model", card)
    assert card["without_encoder"]["temperature"] == pytest.approx(trained.alone.temperature)
    assert card["without_encoder"]["thresholds"] == trained.alone.thresholds
    assert card["without_encoder"]["temperature"] != pytest.approx(card["temperature"])
    fast = SpacyClassifier(model_dir, explain=False, encoder=False)
    assert fast.temperature == pytest.approx(trained.alone.temperature)
    texts = [e.text for e in _examples(TEST, "t")]
    alone = softmax_with_temperature(trained.alone.department_probs(texts), trained.alone.temperature)
    assert np.allclose(fast.department_scores(texts), alone, atol=1e-6)


def test_calibrating_with_an_encoder_sets_both_ways_to_route(trained: Trained, tmp_path: Path) -> None:
    from classifiers.workflows import calibrate_model, evaluate_model

    card = model_card(version="20261207-both", pipelines=trained.blended, config=CONFIG,
                      data_sha256="", data_source="test", counts={}, taxonomy_version="")
    model_dir = save(trained.blended, tmp_path / "model", card)
    data = tmp_path / "held-out.csv"
    # a council's history: what the model learnt from, and writing in other words
    rows = _examples(TRAIN, "history") + _examples(TEST, "history")
    data.write_text("text,department\n" + "".join(f'"{e.text}",{e.label}\n' for e in rows), "utf-8")
    result = calibrate_model([data], "text", "department", target=0.8, model=model_dir)
    written = json.loads((model_dir / "model-card.json").read_text("utf-8"))
    fast = result["without_encoder"]
    assert result["written"] and fast["written"], result
    assert written["thresholds"] == result["thresholds"]
    assert written["without_encoder"]["thresholds"] == fast["thresholds"]
    assert written["without_encoder"]["thresholds_calibration"]["n"] == len(rows) == 60
    # each way of routing does what its calibration promised
    for encoder, promised in ((True, result), (False, fast)):
        evaluated = evaluate_model(data, "text", "department", model=model_dir, encoder=encoder)
        assert evaluated["routed_share"] == promised["routed_share"]
        assert evaluated["routed_accuracy"] == promised["routed_accuracy"] >= 0.8


def test_the_nearest_training_messages_vote_and_survive_being_saved(tmp_path: Path) -> None:
    """The neighbours' vote follows the closest messages, and the 8-bit copy the model keeps votes
    the same way."""
    from classifiers.encoder import EncoderHead, Neighbours

    vectors = SentenceEncoder().encode(["my bin was not emptied", "the recycling was missed again",
                                        "pothole in the road", "street light not working",
                                        "the dustmen never came"])
    labels = np.array([0, 0, 1, 1, 0])
    memory = Neighbours(vectors[:4], labels[:4], k=2)
    asked = SentenceEncoder().encode(["nobody collected our rubbish", "a crater in the tarmac"])
    assert memory.log_probs(asked, 2).argmax(axis=1).tolist() == [0, 1]
    # of four voters the two nearest decide ("the dustmen never came" is nearer the bins)
    assert Neighbours(vectors[:4], labels[:4], k=4).log_probs(vectors[4:], 2).argmax(axis=1).tolist() == [0]
    head = EncoderHead(DEFAULT_ENCODER, np.zeros((2, vectors.shape[1])), np.zeros(2), 0.5, memory, 1.0)
    head.save(tmp_path / "encoder-head.npz")
    card = head.card()
    assert card["neighbours"] == {"k": 2, "share": 1.0, "n": 4}
    loaded = EncoderHead.load(tmp_path, card)
    assert np.allclose(loaded.logits(asked), head.logits(asked), atol=0.05)
    with np.load(tmp_path / "encoder-head.npz") as saved:
        assert saved["memory"].dtype == np.int8  # a quarter of the vectors' size
