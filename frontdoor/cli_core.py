"""Core commands: the local broker, the bus benchmark, and running the whole service."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from frontdoor.output import print_figures
from frontdoor.settings import load_settings

if TYPE_CHECKING:
    from classifiers.taxonomy import Taxonomy


def model_root() -> Path:
    """The model registry of this deployment (``<var_dir>/models``), from the settings."""
    return load_settings().var_dir / "models"


def with_encoder() -> bool:
    """Whether classifying blends the model's sentence encoder in (``FRONTDOOR_CLASSIFIER_ENCODER``)."""
    return load_settings().classifier_encoder


def configured_taxonomy() -> Taxonomy:
    """The taxonomy the settings name (``FRONTDOOR_TAXONOMY``, also from ``.env``), else the shipped one."""
    from classifiers.taxonomy import load_taxonomy

    return load_taxonomy(load_settings().taxonomy)


def register(app: typer.Typer, kafka_app: typer.Typer, bench_app: typer.Typer) -> None:
    register_fetch(kafka_app)

    @kafka_app.command("start")
    def kafka_start() -> None:
        """Fetch Kafka (once), format its storage, start it; return when it answers."""
        from frontdoor import wiring
        from ingest.admin import ensure_topics
        from schemas.topics import CORE_TOPICS

        settings = load_settings()
        if settings.kafka_bootstrap:
            wiring.connect(settings)  # must answer, or say so: scripts wait on this command
            typer.echo(f"{settings.kafka_bootstrap} answers; no local broker started")
            return
        address = wiring.local_broker(settings).start()
        ensure_topics(address, CORE_TOPICS)
        typer.echo(f"kafka ready on {address}")

    @kafka_app.command("stop")
    def kafka_stop() -> None:
        """Stop the local broker this project started (and nothing else)."""
        from frontdoor import wiring

        stopped = wiring.local_broker(load_settings()).stop()
        typer.echo("kafka stopped" if stopped else "kafka was not running")

    @kafka_app.command("status")
    def kafka_status() -> None:
        """Exit 0 only when the broker answers an admin call."""
        from frontdoor import wiring
        from ingest.admin import broker_answers

        address = wiring.bootstrap(load_settings())
        if broker_answers(address):
            typer.echo(f"kafka up on {address}")
            return
        typer.echo(f"kafka down: nothing answers on {address}", err=True)
        raise typer.Exit(1)

    @bench_app.command("bus")
    def bench_bus(
        messages: int = typer.Option(20_000, "--messages", "-n", help="Messages per side."),
        size: int = typer.Option(1024, help="Approximate bytes per message."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    ) -> None:
        """Through the adapter vs raw kafka-python on the same broker, in one run."""
        from frontdoor import wiring
        from ingest.bench import run_bus_bench

        settings = load_settings()
        address = wiring.connect(settings, start_local=True)
        result = run_bus_bench(address, wiring.blob_store(settings), messages, size)
        print_figures(result, as_json)

    @app.command("up")
    def up() -> None:
        """Everything on embedded defaults: local broker, topics, and every stage that exists."""
        from frontdoor.supervisor import run_all

        run_all(load_settings())


def register_fetch(kafka_app: typer.Typer) -> None:
    @kafka_app.command("fetch")
    def kafka_fetch() -> None:
        """Download the broker's jars with Maven into the cache (what 'make install' runs)."""
        from frontdoor import wiring

        settings = load_settings()
        if settings.kafka_bootstrap:
            typer.echo(f"FRONTDOOR_KAFKA_BOOTSTRAP={settings.kafka_bootstrap}: no jars needed")
            return
        broker = wiring.local_broker(settings)
        broker.java()
        typer.echo(f"kafka {settings.kafka_version} jars in {broker.fetch()}")
