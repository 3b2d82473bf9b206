"""Errors the ingest adapter raises; callers see these, never kafka-python's own."""

from __future__ import annotations


class PublishError(RuntimeError):
    """The broker did not acknowledge a message: the caller must not acknowledge its source.

    SMTP answers 451, a webhook answers 503; the sender retries later.
    """


class BrokerUnavailableError(PublishError):
    """No broker answered at the configured bootstrap address."""


class PoisonMessageError(ValueError):
    """A record that can never be processed: it goes to the dead-letter topic, then on.

    ``reason`` is a short machine-friendly word stored in the ``x-error-reason`` header.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class UnknownSchemaVersionError(PoisonMessageError):
    def __init__(self, version: object) -> None:
        super().__init__("unknown_schema_version", f"schema_version {version!r} is newer than this reader")


class BrokerSetupError(RuntimeError):
    """The local broker could not be set up or started; the message says what to do."""
