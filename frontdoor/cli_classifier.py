"""Commands for this area; ``register`` adds them to the ``frontdoor`` app."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from classifiers.encoder import DEFAULT_ENCODER

if TYPE_CHECKING:
    from classifiers.training import TrainConfig


_SURROGATES = re.compile("[\ud800-\udfff]")
ACTIVATE_HELP = "Make it current (default: only if it knows every department and has a test score)."
ENCODER_HELP = ("Sentence encoder blended in where it helps on dev (default all-minilm-l6-v2-q, shipped); "
                "'none': TF-IDF alone, over ten times faster to classify.")
ARCH_HELP = "tfidf2c (default), tfidf1c, tfidf1, bow1, bow2, bow3, ensemble, cnn"
BASE_HELP = "'shipped': also train on the shipped corpus, your rows weighted up (or a corpus directory)."
ROUTED_HELP = "How often what is routed without a person must be right on dev (sets the thresholds)."
PUBLIC_HELP = "Also compare on two public sets, SpamAssassin and BBC News (fetched once into the cache dir)."
CURVE_HELP = "Also measure the learning curve (0, 100, 300, 1000 own examples added)."
CORRECTIONS_HELP = "Agents' corrections CSV (text, from_department, to_department) to learn from."


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands (and its ``bench`` subcommands) to the CLI."""
    models_app = typer.Typer(help="Registered routing models: list, switch, roll back.", no_args_is_help=True)
    app.add_typer(models_app, name="models")

    @app.command("train")
    def train_cmd(
        data: Annotated[Path | None, typer.Option("--data", help="CSV/JSONL file or directory.")] = None,
        text_col: Annotated[str, typer.Option("--text-col", help="Text column.")] = "text",
        label_col: Annotated[str, typer.Option("--label-col", help="Department column.")] = "department",
        out: Annotated[Path | None, typer.Option("--out", help="Model dir to write.")] = None,
        base: Annotated[str | None, typer.Option("--base", help=BASE_HELP)] = None,
        corrections: Annotated[Path | None, typer.Option("--from-corrections", help=CORRECTIONS_HELP)] = None,
        subject_col: Annotated[str | None, typer.Option("--subject-col", help="Subject column.")] = None,
        holdout: Annotated[Path | None, typer.Option("--holdout", help="Data to score only.")] = None,
        arch: Annotated[str, typer.Option("--arch", help=ARCH_HELP)] = "",
        encoder: Annotated[str, typer.Option("--encoder", help=ENCODER_HELP)] = DEFAULT_ENCODER,
        epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Most epochs (default 30).")] = (
            None),
        seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed.")] = 0,
        activate: Annotated[bool | None, typer.Option("--activate/--no-activate", help=ACTIVATE_HELP)] = None,
        routed_accuracy: Annotated[float, typer.Option("--routed-accuracy", min=0.5, max=0.999,
                                                       help=ROUTED_HELP)] = 0.95,
        as_json: Annotated[bool, typer.Option("--json", help="Print the model card as JSON.")] = False,
    ) -> None:
        """Train a routing model on labelled enquiries, register it and (by default) make it current."""
        from classifiers.registry import ModelRegistry
        from frontdoor.cli_core import configured_taxonomy
        from frontdoor.cli_core import model_root as default_root
        config = dataclasses.replace(_config(arch, epochs, seed, encoder), routed_accuracy=routed_accuracy)
        from classifiers.workflows import train_model

        card = train_model(data, text_col, label_col, out=out, registry=ModelRegistry(default_root()),
                           config=config, taxonomy=configured_taxonomy(),
                           holdout=holdout, subject_col=subject_col, activate=activate,
                           progress=lambda line: typer.echo(line, err=True), base=_base(base),
                           corrections=corrections)
        if as_json:
            typer.echo(json.dumps(card))
        else:
            test = card["metrics"].get("test", {})
            typer.echo(f"{card['version']}: test accuracy {test.get('accuracy')} "
                       f"macro-F1 {test.get('macro_f1')}")

    @app.command("train-imap")
    def train_imap_cmd(
        host: Annotated[str, typer.Option("--imap-host", help="IMAP server.")],
        user: Annotated[str, typer.Option("--imap-user", help="IMAP login.")],
        folder_map: Annotated[list[str], typer.Option("--folder-map", help="FOLDER=department (repeat).")],
        port: Annotated[int, typer.Option("--imap-port", min=1, max=65535, help="IMAP port.")] = 993,
        password_env: Annotated[str, typer.Option("--password-env", help="Env var with the password.")] = (
            "FRONTDOOR_IMAP_PASSWORD"),  # noqa: S107 - the name of a variable, not a password
        tls: Annotated[bool, typer.Option("--tls/--no-tls", help="Implicit TLS (port 993).")] = True,
        limit: Annotated[int, typer.Option("--limit", min=0, help="Newest N per folder; 0: all.")] = 0,
        out: Annotated[Path | None, typer.Option("--out", help="Model dir to write.")] = None,
        arch: Annotated[str, typer.Option("--arch", help=ARCH_HELP)] = "",
        encoder: Annotated[str, typer.Option("--encoder", help=ENCODER_HELP)] = DEFAULT_ENCODER,
        activate: Annotated[bool | None, typer.Option("--activate/--no-activate", help=ACTIVATE_HELP)] = None,
    ) -> None:
        """Train from IMAP folders that map to departments (read-only: nothing is marked seen)."""
        import os
        import tempfile

        from classifiers.imap_export import export_imap, parse_folder_map
        from classifiers.registry import ModelRegistry
        from classifiers.workflows import check_out, train_model
        from frontdoor.cli_core import configured_taxonomy
        from frontdoor.cli_core import model_root as default_root
        from schemas.errors import OperatorError

        if not password_env.strip():
            raise OperatorError("--password-env needs the name of the environment variable holding the IMAP "
                                "password (default FRONTDOOR_IMAP_PASSWORD)")
        password = os.environ.get(password_env)
        if not password:
            raise OperatorError(f"set {password_env} to the IMAP password (never given on the command line)")
        # everything the operator typed is checked before connecting and downloading the mailboxes
        taxonomy = configured_taxonomy()
        mapping = parse_folder_map(folder_map, taxonomy)
        config = _config(arch, None, 0, encoder)
        if out is not None:
            check_out(out)
        echo = lambda line: typer.echo(line, err=True)  # noqa: E731
        with tempfile.TemporaryDirectory() as scratch:
            data = Path(scratch) / "imap-export.jsonl"
            export_imap(host, port, user, password, mapping, data, tls=tls, limit=limit, progress=echo)
            card = train_model(data, "text", "department", out=out, registry=ModelRegistry(default_root()),
                               config=config, taxonomy=taxonomy, activate=activate, progress=echo)
        test = card["metrics"].get("test", {})
        typer.echo(f"{card['version']}: test accuracy {test.get('accuracy')} macro-F1 {test.get('macro_f1')}")

    @app.command("evaluate")
    def evaluate_cmd(
        data: Annotated[Path, typer.Option("--data", help="CSV/JSONL file or directory.")],
        text_col: Annotated[str, typer.Option("--text-col", help="Text column.")] = "text",
        label_col: Annotated[str, typer.Option("--label-col", help="Department column.")] = "department",
        model: Annotated[Path | None, typer.Option("--model", help="Model directory.")] = None,
        version: Annotated[str | None, typer.Option("--version", help="Registered model version.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    ) -> None:
        """Score a model on labelled data: accuracy, macro-F1, routed share and its accuracy, per class."""
        from classifiers.registry import check_model_path
        from classifiers.workflows import evaluate_model
        from frontdoor.cli_core import with_encoder

        result = evaluate_model(data, text_col, label_col, model=model and check_model_path(model),
                                version=version, encoder=with_encoder())
        if as_json:
            typer.echo(json.dumps(result))
            return
        typer.echo(f"model {result['model_version']}: n {result['n']} accuracy {result['accuracy']} "
                   f"macro-F1 {result['macro_f1']} routed {result['routed_share']:.1%} "
                   f"(accuracy {result['routed_accuracy']})")
        for label, figures in result["per_class"].items():
            typer.echo(f"  {label:<24} P {figures['precision']:.3f} R {figures['recall']:.3f} "
                       f"F1 {figures['f1']:.3f} n {figures['support']} routed {figures['routed_share']:.1%} "
                       f"accuracy {figures['routed_accuracy']:.3f}")

    @app.command("classify")
    def classify_cmd(
        text: Annotated[str, typer.Argument(help="The enquiry text.")],
        subject: Annotated[str | None, typer.Option("--subject", help="Email subject.")] = None,
        model: Annotated[Path | None, typer.Option("--model", help="Model directory.")] = None,
        version: Annotated[str | None, typer.Option("--version", help="Registered model version.")] = None,
    ) -> None:
        """Classify one enquiry and print the prediction as JSON."""
        from classifiers.registry import check_model_path, load_classifier
        from classifiers.spacy_classifier import SpacyClassifier
        from classifiers.text import prepare
        from frontdoor.cli_core import configured_taxonomy, model_root, with_encoder

        text, subject = _decodable(text), subject and _decodable(subject)
        if not (text.strip() or (subject or "").strip()):
            from schemas.errors import OperatorError

            raise OperatorError("nothing to classify: give the enquiry's text")
        classifier = load_classifier(version, (model and check_model_path(model)) or model_root(),
                                     taxonomy=configured_taxonomy(), encoder=with_encoder())
        if subject and isinstance(classifier, SpacyClassifier):
            prediction = classifier.classify_text(prepare(subject, text))
        else:
            prediction = classifier.classify_text(text)
        payload = dataclasses.asdict(prediction)
        payload["scores"] = dict(sorted(prediction.scores.items(), key=lambda kv: -kv[1]))
        payload["needs_triage"] = prediction.needs_triage
        typer.echo(json.dumps(payload))

    @models_app.command("list")
    def models_list(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
        """Every registered (and shipped) model; * marks the current one."""
        from classifiers.registry import ModelRegistry
        from frontdoor.cli_core import model_root as default_root

        entries = ModelRegistry(default_root()).entries()
        rows = [{"version": e.version, "current": e.current, "shipped": e.shipped, "path": str(e.path),
                 "created": e.card.get("created"), "architecture": e.card.get("architecture"),
                 "test_accuracy": e.card.get("metrics", {}).get("test", {}).get("accuracy")} for e in entries]
        if as_json:
            typer.echo(json.dumps(rows))
            return
        for row in rows:
            typer.echo(f"{'*' if row['current'] else ' '} {row['version']:<22} {row['created'] or '':<26} "
                       f"{row['architecture'] or '':<9} accuracy {row['test_accuracy']}"
                       f"{'  (shipped)' if row['shipped'] else ''}")

    @models_app.command("use")
    def models_use(version: str = typer.Argument(..., help="Version to make current.")) -> None:
        """Make a registered model current; running routers load it within --reload-interval (10 s)."""
        from classifiers.registry import ModelRegistry
        from frontdoor.cli_core import model_root as default_root

        ModelRegistry(default_root()).use(version)
        typer.echo(f"current model: {version}")

    @models_app.command("calibrate")
    def models_calibrate(
        data: Annotated[list[Path], typer.Option("--data", help="Held-out CSV/JSONL file or directory "
                                                               "(repeat for more); never trained on.")],
        text_col: Annotated[str, typer.Option("--text-col", help="Text column.")] = "text",
        label_col: Annotated[str, typer.Option("--label-col", help="Department column.")] = "department",
        model: Annotated[Path | None, typer.Option("--model", help="Model directory.")] = None,
        version: Annotated[str | None, typer.Option("--version", help="Registered model version.")] = None,
        routed_accuracy: Annotated[float, typer.Option("--routed-accuracy", min=0.5, max=0.999,
                                                       help="How often what is routed must be right.")] = (
            0.95),
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    ) -> None:
        """Choose a model's thresholds again on labelled writing it never saw; written into its card."""
        from classifiers.registry import ModelRegistry, check_model_path
        from classifiers.workflows import calibrate_model
        from frontdoor.cli_core import model_root as default_root

        result = calibrate_model(data, text_col, label_col, target=routed_accuracy,
                                 model=model and check_model_path(model), version=version,
                                 registry=ModelRegistry(default_root()))
        if as_json:
            typer.echo(json.dumps(result))
            return
        for mode, figures in (("", result), (" without its encoder", result.get("without_encoder"))):
            if figures is None:
                continue
            if figures["written"]:
                typer.echo(f"model {result['model_version']}{mode}: thresholds written from {figures['n']} "
                           f"messages; {figures['routed_share']:.0%} of them routed at "
                           f"{figures['routed_accuracy']} accuracy")
            else:
                best = figures["best"]
                typer.echo(f"model {result['model_version']}{mode}: no threshold makes what is routed "
                           f"{routed_accuracy} right on these {figures['n']} messages (the best, "
                           f"{best['threshold']}, routes {best['routed_share']:.0%} at "
                           f"{best['routed_accuracy']}); its thresholds are unchanged")

    @models_app.command("rollback")
    def models_rollback() -> None:
        """Make the previously current model current again."""
        from classifiers.registry import ModelRegistry
        from frontdoor.cli_core import model_root as default_root

        version = ModelRegistry(default_root()).rollback()
        typer.echo(f"current model: {version}")

    @bench_app.command("classify")
    def bench_classify_cmd(
        data: Annotated[Path | None, typer.Option("--data", help="Corpus (default: shipped).")] = None,
        arch: Annotated[str, typer.Option("--arch", help="spaCy architecture to measure.")] = "",
        encoder: Annotated[str, typer.Option("--encoder", help=ENCODER_HELP)] = DEFAULT_ENCODER,
        public: Annotated[bool, typer.Option("--public/--no-public", help=PUBLIC_HELP)] = True,
        curve: Annotated[bool, typer.Option("--curve/--no-curve", help=CURVE_HELP)] = True,
        as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    ) -> None:
        """spaCy model vs TF-IDF + logistic regression: same rows, same run, one thread; also on a
        public labelled set, and the learning curve of a council's own examples."""
        from classifiers.public_sets import PublicSetUnavailableError, bbc_news, spam_assassin
        from classifiers.workflows import (
            CURVE_DATA,
            SHIPPED_CORPUS,
            SHIPPED_HOLDOUT,
            SHIPPED_HOLDOUT2,
            SHIPPED_HOLDOUT3,
            bench_classify,
        )
        from frontdoor.settings import load_settings

        echo = lambda line: typer.echo(line, err=True)  # noqa: E731
        config = _config(arch, None, 0, encoder)
        holdouts = None if data else {"holdout": SHIPPED_HOLDOUT, "holdout2": SHIPPED_HOLDOUT2,
                                      "holdout3": SHIPPED_HOLDOUT3}
        sets: list[Path | str | None] = [None, None]
        for i, fetch in enumerate((spam_assassin, bbc_news) if public else ()):
            try:
                sets[i] = fetch(load_settings().cache_dir, echo)
            except PublicSetUnavailableError as exc:
                sets[i] = f"public set unavailable, skipped: {exc}"
                echo(str(sets[i]))
        result = bench_classify(data or SHIPPED_CORPUS, holdouts, config, progress=echo, public=sets[0],
                                public2=sets[1],
                                curve=(SHIPPED_CORPUS, CURVE_DATA) if curve and not data else None)
        if as_json:
            typer.echo(json.dumps(result))
            return
        for side in ("spacy", "baseline"):
            typer.echo(f"{side}: " + ", ".join(f"{k} {v}" for k, v in result[side].items()))
        typer.echo(f"gain over baseline: accuracy {result['accuracy_gain']}, "
                   f"macro-F1 {result['macro_f1_gain']}")
        for key in ("public", "public2"):
            if key in result:
                typer.echo(f"public set: {json.dumps(result[key])}")
        if "learning_curve" in result:
            typer.echo(f"learning curve: {json.dumps(result['learning_curve'])}")


def _base(value: str | None) -> Path | None:
    """``--base shipped`` is the corpus shipped with the package; anything else a directory."""
    from classifiers.workflows import SHIPPED_CORPUS
    from schemas.errors import OperatorError

    if value is None:
        return None
    if value == "shipped":
        return SHIPPED_CORPUS
    path = Path(value)
    if not path.exists():
        raise OperatorError(f"--base {value}: give 'shipped' or a directory of labelled data")
    return path


def _decodable(value: str) -> str:
    """Bytes in argv that are not UTF-8 reach Python as lone surrogates, which nothing downstream
    can encode: each becomes U+FFFD, the replacement character."""
    return _SURROGATES.sub("\ufffd", value)


def _config(arch: str, epochs: int | None, seed: int, encoder: str = DEFAULT_ENCODER) -> TrainConfig:
    from classifiers.training import ARCHITECTURES, TrainConfig
    from frontdoor.settings import load_settings
    from schemas.errors import OperatorError

    chosen = None if encoder.strip().lower() in ("", "none") else encoder.strip()
    cache = str(load_settings().cache_dir / "encoder-vectors.sqlite") if chosen else None
    config = TrainConfig(seed=seed, encoder=chosen, encoder_cache=cache)
    if arch:
        if arch not in ARCHITECTURES:
            raise OperatorError(f"unknown architecture {arch!r}: use one of {', '.join(ARCHITECTURES)}")
        config = dataclasses.replace(config, architecture=arch)
    if epochs:
        config = dataclasses.replace(config, max_epochs=epochs)
    return config
