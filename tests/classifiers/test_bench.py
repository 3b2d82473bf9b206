"""``bench classify`` puts the spaCy model and the baseline side by side on the same split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifiers.workflows import bench_classify
from schemas.errors import OperatorError
from tests.classifiers.conftest import FAST, TINY


def _jsonl(path: Path, rows: dict[str, list[str]]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "department": d}) + "\n"
                            for d, texts in rows.items() for t in texts))
    return path


def test_both_models_are_scored_on_the_same_test_part_and_every_holdout(tmp_path: Path) -> None:
    corpus = _jsonl(tmp_path / "corpus.jsonl", TINY)
    unseen = _jsonl(tmp_path / "unseen.jsonl", {"waste": ["the bin lorry never came"],
                                                 "highways": ["big hole in the road outside"],
                                                 "parking": ["I got a ticket but had paid"]})
    result = bench_classify(corpus, {"unseen": unseen}, FAST)
    assert result["n_unseen"] == 3
    assert result["n_train"] + result["n_dev"] + result["n_test"] == sum(len(v) for v in TINY.values())
    for side in ("spacy", "baseline"):
        assert 0.0 <= result[side]["accuracy"] <= 1.0 and result[side]["docs_per_s"] > 0
        assert 0.0 <= result[side]["unseen_accuracy"] <= 1.0
    for key in ("routed_share", "routed_accuracy", "unseen_routed_share", "unseen_routed_accuracy"):
        assert 0.0 <= result["spacy"][key] <= 1.0
    assert result["accuracy_gain"] == round(result["spacy"]["accuracy"] - result["baseline"]["accuracy"], 4)


@pytest.mark.parametrize("rows", [
    {"waste": TINY["waste"]},  # one department: spaCy's textcat cannot train
    {"waste": ["bin"], "highways": ["pothole"], "parking": ["ticket"]},  # nothing left for dev or test
])
def test_too_little_data_is_one_line_before_training(tmp_path: Path, rows: dict[str, list[str]]) -> None:
    with pytest.raises(OperatorError, match="too little to bench.*at least two departments"):
        bench_classify(_jsonl(tmp_path / "small.jsonl", rows), None, FAST)
