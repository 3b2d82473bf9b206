"""``frontdoor bench outbound --json`` on a tiny run: the figures it promises, every message delivered."""

from __future__ import annotations

import json
import os

from tests.conftest import frontdoor


def test_bench_outbound_reports_rates_beside_raw_smtplib() -> None:
    done = frontdoor("bench", "outbound", "--json", "-n", "5", env={**os.environ}, timeout=120)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["messages"] == 5
    assert figures["rows_sent"] == 10 and figures["mails_at_relay"] == 10 and figures["twilio_calls"] == 5
    for key in ("email_acks_per_s", "sms_acks_per_s", "raw_smtplib_per_s", "email_ratio_to_raw"):
        assert figures[key] > 0
