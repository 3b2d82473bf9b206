"""An IMAP poller process that can die by SIGKILL right after Kafka acknowledged a message
(before the seen-table write and the IMAP move), to test the crash window.

    python -m tests.connectors.imap_crash_worker CONFIG.json STATE.sqlite BOOTSTRAP TOPIC BLOBS [KILL_AFTER]
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from connectors.email_state import ImapStateStore
from connectors.imap_poller import ImapConfig, ImapPoller
from ingest.bus import KafkaPublisher
from schemas.blobs import FilesystemBlobStore
from schemas.inbound import InboundMessage


class KillingPublisher:
    def __init__(self, inner: KafkaPublisher, kill_after: int) -> None:
        self.inner = inner
        self.kill_after = kill_after
        self.published = 0

    def publish(self, message: InboundMessage) -> None:
        self.inner.publish(message)  # returns after acks=all
        self.published += 1
        if self.published == self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> int:
    config_path, state_path, bootstrap, topic, blob_dir = argv[:5]
    kill_after = int(argv[5]) if len(argv) > 5 else 0
    config = ImapConfig.model_validate(json.loads(Path(config_path).read_text()))
    blobs = FilesystemBlobStore(blob_dir)
    inner = KafkaPublisher(bootstrap, blobs, topic=topic)
    publisher = KillingPublisher(inner, kill_after) if kill_after else inner
    state = ImapStateStore(state_path)
    poller = ImapPoller(config, publisher, blobs, state)
    try:
        while poller.poll_once():
            pass
    finally:
        poller.close()
        inner.close()
        state.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
