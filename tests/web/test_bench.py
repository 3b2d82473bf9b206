"""``frontdoor bench web`` produces its figures (a small run; the real one is in the README)."""

from __future__ import annotations

from typing import Any

import pytest

from web.bench import run_web_bench

pytestmark = pytest.mark.kafka


def test_bench_web_reports_throughput_beside_the_bare_publisher(kafka: Any) -> None:
    result: dict[str, Any] = dict(run_web_bench(kafka.bootstrap, 30, 4))
    assert result["enquiries"] == 30
    assert result["web_enquiries_per_s"] > 0 and result["raw_publish_per_s"] > 0
    assert result["web_p95_ms"] >= result["web_p50_ms"] > 0
    assert result["replays_same_reference"] is True
    # answered at the commit, then every enquiry reached Kafka through the relay, with its delay
    assert result["relay_unpublished_after_120s"] == 0
    assert 0 < result["relay_delay_p50_ms"] <= result["relay_delay_p99_ms"]
