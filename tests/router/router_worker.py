"""A router process for crash and rebalance tests: the real RouterProcess, keyword model.

Usage: python -m tests.router.router_worker BOOTSTRAP PREFIX TXN_ID [CRASH_AFTER]
With CRASH_AFTER=n it dies like kill -9 while classifying its (n+1)-th message, mid-batch.
Prints its RunStats as JSON when it leaves (idle for WORKER_IDLE_S seconds, or SIGTERM).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from router.policy import RoutingPolicy
from router.runner import ModelSource, RouterProcess
from router.service import RouterTopics
from schemas.inbound import InboundMessage
from tests.router.keyword_classifier import DEPARTMENTS, KeywordClassifier


class CrashingClassifier(KeywordClassifier):
    def __init__(self, crash_after: int | None) -> None:
        super().__init__()
        self.crash_after = crash_after
        self.seen = 0

    def classify(self, message: InboundMessage):  # type: ignore[no-untyped-def]
        self.seen += 1
        if self.crash_after is not None and self.seen > self.crash_after:
            os._exit(9)
        return super().classify(message)


def main() -> None:
    bootstrap, prefix, txn_id = sys.argv[1:4]
    crash_after = int(sys.argv[4]) if len(sys.argv) > 4 else None
    models = ModelSource(current=lambda: "kw-1", load=lambda _v: CrashingClassifier(crash_after))
    process = RouterProcess(bootstrap, models, RoutingPolicy(), DEPARTMENTS,
                            topics=RouterTopics.prefixed(prefix), transactional_id=txn_id,
                            reload_interval_s=0, max_poll_records=int(os.environ.get("WORKER_BATCH", "20")))
    process.install_signal_handlers()
    stats = process.run(idle_timeout_s=float(os.environ.get("WORKER_IDLE_S", "6")))
    print(json.dumps(dataclasses.asdict(stats)))


if __name__ == "__main__":
    main()
