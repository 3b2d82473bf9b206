"""``frontdoor up`` (what ``make run`` runs): every stage as a child process, end to end.

A resident's web enquiry and an email both come out, routed, on their departments' topics,
and the router's metrics say so.
"""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from ingest.bus import read_topic
from schemas.routed import RoutedMessage
from schemas.topics import department_topic
from tests.conftest import ROOT, KafkaHandle
from tests.processes import stop

pytestmark = pytest.mark.kafka


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(check: object, what: str, timeout_s: float = 90) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = check()  # type: ignore[operator]
            if result:
                return result
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _routed(kafka: KafkaHandle, department: str, match: object) -> RoutedMessage | None:
    for record in read_topic(kafka.bootstrap, department_topic(department), timeout_s=2,
                             isolation_level="read_committed"):
        routed = RoutedMessage.model_validate_json(record.value or b"")
        if match(routed):  # type: ignore[operator]
            return routed
    return None


def test_up_runs_every_stage_from_channel_to_department(kafka: KafkaHandle, tmp_path: Path) -> None:
    web_port, smtp_port, metrics_port = _free_port(), _free_port(), _free_port()
    env = {**kafka.env, "FRONTDOOR_KAFKA_BOOTSTRAP": kafka.bootstrap, "FRONTDOOR_VAR_DIR": str(tmp_path),
           "FRONTDOOR_WEB_PORT": str(web_port), "FRONTDOOR_SMTP_PORT": str(smtp_port),
           "FRONTDOOR_METRICS_PORT": str(metrics_port), "FRONTDOOR_SMTP_DOMAINS": "council.example.gov.uk"}
    up = subprocess.Popen([sys.executable, "-m", "frontdoor", "up"], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{web_port}"
        _wait_for(lambda: httpx.get(f"{base}/contact", timeout=5).status_code == 200, "the web app")
        key = {"Idempotency-Key": "up-enq-01"}
        answer = httpx.post(f"{base}/api/enquiries", timeout=30, headers=key, json={
            "name": "Sam Okafor", "email": "sam.okafor@example.org", "postcode": "LS6 2AB",
            "message": "Nobody has emptied our wheelie bins on Cardigan Road for two weeks and they stink.",
        })
        assert answer.status_code == 202, answer.text
        reference = answer.json()["reference"]

        mail = EmailMessage()
        mail["From"], mail["To"] = "Pat Lee <pat.lee@example.org>", "highways@council.example.gov.uk"
        mail["Subject"], mail["Message-ID"] = "Pothole on Kirkstall Lane", "<up-test-2@example.org>"
        mail.set_content("There is a deep pothole outside number 40 that burst my tyre this morning.")
        _wait_for(lambda: socket.create_connection(("127.0.0.1", smtp_port), timeout=2).close() or True,
                  "the SMTP server")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=60) as client:
            client.send_message(mail)

        web = _wait_for(lambda: _routed(kafka, "waste", lambda r: r.message.reference == reference),
                        "the web enquiry on frontdoor.dept.waste")
        assert isinstance(web, RoutedMessage) and web.routing.department == "waste"
        email = _wait_for(lambda: _routed(kafka, "highways", lambda r: r.message.subject == mail["Subject"]),
                          "the email on frontdoor.dept.highways")
        assert isinstance(email, RoutedMessage) and email.message.sender.email == "pat.lee@example.org"
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        assert 'frontdoor_routed_total{department="waste"}' in metrics
    finally:
        up.send_signal(signal.SIGINT)
        try:
            _, err = up.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            stop(up)  # never left behind for the next test
            raise
    assert up.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert not os.path.exists(tmp_path / "kafka"), "up must not start a local broker when one is configured"
