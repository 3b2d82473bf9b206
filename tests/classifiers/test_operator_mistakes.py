"""Operator mistakes with the classifier commands: one line saying what to do, exit 2, and
checked before anything slow (training, downloading mailboxes) starts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from classifiers.registry import SHIPPED_ROOT, ModelRegistry
from tests.conftest import frontdoor

from .conftest import write_tiny_csv


def _one_line_error(args: list[str], env: dict[str, str], words: str) -> str:
    done = frontdoor(*args, env=env, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("frontdoor: ") and words in lines[0], done.stderr
    return lines[0]


def _usage_error(args: list[str], env: dict[str, str], option: str) -> None:
    done = frontdoor(*args, env=env, check=False)
    assert done.returncode == 2 and f"'{option}'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_classify_never_names_a_department_the_taxonomy_lacks(tiny_model: Path, tmp_path: Path,
                                                               cli_env: dict[str, str]) -> None:
    ours = tmp_path / "ours.toml"
    ours.write_text('version = "ours"\n' + "".join(
        f'[departments.{d}]\ndescription = "{d}"\n' for d in ("waste", "parking", "housing")), "utf-8")
    done = frontdoor("classify", "--model", str(tiny_model), "pothole on my road",
                     env={**cli_env, "FRONTDOOR_TAXONOMY": str(ours)})
    prediction = json.loads(done.stdout)
    assert prediction["department"] in {"waste", "parking", "housing"} and prediction["needs_triage"]
    assert set(prediction["scores"]) == {"waste", "parking", "housing"}
    assert "(highways)" in done.stderr and "retrain with 'frontdoor train'" in done.stderr


@pytest.mark.parametrize("typed", ["", "../models/{v}", "./{v}", "{v}/"])
def test_models_use_takes_a_version_name_not_a_path(typed: str, cli_env: dict[str, str]) -> None:
    shipped = ModelRegistry(Path("/nonexistent"), shipped=SHIPPED_ROOT).current_version()
    _one_line_error(["models", "use", typed.format(v=shipped)], cli_env, "is not a model version")
    assert not (Path(cli_env["FRONTDOOR_VAR_DIR"]) / "models" / "current").exists()


def test_models_use_refuses_a_broken_model(cli_env: dict[str, str]) -> None:
    broken = Path(cli_env["FRONTDOOR_VAR_DIR"]) / "models" / "broken"
    broken.mkdir(parents=True)
    (broken / "model-card.json").write_text(json.dumps({"version": "broken", "labels": ["waste"]}))
    _one_line_error(["models", "use", "broken"], cli_env, "no department/ pipeline")
    assert not (broken.parent / "current").exists()


def test_models_list_with_a_card_that_is_not_utf8(cli_env: dict[str, str]) -> None:
    odd = Path(cli_env["FRONTDOOR_VAR_DIR"]) / "models" / "odd"
    odd.mkdir(parents=True)
    (odd / "model-card.json").write_bytes(b'{"version": "caf\xe9"}')
    _one_line_error(["models", "list"], cli_env, "is not UTF-8")


def test_a_taxonomy_that_is_a_directory_or_has_a_typo(tmp_path: Path, cli_env: dict[str, str]) -> None:
    _one_line_error(["classify", "bins"], {**cli_env, "FRONTDOOR_TAXONOMY": str(tmp_path)}, "is a directory")
    typo = tmp_path / "typo.toml"
    typo.write_text('version = "1"\n[departments.a]\ndescription = "a"\ntreshold = 0.95\n'
                    '[departments.b]\ndescription = "b"\n')
    _one_line_error(["classify", "bins"], {**cli_env, "FRONTDOOR_TAXONOMY": str(typo)},
                    "unknown key 'treshold' in departments.a: did you mean 'threshold'?")


@pytest.mark.parametrize(("extra", "words"), [
    (["--out", "{tmp}/a-file"], "is a file: give a directory"),
    (["--out", "{tmp}/a-file/model"], "which is a file"),
    (["--holdout", "{tmp}/nonexistent.csv"], "nonexistent.csv not found"),
    (["--subject-col", "nosuch"], "no column 'nosuch'"),
])
def test_train_checks_its_options_before_training(tmp_path: Path, cli_env: dict[str, str], extra: list[str],
                                                  words: str) -> None:
    data = write_tiny_csv(tmp_path / "export.csv")
    (tmp_path / "a-file").write_text("not a directory")
    # one line and nothing else: no "epoch" progress, so nothing was trained first
    _one_line_error(["train", "--data", str(data), "--text-col", "message", "--label-col", "team",
                     *(arg.format(tmp=tmp_path) for arg in extra)], cli_env, words)


@pytest.mark.parametrize("epochs", ["-1", "0"])
def test_train_needs_at_least_one_epoch(tmp_path: Path, cli_env: dict[str, str], epochs: str) -> None:
    data = write_tiny_csv(tmp_path / "export.csv")
    _usage_error(["train", "--data", str(data), "--epochs", epochs], cli_env, "--epochs")


def test_bench_classify_with_one_department(tmp_path: Path, cli_env: dict[str, str]) -> None:
    data = tmp_path / "one.csv"
    data.write_text("text,department\n" + "".join(f"bin number {n},waste\n" for n in range(8)))
    _one_line_error(["bench", "classify", "--data", str(data)], cli_env, "at least two departments")


IMAP = ["train-imap", "--imap-host", "127.0.0.1", "--imap-port", "1", "--no-tls", "--imap-user", "officer"]


@pytest.mark.parametrize(("extra", "words"), [
    (["--folder-map", "INBOX=waste", "--arch", "bogus"], "unknown architecture 'bogus'"),
    (["--folder-map", "INBOX=nosuch"], "'nosuch' is not a department in the taxonomy"),
    (["--folder-map", "INBOX=wast"], "did you mean 'waste'?"),
    (["--folder-map", "INBOX=waste", "--out", "{tmp}/a-file"], "is a file: give a directory"),
    (["--folder-map", "INBOX=waste", "--password-env", ""], "--password-env needs the name"),
])
def test_train_imap_checks_its_options_before_connecting(tmp_path: Path, cli_env: dict[str, str],
                                                         extra: list[str], words: str) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    # nothing listens on port 1: a check made after connecting would say "cannot reach"
    env = {**cli_env, "FRONTDOOR_IMAP_PASSWORD": "secret"}
    _one_line_error([*IMAP, *(arg.format(tmp=tmp_path) for arg in extra)], env, words)


@pytest.mark.parametrize("port", ["0", "70000"])
def test_train_imap_port_is_range_checked(cli_env: dict[str, str], port: str) -> None:
    _usage_error(["train-imap", "--imap-host", "127.0.0.1", "--imap-user", "officer", "--folder-map",
                  "INBOX=waste", "--imap-port", port], cli_env, "--imap-port")


def test_classify_text_that_is_not_utf8(cli_env: dict[str, str]) -> None:
    # what the shell passes for "$(printf '\x01\x02\xff')": bytes that do not decode as UTF-8
    done = frontdoor("classify", os.fsdecode(b"\x01\x02\xff pothole"), env=cli_env)
    prediction = json.loads(done.stdout)
    assert prediction["department"] and "Traceback" not in done.stderr
