"""Builds the ingest pieces a process needs from its settings: one place, no discovery."""

from __future__ import annotations

from typing import TYPE_CHECKING

from classifiers.registry import ModelRegistry, load_classifier
from classifiers.taxonomy import Taxonomy, load_taxonomy
from frontdoor.settings import Settings
from ingest.admin import ensure_topics, wait_for_broker
from ingest.broker import BrokerConfig, LocalBroker
from ingest.bus import KafkaPublisher
from router.policy import RoutingPolicy
from router.runner import ModelSource
from schemas.blobs import FilesystemBlobStore
from schemas.topics import CORE_TOPICS

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ingest.health import KafkaIngestProbe
    from ingest.intake import ReferenceAllocator
    from tickets.clocks import ClockPeriods
    from tickets.outbox import OutboxPolicy
    from tickets.service import TicketWriter
    from tickets.threading import ThreadingPolicy


def local_broker(settings: Settings) -> LocalBroker:
    return LocalBroker(
        BrokerConfig(
            var_dir=settings.var_dir,
            cache_dir=settings.cache_dir,
            version=settings.kafka_version,
            port=settings.kafka_port,
            heap=settings.kafka_heap,
        )
    )


def bootstrap(settings: Settings) -> str:
    """The cluster to use: FRONTDOOR_KAFKA_BOOTSTRAP, else the local broker's address."""
    return settings.kafka_bootstrap or local_broker(settings).config.bootstrap


def connect(settings: Settings, *, start_local: bool = False) -> str:
    """Reach the cluster (starting the local broker if asked and none is configured),
    retrying with backoff, and make sure the core topics exist."""
    if start_local and not settings.kafka_bootstrap:
        address = local_broker(settings).start()
    else:
        address = bootstrap(settings)
    if settings.kafka_bootstrap:
        remedy = "check that the cluster FRONTDOOR_KAFKA_BOOTSTRAP names is running and reachable from here"
    else:
        remedy = "start it with 'frontdoor kafka start' or set FRONTDOOR_KAFKA_BOOTSTRAP to a running cluster"
    wait_for_broker(address, retries=settings.connect_retries, remedy=remedy)
    ensure_topics(address, CORE_TOPICS)
    return address


def blob_store(settings: Settings) -> FilesystemBlobStore:
    return FilesystemBlobStore(settings.blobs_path)


def publisher(settings: Settings, address: str | None = None) -> KafkaPublisher:
    return KafkaPublisher(
        address or bootstrap(settings),
        blob_store(settings),
        max_record_bytes=settings.max_record_bytes,
    )


def model_registry(settings: Settings) -> ModelRegistry:
    return ModelRegistry(settings.var_dir / "models")


def model_source(settings: Settings) -> ModelSource:
    """The registry's current model (the shipped default until a council trains its own)."""
    registry = model_registry(settings)
    taxonomy = load_taxonomy(settings.taxonomy)  # the classifier sees the taxonomy the router does
    return ModelSource(current=registry.current_version,
                       load=lambda version: load_classifier(version, registry.root, taxonomy=taxonomy,
                                                            encoder=settings.classifier_encoder))


def outbox_policy(settings: Settings) -> OutboxPolicy:
    """What queueing an acknowledgement or reply needs (the ticket consumer, the console)."""
    from tickets.outbox import OutboxPolicy

    return OutboxPolicy(
        public_url=settings.public_url, mail_from=settings.mail_from,
        council_domains=tuple(settings.council_domains or settings.smtp_domains),
        ack_rate_per_hour=settings.ack_rate_per_hour, twilio_from=settings.twilio_from,
    )


def routing_policy(taxonomy: Taxonomy) -> RoutingPolicy:
    return RoutingPolicy(thresholds={d.id: d.threshold for d in taxonomy.departments})


def ticket_writer(settings: Settings) -> TicketWriter:
    """The ticket stage's writer: the council's own domains from settings, and each new ticket's
    acknowledgement queued in the batch's transaction with a fresh tracking secret."""
    from sqlalchemy import Connection

    from schemas.inbound import InboundMessage
    from tickets.outbox import queue_acknowledgement
    from tickets.service import NewTicket, TicketWriter, issue_tracking_secret

    outbox = outbox_policy(settings)

    def acknowledge(conn: Connection, ticket: NewTicket, message: InboundMessage) -> None:
        secret = issue_tracking_secret(conn, ticket.id)  # in clear only in the acknowledgement
        queue_acknowledgement(conn, ticket, message, secret=secret, policy=outbox)

    return TicketWriter(threading_policy(settings), periods=clock_periods(settings),
                        on_new_ticket=acknowledge)


def threading_policy(settings: Settings) -> ThreadingPolicy:
    """Threading windows and the council's own domains (never participants) from settings."""
    from datetime import timedelta

    from tickets.threading import ThreadingPolicy

    own = frozenset((*settings.smtp_domains, *(settings.council_domains or ())))
    return ThreadingPolicy(reopen_window=timedelta(days=settings.reopen_window_days),
                           sms_window=timedelta(hours=settings.sms_thread_window_hours), own_domains=own)


def clock_periods(settings: Settings) -> ClockPeriods:
    """Statutory periods and per-department service targets from settings."""
    from tickets.clocks import ClockPeriods

    return ClockPeriods(
        foi_working_days=settings.clock_foi_working_days, sar_months=settings.clock_sar_months,
        sar_extension_months=settings.clock_sar_extension_months,
        complaint_stage1_working_days=settings.clock_complaint_stage1_working_days,
        complaint_stage2_working_days=settings.clock_complaint_stage2_working_days,
        member_enquiry_working_days=settings.clock_member_enquiry_working_days,
        service_targets=dict(settings.service_targets),
        due_soon_working_days=settings.clock_due_soon_working_days)


def ingest_probe(settings: Settings, engine: Engine) -> KafkaIngestProbe:
    """What the dashboard asks the stream: the router's and the sender's lag from their committed
    offsets, the ticket stage's from the offsets it stores with its work, the dead letters and
    their replay (each replay logged on the ``frontdoor.audit`` logger as one JSON line)."""
    import json
    import logging

    from sqlalchemy import select

    from ingest.health import KafkaIngestProbe, StageInput
    from router.runner import GROUP_ID
    from schemas.topics import INBOUND, OUTBOUND
    from tickets.consumer import StageTopics
    from tickets.models import ConsumerOffset

    taxonomy = load_taxonomy(settings.taxonomy)

    def stored() -> dict[tuple[str, int], int]:
        with engine.connect() as conn:
            rows = conn.execute(select(ConsumerOffset.topic, ConsumerOffset.partition, ConsumerOffset.offset)
                                .where(ConsumerOffset.group_id == "frontdoor-tickets")).all()
        return {(str(t), int(p)): int(o) for t, p, o in rows}

    audit = logging.getLogger("frontdoor.audit")
    return KafkaIngestProbe(bootstrap(settings), {
        "route": StageInput(GROUP_ID, [INBOUND]),
        "tickets": StageInput("frontdoor-tickets", StageTopics(taxonomy.ids).inputs, stored),
        "outbound": StageInput("frontdoor-outbound", [OUTBOUND]),
    }, audit=lambda entry: audit.info(json.dumps(entry)))


def reference_allocator(settings: Settings) -> ReferenceAllocator:
    """The one reference allocator, in the tickets database: every channel's intake draws from
    it, so one unique constraint covers them all. Refuses a database behind the code (the
    allocator's table comes with the tickets migrations), naming 'frontdoor db upgrade'."""
    from tickets import references
    from tickets.db import make_engine, require_current

    engine = make_engine(settings.effective_database_url)
    try:
        require_current(engine)
    finally:
        engine.dispose()
    return references
