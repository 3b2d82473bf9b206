"""The commands a council's analyst runs: train on their own export, evaluate, classify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifiers.registry import SHIPPED_ROOT, load_classifier
from tests.conftest import frontdoor

from .conftest import write_tiny_csv

EVAL_ROWS = {
    "waste": ["nobody emptied the bins on our road", "order a replacement recycling box"],
    "highways": ["pothole outside the primary school", "street light not working on Elm Road"],
    "parking": ["appeal my penalty charge notice", "a car has been abandoned outside for a month"],
}


def test_train_on_a_csv_then_classify(tmp_path: Path, cli_env: dict[str, str]) -> None:
    data = write_tiny_csv(tmp_path / "export.csv")
    trained = frontdoor("train", "--data", str(data), "--text-col", "message", "--label-col", "team",
                        "--out", str(tmp_path / "model"), "--epochs", "6", "--activate", env=cli_env)
    assert "department: " in trained.stderr  # progress while it works
    version = trained.stdout.split(":")[0].strip()
    assert (tmp_path / "model" / "model-card.json").is_file()

    listed = json.loads(frontdoor("models", "list", "--json", env=cli_env).stdout)
    assert [row["version"] for row in listed if row["current"]] == [version]

    shown = frontdoor("classify", "the bin men missed our road again, bins still full", env=cli_env)
    prediction = json.loads(shown.stdout)
    assert prediction["department"] == "waste"
    assert prediction["model_version"] == version
    assert set(prediction) >= {"confidence", "scores", "enquiry_type", "flags", "entities", "explanation",
                               "threshold", "also", "needs_triage"}


def test_a_partial_export_is_not_made_current_unless_asked(tmp_path: Path, cli_env: dict[str, str]) -> None:
    data = write_tiny_csv(tmp_path / "export.csv")  # 3 of the taxonomy's 18 departments
    trained = frontdoor("train", "--data", str(data), "--text-col", "message", "--label-col", "team",
                        "--epochs", "3", env=cli_env)
    assert "no examples for 15 of the taxonomy's departments" in trained.stderr
    listed = json.loads(frontdoor("models", "list", "--json", env=cli_env).stdout)
    current = [row for row in listed if row["current"]]
    assert len(current) == 1 and current[0]["shipped"]  # routers keep the full model


def test_evaluate_prints_the_figures(tiny_model: Path, tmp_path: Path, cli_env: dict[str, str]) -> None:
    data = tmp_path / "eval.jsonl"
    rows = [{"body": t, "dept": d} for d, ts in EVAL_ROWS.items() for t in ts]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = frontdoor("evaluate", "--model", str(tiny_model), "--data", str(data), "--text-col", "body",
                    "--label-col", "dept", "--json", env=cli_env)
    result = json.loads(out.stdout)
    assert set(result) >= {"accuracy", "macro_f1", "per_class", "confusion", "n"}
    # the same numbers the classifier gives one text at a time
    classifier = load_classifier(model_dir=tiny_model)
    pairs = [(d, classifier.classify_text(t).department) for d, ts in EVAL_ROWS.items() for t in ts]
    assert result["n"] == 6
    assert result["accuracy"] == round(sum(t == p for t, p in pairs) / 6, 4)
    # routed: at or above the predicted department's threshold, as the router decides per text
    predictions = [(d, classifier.classify_text(t)) for d, ts in EVAL_ROWS.items() for t in ts]
    routed = [(d, p.department) for d, p in predictions if not p.needs_triage]
    assert result["routed_share"] == round(len(routed) / 6, 4)
    right = sum(t == p for t, p in routed)
    assert result["routed_accuracy"] == (round(right / len(routed), 4) if routed else 0.0)
    for label in EVAL_ROWS:
        assert result["per_class"][label]["support"] == 2
        assert set(result["per_class"][label]) == {"precision", "recall", "f1", "support", "routed_share",
                                                   "routed_accuracy"}
        mine = [p for d, p in predictions if d == label]
        assert result["per_class"][label]["routed_share"] == round(
            sum(not p.needs_triage for p in mine) / 2, 4)
        for predicted in {p for t, p in pairs if t == label}:
            expected = sum(1 for t, p in pairs if (t, p) == (label, predicted))
            assert result["confusion"][label][predicted] == expected


def _one_line_error(args: list[str], env: dict[str, str], words: str) -> None:
    done = frontdoor(*args, env=env, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("frontdoor: ") and words in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_missing_column(tmp_path: Path, cli_env: dict[str, str]) -> None:
    data = write_tiny_csv(tmp_path / "export.csv")
    _one_line_error(["train", "--data", str(data), "--text-col", "body", "--label-col", "team"], cli_env,
                    "no column 'body'")


def test_empty_file(tmp_path: Path, cli_env: dict[str, str]) -> None:
    (tmp_path / "empty.csv").write_text("")
    _one_line_error(["train", "--data", str(tmp_path / "empty.csv"), "--text-col", "a", "--label-col", "b"],
                    cli_env, "no rows")


def test_label_not_in_taxonomy(tmp_path: Path, cli_env: dict[str, str]) -> None:
    data = write_tiny_csv(tmp_path / "export.csv", {"waste": ["bin"] * 3, "bins_and_things": ["x"] * 3})
    _one_line_error(["train", "--data", str(data), "--text-col", "message", "--label-col", "team"], cli_env,
                    "bins_and_things")


@pytest.mark.parametrize("label", ["licensing", "no_such_department"])
def test_evaluate_unknown_label(tiny_model: Path, tmp_path: Path, cli_env: dict[str, str],
                                label: str) -> None:
    data = tmp_path / "eval.csv"
    data.write_text(f"text,department\nmy taxi licence,{label}\n")
    _one_line_error(["evaluate", "--model", str(tiny_model), "--data", str(data), "--text-col", "text",
                     "--label-col", "department", "--json"], cli_env, label)


def test_rollback_with_nothing_to_roll_back(cli_env: dict[str, str]) -> None:
    _one_line_error(["models", "rollback"], cli_env, "nothing to roll back")


def test_classify_needs_some_text(cli_env: dict[str, str]) -> None:
    result = frontdoor("classify", "   ", env=cli_env, check=False)
    assert result.returncode == 2 and "nothing to classify" in result.stderr


def test_a_message_without_words_goes_to_triage_as_general() -> None:
    prediction = load_classifier(model_dir=SHIPPED_ROOT).classify_text("📷 ")
    assert prediction.needs_triage and prediction.enquiry_type == "general"


def test_a_mistyped_model_path_is_an_error_not_the_shipped_model(tmp_path: Path,
                                                                 cli_env: dict[str, str]) -> None:
    result = frontdoor("classify", "--model", str(tmp_path / "typo"), "bins", env=cli_env, check=False)
    assert result.returncode == 2 and "neither a model" in result.stderr
