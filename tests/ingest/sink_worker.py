"""A consumer process for crash tests: an idempotent SQLite sink behind the ConsumerLoop.

Usage: python -m tests.ingest.sink_worker BOOTSTRAP TOPIC GROUP DB [CRASH_AFTER]
With CRASH_AFTER=n it dies (os._exit, like kill -9) right after the n-th sink write,
before the loop can commit that batch's offsets.
"""

from __future__ import annotations

import os
import sqlite3
import sys

from ingest.bus import Record
from ingest.consumer import ConsumerLoop
from ingest.serde import decode_inbound


def main() -> None:
    bootstrap, topic, group, db_path = sys.argv[1:5]
    crash_after = int(sys.argv[5]) if len(sys.argv) > 5 else None
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE IF NOT EXISTS sink (dedupe_key TEXT PRIMARY KEY, body TEXT)")
    db.execute("CREATE TABLE IF NOT EXISTS deliveries (dedupe_key TEXT)")
    db.commit()
    writes = 0

    def handle(record: Record) -> None:
        nonlocal writes
        message = decode_inbound(record.value)
        db.execute("INSERT INTO deliveries VALUES (?)", (message.dedupe_key,))
        db.execute("INSERT OR IGNORE INTO sink VALUES (?, ?)", (message.dedupe_key, message.body_text))
        db.commit()  # durable before the loop may commit the offset
        writes += 1
        if crash_after is not None and writes >= crash_after:
            os._exit(9)

    loop = ConsumerLoop(bootstrap, [topic], group, handle, stage="test-sink", max_poll_records=7)
    loop.install_signal_handlers()
    print("ready", flush=True)
    loop.run(idle_timeout_s=float(os.environ.get("SINK_IDLE_S", "6")))


if __name__ == "__main__":
    main()
