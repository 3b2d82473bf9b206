"""Eight 34 MiB mails at once must not make ``frontdoor smtp`` grow by more than twice its
size limit: sessions are capped (421 to the rest, whose MTAs retry), DATA is spooled to disk,
and one large mail at a time is read back and parsed. Measured on the real command, run as
a subprocess, by its VmRSS in /proc."""

from __future__ import annotations

import base64
import os
import smtplib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, KafkaHandle
from tests.processes import stop

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DOMAIN = "council.example.gov.uk"
MAIL_BYTES = 34 << 20
LIMIT = 35 << 20
CLIENTS = 8
MAX_SESSIONS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def _mail(index: int, attachment: bytes) -> bytes:
    head = (f"From: Resident {index} <resident{index}@example.org>\r\nTo: waste@{DOMAIN}\r\n"
            f"Subject: Photos of the fly-tipping, set {index}\r\n"
            f"Message-ID: <big-{index}-{time.time_ns()}@example.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n"
            "Content-Type: text/plain\r\n\r\nThe photos are attached.\r\n--b1\r\n"
            "Content-Type: application/zip\r\nContent-Disposition: attachment; filename=photos.zip\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode()
    return head + attachment + b"--b1--\r\n"


def _send(port: int, raw: bytes, results: list[str], busy: list[int]) -> None:
    """One MTA delivering ``raw`` (CRLF lines, none starting with a dot), retrying after 421.
    The bytes go straight to the socket: smtplib's own ``data()`` would copy them twice."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
                client.ehlo()
                client.mail("resident@example.org")
                client.rcpt(f"waste@{DOMAIN}")
                client.putcmd("data")
                code, _ = client.getreply()
                assert code == 354
                assert client.sock is not None
                client.sock.sendall(raw)
                client.sock.sendall(b".\r\n")
                code, _ = client.getreply()
                results.append(str(code))
                return
        except (smtplib.SMTPConnectError, smtplib.SMTPServerDisconnected) as exc:
            if "421" not in str(exc) and not isinstance(exc, smtplib.SMTPServerDisconnected):
                raise
            busy.append(1)  # 421 at the greeting: what an MTA does is wait and retry
            time.sleep(0.5)
        except smtplib.SMTPResponseException as exc:
            results.append(str(exc.smtp_code))
            return
    results.append("gave up")


def test_eight_large_mails_at_once_grow_the_process_by_at_most_twice_the_limit(
        kafka: KafkaHandle, tmp_path: Path) -> None:
    port = _free_port()
    env = {**kafka.env, "FRONTDOOR_KAFKA_BOOTSTRAP": kafka.bootstrap,
           "FRONTDOOR_VAR_DIR": str(tmp_path / "var"), "FRONTDOOR_SMTP_PORT": str(port),
           "FRONTDOOR_SMTP_DOMAINS": DOMAIN,
           "FRONTDOOR_SMTP_MAX_BYTES": str(LIMIT), "FRONTDOOR_SMTP_MAX_SESSIONS": str(MAX_SESSIONS)}
    log = (tmp_path / "smtp.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "frontdoor", "smtp"], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as warm:  # imports, Kafka connection
                    warm.sendmail("resident@example.org", [f"waste@{DOMAIN}"],
                                  _mail(0, base64.encodebytes(b"small")))
                break
            except OSError:
                running = server.poll() is None and time.monotonic() < deadline
                assert running, (tmp_path / "smtp.log").read_text()
                time.sleep(0.5)
        baseline = _status_kb(server.pid, "VmRSS")
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # VmHWM from here on

        line = base64.b64encode(os.urandom(57 * 1000)).decode()  # re-used: 76-column base64 lines
        block = "\r\n".join(line[i:i + 76] for i in range(0, len(line), 76)).encode() + b"\r\n"
        attachment = block * (MAIL_BYTES // len(block))
        mails = [_mail(i, attachment) for i in range(1, CLIENTS + 1)]
        del attachment
        assert all(MAIL_BYTES - (1 << 20) < len(m) <= LIMIT for m in mails)

        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _status_kb(server.pid, "VmRSS"))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        results: list[str] = []
        busy: list[int] = []
        senders = [threading.Thread(target=_send, args=(port, raw, results, busy)) for raw in mails]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        done.set()
        sampler.join()
        peak = max(peak, _status_kb(server.pid, "VmHWM"))
    finally:
        stop(server, grace_s=30)
        log.close()
    assert results == ["250"] * CLIENTS  # every mail accepted once Kafka had it
    assert busy, f"more than {MAX_SESSIONS} sessions were let in at once"
    grown = (peak - baseline) * 1024
    print(f"frontdoor smtp: {CLIENTS} x {MAIL_BYTES >> 20} MiB mails, {len(busy)} x 421, baseline "
          f"{baseline >> 10} MiB, peak {peak >> 10} MiB: grew {grown / 2**20:.0f} MiB "
          f"(limit {LIMIT >> 20} MiB)")
    assert grown <= 2 * LIMIT, f"grew by {grown / 2**20:.0f} MiB for a {LIMIT / 2**20:.0f} MiB limit"
