"""Every stage's Prometheus endpoint: named frontdoor_<stage>_…, served on its own port, the
ticket stage's stored offsets and the outbox's rows read at scrape time, and a port that is
taken or mistyped handled as an operator would want."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import httpx
import pytest

from frontdoor import metrics
from frontdoor.settings import load_settings
from schemas.errors import OperatorError
from tickets.db import make_engine, upgrade
from tickets.models import ConsumerOffset, table_of


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_ticket_stage_serves_its_figures_on_its_own_port(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tickets.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            topic = "frontdoor.dept.waste"
            conn.execute(table_of(ConsumerOffset).insert(), [
                {"group_id": "frontdoor-tickets", "topic": topic, "partition": 2, "offset": 41},
                {"group_id": "another-group", "topic": topic, "partition": 2, "offset": 7}])
        port = metrics.serve_stage_metrics("tickets", free_port(),
                                           collect=metrics.tickets_figures(engine, "frontdoor-tickets"))
        assert port is not None
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert "frontdoor_tickets_up 1.0" in text and "frontdoor_tickets_start_time_seconds" in text
        assert 'frontdoor_tickets_stored_offset{partition="2",topic="frontdoor.dept.waste"} 41.0' in text
        assert "another-group" not in text and "} 7.0" not in text
        assert "process_cpu_seconds_total" in text or "python_gc_objects_collected_total" in text
    finally:
        engine.dispose()


def test_a_taken_port_is_a_warning_and_a_mistyped_one_is_named(monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.WARNING):
            assert metrics.serve_stage_metrics("smtp", port) is None
    assert "FRONTDOOR_SMTP_METRICS_PORT" in caplog.text
    assert load_settings().imap_metrics_port == 9467  # the ports are settings like any other
    monkeypatch.setenv("FRONTDOOR_IMAP_METRICS_PORT", "0")
    assert load_settings().imap_metrics_port == 0
    monkeypatch.setenv("FRONTDOOR_OUTBOUND_METRICS_PORT", "99999")
    with pytest.raises(OperatorError, match="FRONTDOOR_OUTBOUND_METRICS_PORT"):
        load_settings()
