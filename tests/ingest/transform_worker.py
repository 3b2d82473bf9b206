"""A consume-transform-produce process for exactly-once tests.

Usage: python -m tests.ingest.transform_worker BOOTSTRAP IN OUT GROUP TXN_ID [CRASH_AFTER]
Copies each input record to OUT (value upper-cased) inside Kafka transactions. With
CRASH_AFTER=n it dies like kill -9 after handing its n-th output to the producer,
mid-transaction.
"""

from __future__ import annotations

import os
import sys

from ingest.bus import Record
from ingest.transactional import Output, TransactionalLoop


def main() -> None:
    bootstrap, source, sink, group, txn_id = sys.argv[1:6]
    crash_after = int(sys.argv[6]) if len(sys.argv) > 6 else None
    seen = 0

    def transform(record: Record) -> list[Output]:
        nonlocal seen
        seen += 1
        if crash_after is not None and seen > crash_after:
            os._exit(9)
        return [Output(sink, (record.value or b"").upper(), record.key)]

    loop = TransactionalLoop(bootstrap, [source], group, transform, stage="test",
                             transactional_id=txn_id, max_poll_records=10)
    loop.install_signal_handlers()
    loop.run(idle_timeout_s=float(os.environ.get("WORKER_IDLE_S", "6")))


if __name__ == "__main__":
    main()
