"""A ticket-stage process for crash and concurrency tests: the real stage, two departments.

Usage: python -m tests.tickets.ticket_worker DATABASE_URL BOOTSTRAP PREFIX GROUP [CRASH_AFTER]
With CRASH_AFTER=n it dies like kill -9 in its (n+1)-th batch, after writing every row of the
batch and before the transaction commits. Prints its stats as JSON when it leaves (idle for
WORKER_IDLE_S seconds, or SIGTERM); logs the stage's INFO lines on stderr.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import json
import logging
import os
import signal
import sys
from typing import Any

from tickets.consumer import StageTopics, run_stage
from tickets.db import make_engine, require_current
from tickets.service import TicketWriter

DEPARTMENTS = ("waste", "highways")


class CrashingWriter(TicketWriter):
    def __init__(self, crash_after: int | None) -> None:
        super().__init__()
        self.crash_after = crash_after
        self.batches = 0

    def write_batch(self, conn: Any, records: Any, dead_letter: Any, **kwargs: Any) -> Any:
        outcome = super().write_batch(conn, records, dead_letter, **kwargs)
        self.batches += 1
        if self.crash_after is not None and self.batches > self.crash_after:
            os._exit(9)  # mid-batch: everything written, nothing committed
        return outcome


def main() -> None:
    # The stage's own INFO lines (assignments, retries) on stderr: a test shows them when a worker hangs.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # where it hangs: tests/processes.py asks
    url, bootstrap, prefix, group = sys.argv[1:5]
    crash_after = int(sys.argv[5]) if len(sys.argv) > 5 else None
    engine = make_engine(url, immediate=True)
    require_current(engine)
    stats = run_stage(engine, bootstrap, StageTopics(DEPARTMENTS, prefix), CrashingWriter(crash_after),
                      group_id=group, max_poll_records=int(os.environ.get("WORKER_BATCH", "20")),
                      idle_timeout_s=float(os.environ.get("WORKER_IDLE_S", "5")))
    print(json.dumps(dataclasses.asdict(stats)))


if __name__ == "__main__":
    main()
