"""What every channel knows of the rest of Frontdoor: a lifecycle and a publisher."""

from __future__ import annotations

from typing import Protocol

from ingest.errors import BrokerUnavailableError, PublishError
from schemas.inbound import InboundMessage

__all__ = ["BrokerUnavailableError", "Connector", "PublishError", "Publisher"]


class Publisher(Protocol):
    """Puts a canonical message on ``frontdoor.inbound``.

    ``publish`` returns only once Kafka has acknowledged the message (acks=all), so the
    caller may then acknowledge its own source. It raises :class:`PublishError` when the
    broker did not take it: the caller must then make its sender retry (SMTP 451, HTTP 503,
    IMAP message left unread).
    """

    def publish(self, message: InboundMessage) -> None: ...


class Connector(Protocol):
    """A channel that takes messages in until asked to stop."""

    def run(self) -> None: ...

    def stop(self) -> None: ...
